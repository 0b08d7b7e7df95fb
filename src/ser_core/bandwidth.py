"""Is a recording band-limited? Telephone audio and low-rate codecs remove the band above 4 kHz
(or 7 kHz), which the models' features partly rely on: such input gets a warning on the result.

Thresholds (docs/performance.md, robustness): over 160 clips of the four corpora, G.711 telephone
and GSM copies hold 47 dB less power above 4 kHz than below it (median; 56 dB at the 5th
percentile), the clean clips 17 dB less (31 dB at the 5th percentile).
"""

from __future__ import annotations

import numpy as np

from ser_core.audio import SAMPLE_RATE

#: Power above 4 kHz this far below the total (dB): narrowband, telephone-like audio.
NARROWBAND_DB = -40.0
#: Power above 7 kHz this far below the total, while the 4-7 kHz band is there: a low-rate codec.
CODEC_DB = -60.0
_EDGES = (4000.0, 7000.0)


def band_powers(signal: np.ndarray, size: int = 512) -> np.ndarray:
    """Mean power of the signal in [0, 4), [4, 7) and [7, 8] kHz (Hann-windowed 512-point frames)."""
    n = len(signal) // size
    if n == 0:
        return np.zeros(3)
    frames = np.asarray(signal[: n * size], dtype=np.float32).reshape(n, size) * np.hanning(size).astype(np.float32)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0)
    freqs = np.fft.rfftfreq(size, 1.0 / SAMPLE_RATE)
    low, high = _EDGES
    return np.array([power[freqs < low].sum(), power[(freqs >= low) & (freqs < high)].sum(), power[freqs >= high].sum()])


def bandwidth_warnings(powers: np.ndarray, better: str | None = None) -> list[str]:
    """Warnings for band powers summed over a recording (`band_powers`); `better` names a profile
    that holds up better on such audio, if there is one."""
    total = float(np.sum(powers))
    if total <= 0:
        return []
    share = lambda part: 10 * np.log10(max(float(part), 1e-30) / total)  # noqa: E731
    hint = f"; the {better} profile holds up better on such audio" if better else ""
    if share(powers[1] + powers[2]) < NARROWBAND_DB:
        return [f"narrowband audio (no energy above 4 kHz: telephone or 8 kHz recording): emotions are less reliable{hint}"]
    if share(powers[2]) < CODEC_DB:
        return [f"band-limited audio (no energy above 7 kHz: low-rate codec or resampled recording): emotions are less reliable{hint}"]
    return []
