"""Signal conventions every backend and the pipeline share: the sample rate, block levels, and the
speech extent an utterance vector is pooled over."""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
PAD = 0.1  # seconds added on each side of a speech region or extent


def block_db(signal: np.ndarray, step: int) -> np.ndarray:
    """Mean power in dB of each whole block of `step` samples (empty when the signal is shorter)."""
    n = len(signal) // step
    power = (np.asarray(signal[: n * step], dtype=np.float64).reshape(n, step) ** 2).mean(axis=1)
    return 10 * np.log10(power + 1e-12)


def speech_extent(signal: np.ndarray, floor_db: float = 40.0, pad: float = PAD) -> tuple[float, float]:
    """[start, end) seconds from the first to the last 10 ms frame within `floor_db` of the loudest,
    padded: a recording without its leading and trailing silence. Utterance vectors are pooled
    over this extent, in training and in analysis alike, so a model never learns how much silence
    a corpus happens to put around its clips."""
    duration = len(signal) / SAMPLE_RATE
    db = block_db(signal, int(0.01 * SAMPLE_RATE))
    if len(db) == 0:
        return 0.0, duration
    active = np.flatnonzero(db > db.max() - floor_db)
    return max(0.0, active[0] * 0.01 - pad), min(duration, (active[-1] + 1) * 0.01 + pad)
