"""Encoders with a limited context (Whisper, wav2vec2, emotion2vec): overlapping chunks, frames stitched."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SAMPLE_RATE = 16000


def chunked(
    signal: np.ndarray,
    encode: Callable[[np.ndarray], np.ndarray],
    frame_rate: float,
    chunk_seconds: float,
    overlap_seconds: float,
) -> np.ndarray:
    """Frames of `encode` over the whole signal. A signal longer than `chunk_seconds` is cut into
    chunks that overlap by `overlap_seconds`; each frame of the result comes from the chunk whose
    centre is nearest (half of each overlap from either side), so no frame sees a chunk edge
    closer than half the overlap."""
    total = len(signal) / SAMPLE_RATE
    if total <= chunk_seconds:
        return encode(signal)
    step = chunk_seconds - overlap_seconds
    starts = np.arange(0.0, max(total - overlap_seconds, 1e-9), step)
    n_frames = round(total * frame_rate)
    pieces = []
    for i, start in enumerate(starts):
        end = min(start + chunk_seconds, total)
        out = encode(signal[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)])
        keep_from = 0.0 if i == 0 else start + overlap_seconds / 2
        keep_to = total if i == len(starts) - 1 else start + step + overlap_seconds / 2
        a = round((keep_from - start) * frame_rate)
        b = round((keep_to - start) * frame_rate)
        pieces.append(out[a : min(b, len(out))])
    frames = np.concatenate(pieces)
    return frames[:n_frames] if len(frames) >= n_frames else frames
