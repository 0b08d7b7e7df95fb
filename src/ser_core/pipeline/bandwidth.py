"""Is a recording band-limited or heavily compressed? Telephone audio and low-rate codecs remove
the band above 4 kHz (or 7 kHz) and punch holes in the spectrum, which the models' features
partly rely on: such input gets a warning on the result.

Thresholds (docs/performance.md, robustness), over 100-160 clips of the four corpora:
- G.711 telephone and GSM copies hold 47 dB less power above 4 kHz than below it (median; 56 dB
  at the 5th percentile), the clean clips 17 dB less (31 dB at the 5th percentile);
- in mp3 at 32 kbit/s, 6 % of the 2-6 kHz spectrum bins of the loud frames are 30 dB below their
  frame's median there (5th percentile 3.3 %); in the clean clips 0.4 % (95th percentile 2.4 %);
  mp3 at 64 kbit/s and more, Opus and added noise stay below 3 %.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ser_core.pipeline.audio import SAMPLE_RATE

#: Power above 4 kHz this far below the total (dB): narrowband, telephone-like audio.
NARROWBAND_DB = -40.0
#: Power above 7 kHz this far below the total, while the 4-7 kHz band is there: a low-rate codec.
CODEC_DB = -60.0
#: Share of spectral holes (see the module docstring) above which audio counts as heavily compressed.
HOLES_SHARE = 0.035
_SIZE = 512
_FREQS = np.fft.rfftfreq(_SIZE, 1.0 / SAMPLE_RATE)
_HOLE_BAND = (_FREQS > 2000) & (_FREQS < 6000)


@dataclass
class BandStats:
    """What the pieces of a recording hold in each band: power in [0, 4), [4, 7) and [7, 8] kHz
    (summed over frames) and spectral holes among the loud frames' 2-6 kHz bins."""

    powers: np.ndarray = field(default_factory=lambda: np.zeros(3))
    holes: int = 0
    bins: int = 0

    def add(self, signal: np.ndarray) -> None:
        n = len(signal) // _SIZE
        if n == 0:
            return
        # every other 32 ms frame is plenty for a spectrum summary (about 0.13 ms per second of audio)
        frames = np.asarray(signal[: n * _SIZE], dtype=np.float32).reshape(n, _SIZE)[::2] * np.hanning(_SIZE).astype(np.float32)
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        self.powers = self.powers + np.array(
            [power[:, _FREQS < 4000].sum(), power[:, (_FREQS >= 4000) & (_FREQS < 7000)].sum(), power[:, _FREQS >= 7000].sum()]
        )
        energy = power.sum(axis=1)
        band = power[energy >= energy.max() * 1e-3][:, _HOLE_BAND]
        self.holes += int((band < np.median(band, axis=1, keepdims=True) * 1e-3).sum())
        self.bins += band.size

    def warnings(self, better: str | None = None) -> list[str]:
        """What about the recording's spectrum makes emotions less reliable; `better` names a
        profile that holds up better on such audio, if there is one."""
        total = float(self.powers.sum())
        if total <= 0:
            return []
        share = lambda part: 10 * np.log10(max(float(part), 1e-30) / total)  # noqa: E731
        hint = f"; the {better} profile holds up better on such audio" if better else ""
        if share(self.powers[1] + self.powers[2]) < NARROWBAND_DB:
            what = "narrowband audio (no energy above 4 kHz: telephone or 8 kHz recording)"
        elif share(self.powers[2]) < CODEC_DB:
            what = "band-limited audio (no energy above 7 kHz: low-rate codec or resampled recording)"
        elif self.bins and self.holes / self.bins > HOLES_SHARE:
            what = "heavily compressed audio (holes in the spectrum: low-rate mp3 or similar)"
        else:
            return []
        return [f"{what}: emotions are less reliable{hint}"]
