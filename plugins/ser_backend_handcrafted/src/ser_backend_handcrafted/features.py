"""Handcrafted acoustic features: frame-level descriptors and utterance functionals, in numpy.

Frames are 25 ms long every 10 ms at 16 kHz. Each frame gets low-level descriptors (LLDs):
spectral/cepstral (MFCC 0-12, centroid, spread, roll-off, flatness, flux, slope, band-energy
ratios, alpha ratio, Hammarberg index), prosodic (log energy, zero-crossing rate, F0 in semitones
from a normalised autocorrelation, voicing strength) and voice quality (harmonics-to-noise ratio).
`pool` turns any span of frames into a fixed vector of functionals (mean, spread, percentiles,
delta spread) plus prosodic statistics (F0 slope, jitter, shimmer, voicing rhythm), so the same
code serves utterances and the sliding windows of the timeline.

Everything is computed in a handful of large array operations per call: the per-call overhead
is a few hundred microseconds, and extraction runs far faster than real time on one core.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

SAMPLE_RATE = 16000
HOP = 160  # 10 ms
WIN = 400  # 25 ms
N_FFT = 512
PITCH_WIN = 640  # 40 ms: two periods of a 50 Hz voice
PITCH_FFT = 1024
F0_MIN, F0_MAX = 55.0, 600.0
N_MELS = 40
N_MFCC = 13
BANDS_HZ = (0, 500, 1000, 2000, 4000, 8000)
VOICING_THRESHOLD = 0.45
ACTIVE_DB = 40.0  # frames quieter than the loudest by more than this are not pooled
EPS = 1e-10

LLD_NAMES: tuple[str, ...] = (
    ("log_energy", "zcr")
    + tuple(f"mfcc{i}" for i in range(N_MFCC))
    + ("centroid", "spread", "rolloff85", "flatness", "flux", "slope")
    + tuple(f"band_{lo}_{hi}" for lo, hi in zip(BANDS_HZ[:-1], BANDS_HZ[1:], strict=True))
    + ("alpha_ratio", "hammarberg", "voicing")
    + tuple(f"logmel{i}" for i in range(N_MELS))
    + ("f0_semitones", "hnr")
)
_F0 = LLD_NAMES.index("f0_semitones")
_VOICING = LLD_NAMES.index("voicing")
_HNR = LLD_NAMES.index("hnr")
_ENERGY = LLD_NAMES.index("log_energy")
N_ALWAYS = _F0  # descriptors before this index are defined on every frame; the rest on voiced frames
FUNCTIONALS = ("mean", "std", "p10", "p25", "p50", "p75", "p90", "skew", "delta_std", "delta_mean_abs")
_QUANTILES = (0.10, 0.25, 0.50, 0.75, 0.90)
PROSODY_NAMES = (
    "f0_slope",
    "f0_jitter",
    "shimmer_db",
    "voiced_ratio",
    "voiced_runs_per_s",
    "voiced_run_mean_s",
    "pause_mean_s",
    "energy_peaks_per_s",
)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def _mel_filterbank(n_mels: int, n_fft: int, sr: int) -> np.ndarray:
    """Triangular HTK mel filters, area-normalised, shape (n_fft // 2 + 1, n_mels)."""
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(20.0)), _hz_to_mel(np.array(sr / 2)), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lower) / (centre - lower)
    falling = (upper - freqs[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (upper - lower))
    return weights.T.astype(np.float32)


def _dct_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Orthonormal DCT-II as a matrix, shape (n_in, n_out)."""
    k = np.arange(n_out)[None, :]
    n = np.arange(n_in)[:, None]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    basis[:, 0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


def _frames(signal: np.ndarray, length: int, n: int) -> np.ndarray:
    """`n` frames of `length` samples every HOP samples, centred like the 25 ms frames."""
    pad = (length - HOP) // 2
    padded = np.pad(signal, (pad + WIN // 2 - HOP // 2, length + n * HOP))
    view = np.lib.stride_tricks.sliding_window_view(padded, length)[:: HOP][:n]
    return view


@dataclass(frozen=True)
class HandcraftedFeatures:
    """Frame descriptors (`frames`) and their functionals (`pool`) for 16 kHz mono float audio."""

    @cached_property
    def _tables(self) -> dict[str, np.ndarray]:
        freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1).astype(np.float32)
        band_index = np.searchsorted(BANDS_HZ, freqs, side="right") - 1
        bands = np.zeros((freqs.size, len(BANDS_HZ) - 1), np.float32)
        bands[np.arange(freqs.size), np.clip(band_index, 0, len(BANDS_HZ) - 2)] = 1.0
        pitch_window = np.hanning(PITCH_WIN).astype(np.float32)
        # Autocorrelation of the window itself, to undo its taper on the lag axis.
        window_acf = np.correlate(pitch_window, pitch_window, "full")[PITCH_WIN - 1 :]
        return {
            "freqs": freqs,
            "log_freqs": np.log(np.maximum(freqs, 1.0)).astype(np.float32),
            "window": np.hanning(WIN).astype(np.float32),
            "pitch_window": pitch_window,
            "window_acf": (window_acf / window_acf[0]).astype(np.float32),
            "mel": _mel_filterbank(N_MELS, N_FFT, SAMPLE_RATE),
            "dct": _dct_matrix(N_MELS, N_MFCC),
            "bands": bands,
            "low_1k": (freqs < 1000).astype(np.float32),
            "mid_1k_5k": ((freqs >= 1000) & (freqs < 5000)).astype(np.float32),
            "below_2k": freqs < 2000,
            "above_2k": (freqs >= 2000) & (freqs < 5000),
        }

    @property
    def n_lld(self) -> int:
        return len(LLD_NAMES)

    @property
    def dim(self) -> int:
        return len(LLD_NAMES) * len(FUNCTIONALS) + len(PROSODY_NAMES)

    @property
    def names(self) -> list[str]:
        return [f"{lld}_{f}" for f in FUNCTIONALS for lld in LLD_NAMES] + list(PROSODY_NAMES)


    def frames(self, signal: np.ndarray) -> np.ndarray:
        """Low-level descriptors, shape (n_frames, n_lld), one row per 10 ms; NaN where undefined."""
        t = self._tables
        signal = np.asarray(signal, dtype=np.float32)
        n = max(1, 1 + (len(signal) - 1) // HOP) if len(signal) else 0
        if n == 0:
            return np.zeros((0, self.n_lld), np.float32)
        raw = _frames(signal, WIN, n)
        windowed = raw * t["window"]
        power = np.abs(np.fft.rfft(windowed, N_FFT)).astype(np.float32) ** 2
        total = power.sum(axis=1) + EPS

        log_energy = 10.0 * np.log10(np.mean(raw * raw, axis=1) + EPS)
        signs = np.signbit(raw)
        zcr = np.mean(signs[:, 1:] != signs[:, :-1], axis=1)

        log_mel = np.log(power @ t["mel"] + EPS)
        mfcc = log_mel @ t["dct"]

        freqs = t["freqs"]
        centroid = power @ freqs / total
        spread = np.sqrt(np.maximum(power @ (freqs * freqs) / total - centroid**2, 0.0))
        cumulative = np.cumsum(power, axis=1)
        rolloff = freqs[np.minimum((cumulative < 0.85 * total[:, None]).sum(axis=1), freqs.size - 1)]
        log_power = np.log(power + EPS)
        flatness = np.exp(log_power.mean(axis=1)) / (power.mean(axis=1) + EPS)
        spectrum = np.sqrt(power / total[:, None])
        flux = np.r_[0.0, np.sqrt(np.sum(np.diff(spectrum, axis=0) ** 2, axis=1))]
        log_freqs = t["log_freqs"]
        centred_freqs = log_freqs - log_freqs.mean()
        slope = (log_power - log_power.mean(axis=1, keepdims=True)) @ centred_freqs / (centred_freqs @ centred_freqs)
        band_ratio = 10.0 * np.log10((power @ t["bands"] + EPS) / total[:, None])
        alpha = 10.0 * np.log10((power @ t["low_1k"] + EPS) / (power @ t["mid_1k_5k"] + EPS))
        hammarberg = 10.0 * np.log10(
            (power[:, t["below_2k"]].max(axis=1) + EPS) / (power[:, t["above_2k"]].max(axis=1) + EPS)
        )

        f0, voicing = self._pitch(signal, n)
        voiced = voicing >= VOICING_THRESHOLD
        f0_semitones = np.where(voiced, 12.0 * np.log2(np.maximum(f0, 1.0) / 27.5), np.nan)
        clipped = np.clip(voicing, 1e-3, 0.999)
        hnr = np.where(voiced, 10.0 * np.log10(clipped / (1.0 - clipped)), np.nan)

        out = np.column_stack(
            [log_energy, zcr, mfcc, centroid, spread, rolloff, flatness, flux, slope, band_ratio]
            + [alpha, hammarberg, voicing, log_mel, f0_semitones, hnr]
        )
        return out.astype(np.float32, copy=False)

    def _pitch(self, signal: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """F0 (Hz) and voicing strength (normalised autocorrelation peak) per frame."""
        t = self._tables
        frames = _frames(signal, PITCH_WIN, n)
        frames = (frames - frames.mean(axis=1, keepdims=True)) * t["pitch_window"]
        spectrum = np.fft.rfft(frames, PITCH_FFT)
        acf = np.fft.irfft(spectrum.real**2 + spectrum.imag**2, PITCH_FFT)
        lo, hi = int(SAMPLE_RATE / F0_MAX), int(SAMPLE_RATE / F0_MIN) + 2
        norm = acf[:, lo:hi] / (acf[:, :1] + EPS) / t["window_acf"][lo:hi]
        # The first lag whose peak reaches 90 % of the best one avoids picking a sub-octave.
        best = norm.max(axis=1)
        is_peak = np.zeros_like(norm, dtype=bool)
        is_peak[:, 1:-1] = (norm[:, 1:-1] >= norm[:, :-2]) & (norm[:, 1:-1] >= norm[:, 2:])
        good = is_peak & (norm >= 0.9 * best[:, None])
        lag = np.where(good.any(axis=1), good.argmax(axis=1), norm.argmax(axis=1))
        rows = np.arange(n)
        inner = np.clip(lag, 1, norm.shape[1] - 2)
        left, mid, right = norm[rows, inner - 1], norm[rows, inner], norm[rows, inner + 1]
        denominator = left - 2 * mid + right
        shift = np.where(np.abs(denominator) > EPS, 0.5 * (left - right) / np.where(denominator == 0, 1, denominator), 0)
        period = lo + inner + np.clip(shift, -0.5, 0.5)
        voicing = np.clip(norm[rows, lag], 0.0, 1.0)
        quiet = 10.0 * np.log10(np.mean(frames * frames, axis=1) + EPS) < -60.0
        voicing[quiet] = 0.0
        return SAMPLE_RATE / period, voicing

    def pool(self, lld: np.ndarray) -> np.ndarray:
        """Functionals of a span of frames, shape (dim,); finite for any span, even an empty one."""
        out = np.zeros(self.dim, np.float32)
        if len(lld) == 0:
            return out
        energy = lld[:, _ENERGY]
        voiced = lld[:, _VOICING] >= VOICING_THRESHOLD
        active = lld[energy >= energy.max() - ACTIVE_DB, :N_ALWAYS]
        stats = np.concatenate([_functionals(active), _functionals(lld[voiced, N_ALWAYS:])], axis=1)
        n_stats = stats.size
        out[:n_stats] = stats.ravel()
        out[n_stats:] = self._prosody(lld, voiced)
        return out

    @staticmethod
    def _prosody(lld: np.ndarray, voiced: np.ndarray) -> np.ndarray:
        seconds = len(lld) * HOP / SAMPLE_RATE
        f0 = lld[voiced, _F0]
        energy_db = lld[voiced, _ENERGY]
        slope = jitter = shimmer = 0.0
        if f0.size >= 3:
            times = np.flatnonzero(voiced) * (HOP / SAMPLE_RATE)
            centred = times - times.mean()
            slope = float(centred @ (f0 - f0.mean()) / max(centred @ centred, EPS))
            # Consecutive voiced frames only: the jump from one voiced run to the next is not jitter.
            consecutive = np.diff(np.flatnonzero(voiced)) == 1
            if consecutive.any():
                jitter = float(np.mean(np.abs(np.diff(f0))[consecutive]))
                shimmer = float(np.mean(np.abs(np.diff(energy_db))[consecutive]))
        edges = np.diff(np.r_[0, voiced.astype(np.int8), 0])
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        runs = (ends - starts) * (HOP / SAMPLE_RATE)
        pauses = (starts[1:] - ends[:-1]) * (HOP / SAMPLE_RATE)
        energy = lld[:, _ENERGY]
        peaks = (energy[1:-1] > energy[:-2]) & (energy[1:-1] >= energy[2:]) & (energy[1:-1] > energy.max() - 20.0)
        return np.array(
            [
                slope,
                jitter,
                shimmer,
                voiced.mean(),
                len(runs) / max(seconds, EPS),
                runs.mean() if runs.size else 0.0,
                pauses.mean() if pauses.size else 0.0,
                peaks.sum() / max(seconds, EPS),
            ],
            dtype=np.float32,
        )


def _functionals(x: np.ndarray) -> np.ndarray:
    """Statistics of each column of `x` (frames x descriptors), shape (len(FUNCTIONALS), columns)."""
    n, columns = x.shape
    if n == 0:
        return np.zeros((len(FUNCTIONALS), columns), np.float32)
    ordered = np.sort(x, axis=0)
    quantiles = ordered[np.round(np.array(_QUANTILES) * (n - 1)).astype(int)]
    mean = x.mean(axis=0)
    centred = x - mean
    std = np.sqrt((centred * centred).mean(axis=0))
    skew = (centred**3).mean(axis=0) / (std**3 + EPS)
    delta = np.diff(x, axis=0) if n > 1 else np.zeros((1, columns), np.float32)
    return np.vstack([mean, std, quantiles, skew, delta.std(axis=0), np.abs(delta).mean(axis=0)])
