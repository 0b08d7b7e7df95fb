"""The built-in diarizer "ge2e": 1.6 s windows of speech described by the GE2E speaker encoder
(Resemblyzer's weights, Apache-2.0, exported to ONNX by scripts/export_ge2e.py and run with
onnxruntime: no torch needed), clustered by scikit-learn's agglomerative clustering (cosine
distance, average linkage) to the given number of speakers or to a distance threshold.

docs/performance.md ("Speakers") has the measurements behind each choice.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ser_core.contract.diarizer import Diarizer
from ser_core.contract.hookspecs import hookimpl
from ser_core.contract.signals import SAMPLE_RATE
from ser_core.errors import DiarizerError
from ser_core.settings import Settings

WEIGHTS = Path(__file__).parent / "weights" / "ge2e.onnx"
SHA256 = "6135f616f307c7ea9e3bcc84cb7587119fe65fdcbbee1a272451d21e38f9a142"
N_FFT, FFT_HOP = 400, 160  # 25 ms every 10 ms: the encoder's training front end
WINDOW, HOP = 1.6, 0.4  # seconds: one vector per window, windows every HOP inside speech
#: Cosine distance under which clusters merge when the number of speakers is estimated.
THRESHOLD = 0.4
#: Agglomerative clustering holds all pairwise distances: beyond this many vectors (about 13 min
#: of speech) a spread sample is clustered and every vector joins its nearest cluster centre.
MAX_CLUSTERED = 2000
BATCH = 64


def windows(speech: np.ndarray, duration: float) -> np.ndarray:
    """(n, 2) spans: WINDOW s every HOP s inside each speech region; one centred window (cut to
    the recording) for a region shorter than WINDOW."""
    out: list[tuple[float, float]] = []
    for start, end in np.asarray(speech, dtype=float).reshape(-1, 2):
        if end - start <= WINDOW:
            middle = (start + end) / 2
            out.append((max(0.0, middle - WINDOW / 2), min(duration, middle + WINDOW / 2)))
        else:
            out += [(s, s + WINDOW) for s in np.arange(start, end - WINDOW + 1e-9, HOP)]
    return np.array(out, dtype=float).reshape(-1, 2)


def power_spectra(pieces: np.ndarray) -> np.ndarray:
    """(n, frames, 201) power spectra of equal-length pieces: a periodic Hann window of N_FFT
    every FFT_HOP samples, centred with zero padding (librosa's `stft` defaults)."""
    from scipy.signal import get_window

    padded = np.pad(pieces, ((0, 0), (N_FFT // 2, N_FFT // 2)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT, axis=1)[:, ::FFT_HOP]
    spectrum = np.fft.rfft(frames * get_window("hann", N_FFT).astype(np.float32), axis=-1)
    return (np.abs(spectrum) ** 2).astype(np.float32)


class GE2E(Diarizer):
    name = "ge2e"
    model_id = "resemblyzer-ge2e"

    def __init__(self, settings: Settings) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise DiarizerError(
                "the ge2e diarizer needs onnxruntime: pip install onnxruntime (or run with --speakers off)"
            ) from None
        try:
            data = WEIGHTS.read_bytes()
        except OSError as exc:
            raise DiarizerError(
                f"{WEIGHTS}: cannot read the speaker encoder ({exc.strerror or exc})"
            ) from None
        if hashlib.sha256(data).hexdigest() != SHA256:
            raise DiarizerError(
                f"{WEIGHTS}: the speaker encoder's checksum does not match; reinstall ser-core"
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = settings.whisper_threads or 0
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])

    def embed(self, signal: np.ndarray, speech: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        spans = windows(speech, len(signal) / SAMPLE_RATE)
        size = int(WINDOW * SAMPLE_RATE)
        vectors = []
        for first in range(0, len(spans), BATCH):
            batch = np.zeros((len(spans[first : first + BATCH]), size), np.float32)
            for row, (start, _) in enumerate(spans[first : first + BATCH]):
                piece = signal[int(start * SAMPLE_RATE) : int(start * SAMPLE_RATE) + size]
                batch[row, : len(piece)] = piece  # a window past the end is padded with silence
            vectors.append(self.session.run(None, {"power": power_spectra(batch)})[0])
        return spans, np.concatenate(vectors) if vectors else np.zeros((0, 256), np.float32)

    def assign(self, vectors: np.ndarray, speakers: int | None) -> np.ndarray:
        from sklearn.cluster import AgglomerativeClustering

        if len(vectors) < 2 or speakers == 1:
            return np.zeros(len(vectors), int)
        sample = np.unique(np.linspace(0, len(vectors) - 1, min(len(vectors), MAX_CLUSTERED)).astype(int))
        if speakers is not None and speakers >= len(sample):
            return np.arange(len(vectors)) % speakers if len(vectors) >= speakers else np.arange(len(vectors))
        clustering = AgglomerativeClustering(
            n_clusters=speakers,
            distance_threshold=None if speakers else THRESHOLD,
            metric="cosine",
            linkage="average",
        )
        labels = clustering.fit_predict(vectors[sample])
        if len(sample) == len(vectors):
            return labels
        centres = np.stack([vectors[sample][labels == k].mean(axis=0) for k in range(labels.max() + 1)])
        centres /= np.linalg.norm(centres, axis=1, keepdims=True).clip(1e-9)
        return np.argmax(vectors @ centres.T, axis=1)


@hookimpl
def ser_register_diarizers(register):
    register(
        GE2E.name,
        GE2E,
        description="GE2E speaker encoder (Resemblyzer's weights, ONNX) + agglomerative clustering",
    )
