"""Recording channels simulated on a 16 kHz signal: telephone, low-rate codecs, noise, rooms,
levels and short crops.

The robustness benchmark applies them to test clips (one named condition each) and `train` can add
copies of the training clips sent through a random mix of them (`training_copies`), so a model sees
the audio people really have. Every function is deterministic given its `rng`. Codecs run through
the `ffmpeg` executable; rooms are image-source impulse responses from pyroomacoustics (an optional
dependency, `pip install ser-core[augment]`).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence
from functools import lru_cache, partial

import numpy as np

from ser_core.errors import SerError
from ser_core.pipeline.audio import SAMPLE_RATE, at_level, speech_power


class ChannelError(SerError):
    """A channel cannot be simulated here (ffmpeg or pyroomacoustics missing, codec failed)."""


def _ffmpeg(signal: np.ndarray, encode: list[str], container: str) -> np.ndarray:
    """The signal encoded with ffmpeg arguments `encode` into `container`, decoded back to 16 kHz."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise ChannelError("codec channels need ffmpeg on PATH (apt-get install ffmpeg)")
    raw = ["-f", "f32le", "-ar", str(SAMPLE_RATE), "-ac", "1"]
    coded = subprocess.run(
        [exe, "-nostdin", "-v", "error", *raw, "-i", "pipe:0", *encode, "-f", container, "pipe:1"],
        input=np.ascontiguousarray(signal, dtype="<f4").tobytes(),
        capture_output=True,
    )
    if coded.returncode != 0:
        raise ChannelError(f"ffmpeg could not encode {encode}: {coded.stderr.decode(errors='replace').strip()}")
    decoded = subprocess.run(
        [exe, "-nostdin", "-v", "error", "-f", container, "-i", "pipe:0", *raw, "pipe:1"],
        input=coded.stdout,
        capture_output=True,
    )
    if decoded.returncode != 0:
        raise ChannelError(f"ffmpeg could not decode {container}: {decoded.stderr.decode(errors='replace').strip()}")
    out = np.frombuffer(decoded.stdout, dtype="<f4").astype(np.float32)
    return _fit_length(out, len(signal))


def _fit_length(signal: np.ndarray, n: int) -> np.ndarray:
    return signal[:n] if len(signal) >= n else np.pad(signal, (0, n - len(signal)))


def telephone(signal: np.ndarray) -> np.ndarray:
    """Narrowband telephone: 300-3400 Hz, 8 kHz sampling, G.711 mu-law, back to 16 kHz."""
    return _ffmpeg(signal, ["-af", "highpass=f=300,lowpass=f=3400", "-ar", "8000", "-c:a", "pcm_mulaw"], "wav")


def gsm(signal: np.ndarray) -> np.ndarray:
    """GSM 06.10 full rate (13 kbit/s at 8 kHz), the mobile-phone codec ffmpeg has built in."""
    return _ffmpeg(signal, ["-af", "highpass=f=300,lowpass=f=3400", "-ar", "8000", "-c:a", "libgsm"], "gsm")


def mp3(signal: np.ndarray, kbps: int = 32) -> np.ndarray:
    return _ffmpeg(signal, ["-c:a", "libmp3lame", "-b:a", f"{kbps}k"], "mp3")


def opus(signal: np.ndarray, kbps: int = 8) -> np.ndarray:
    return _ffmpeg(signal, ["-c:a", "libopus", "-b:a", f"{kbps}k"], "ogg")


def add_noise(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`noise` (looped or cut to length) scaled to `snr_db` below the speech power, added."""
    if len(noise) < len(signal):
        noise = np.tile(noise, -(-len(signal) // max(len(noise), 1)))
    noise = noise[: len(signal)].astype(np.float64)
    gain = np.sqrt(speech_power(signal) / max(np.mean(noise**2), 1e-20) * 10 ** (-snr_db / 10))
    return (signal + gain * noise).astype(np.float32)


def white(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(n)


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """1/f noise: white noise shaped in the frequency domain (DC left out)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1] if n > 1 else 1.0
    return np.fft.irfft(spectrum / np.sqrt(freqs), n)


def babble(n: int, talkers: Sequence[np.ndarray], rng: np.random.Generator, count: int = 4) -> np.ndarray:
    """`count` talkers drawn from `talkers` at equal level, each from a random offset (looped)."""
    if not talkers:
        raise ChannelError("babble noise needs recordings of other speakers")
    out = np.zeros(n)
    chosen = rng.choice(len(talkers), size=min(count, len(talkers)), replace=False)
    for talker in (talkers[i] for i in chosen):
        talker = np.asarray(talker, dtype=np.float64)
        talker = np.tile(talker, -(-n // max(len(talker), 1)) + 1)
        start = int(rng.integers(0, max(len(talker) - n, 1)))
        piece = talker[start : start + n]
        out += piece / np.sqrt(max(speech_power(piece), 1e-20))
    return out


@lru_cache(maxsize=128)
def room_response(seed: int, rt60: float) -> np.ndarray:
    """Impulse response of a random shoebox room (3-9 m x 3-7 m x 2.5-3.5 m) with reverberation
    time `rt60`, source and microphone at random places at least 1 m apart (image sources).
    Cached: callers draw from a small bank of (seed, rt60) pairs."""
    try:
        import pyroomacoustics as pra
    except ImportError as exc:
        raise ChannelError("room channels need pyroomacoustics (pip install ser-core[augment])") from exc
    rng = np.random.default_rng(seed)
    dims = rng.uniform([3.0, 3.0, 2.5], [9.0, 7.0, 3.5])
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=max_order)
    while True:
        source, mic = rng.uniform(0.5, dims - 0.5, size=(2, 3))
        if np.linalg.norm(source - mic) >= 1.0:
            break
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    return np.asarray(room.rir[0][0], dtype=np.float64)


def _room(k: int, low: float, high: float, bank: int) -> np.ndarray:
    """Room `k` of a bank of `bank` rooms whose RT60 runs evenly from `low` to `high`."""
    return room_response(k, round(low + (high - low) * (k % bank) / max(bank - 1, 1), 3))


def reverberate(signal: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """The signal played in a room: convolved, cut to its length, speech level kept."""
    from scipy.signal import fftconvolve

    wet = fftconvolve(signal.astype(np.float64), rir)[: len(signal)]
    gain = np.sqrt(speech_power(signal) / max(speech_power(wet), 1e-20))
    return (wet * gain).astype(np.float32)


def at_peak(signal: np.ndarray, dbfs: float) -> np.ndarray:
    """Peak set to `dbfs` relative to full scale (a quiet recording: -25 dBFS peak puts the speech
    level near -40 dBFS)."""
    peak = float(np.max(np.abs(signal))) if len(signal) else 0.0
    return (signal * (10 ** (dbfs / 20) / peak) if peak > 0 else signal).astype(np.float32)


def clipped(signal: np.ndarray, over_db: float = 12.0) -> np.ndarray:
    """Gain that drives the peak `over_db` past full scale, then hard clipping at +-1."""
    peak = float(np.max(np.abs(signal))) if len(signal) else 0.0
    if peak <= 0:
        return signal.astype(np.float32)
    return np.clip(signal * (10 ** (over_db / 20) / peak), -1.0, 1.0).astype(np.float32)


def first_speech(signal: np.ndarray, seconds: float = 1.0) -> np.ndarray:
    """The first `seconds` of speech: from where the speech extent starts (40 dB rule)."""
    from ser_core.contract.signals import speech_extent

    start, _ = speech_extent(signal, pad=0.0)
    begin = int(start * SAMPLE_RATE)
    return signal[begin : begin + int(seconds * SAMPLE_RATE)].astype(np.float32)


def speech_crop(signal: np.ndarray, rng: np.random.Generator, low: float = 1.0, high: float = 2.0) -> np.ndarray:
    """A random stretch of `low`-`high` seconds inside the speech extent (the whole extent when it
    is shorter): a short utterance made from a long one."""
    from ser_core.contract.signals import speech_extent

    start, end = speech_extent(signal, pad=0.0)
    a, b = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
    size = int(rng.uniform(low, high) * SAMPLE_RATE)
    if b - a <= size:
        return signal[a:b].astype(np.float32)
    begin = a + int(rng.integers(0, b - a - size + 1))
    return signal[begin : begin + size].astype(np.float32)


Channel = Callable[[np.ndarray, np.random.Generator, Sequence[np.ndarray]], np.ndarray]

#: Test conditions of the robustness benchmark, by name. Each takes (signal, rng, babble talkers).
CONDITIONS: dict[str, Channel] = {
    "clean": lambda x, rng, talkers: x.astype(np.float32),
    "telephone": lambda x, rng, talkers: telephone(x),
    "gsm": lambda x, rng, talkers: gsm(x),
    "mp3-32k": lambda x, rng, talkers: mp3(x, 32),
    "babble-10dB": lambda x, rng, talkers: add_noise(x, babble(len(x), talkers, rng), 10.0),
    "white-15dB": lambda x, rng, talkers: add_noise(x, white(len(x), rng), 15.0),
    "pink-15dB": lambda x, rng, talkers: add_noise(x, pink(len(x), rng), 15.0),
    "reverb": lambda x, rng, talkers: reverberate(x, _room(int(rng.integers(16)), 0.3, 0.9, 16)),
    "peak-25dBFS": lambda x, rng, talkers: at_peak(x, -25.0),
    "clipped": lambda x, rng, talkers: clipped(x),
    "first-1s": lambda x, rng, talkers: first_speech(x, 1.0),
}


#: Conditions that run a codec: `apply_many` sends a batch through one ffmpeg call.
CODECS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "telephone": telephone,
    "gsm": gsm,
    "mp3-32k": lambda x: mp3(x, 32),
}


def apply_many(name: str, signals: Sequence[np.ndarray], seeds: Sequence[int], talkers: Sequence[np.ndarray] = ()) -> list[np.ndarray]:
    """`apply` to many signals, each with its own seed (results do not depend on the batch).
    Codecs encode the batch in one pass, the signals joined by 0.5 s of silence (codec state
    does not carry across that much silence), then cut apart again."""
    if name not in CODECS:
        return [apply(name, x, np.random.default_rng(seed), talkers) for x, seed in zip(signals, seeds, strict=True)]
    return _batched(CODECS[name], signals)


def _batched(codec: Callable[[np.ndarray], np.ndarray], signals: Sequence[np.ndarray]) -> list[np.ndarray]:
    """`codec` run once over the signals joined by 0.5 s of silence, then cut apart again."""
    gap = np.zeros(SAMPLE_RATE // 2, np.float32)
    starts = np.cumsum([0] + [len(x) + len(gap) for x in signals])
    joined = np.concatenate([part for x in signals for part in (np.asarray(x, np.float32), gap)])
    coded = codec(joined)
    return [coded[a : a + len(x)] for a, x in zip(starts, signals, strict=False)]


def apply(name: str, signal: np.ndarray, rng: np.random.Generator, talkers: Sequence[np.ndarray] = ()) -> np.ndarray:
    if name not in CONDITIONS:
        raise ChannelError(f"unknown condition {name!r}; known: {', '.join(CONDITIONS)}")
    return CONDITIONS[name](np.asarray(signal, dtype=np.float32), rng, talkers)


#: Bumped whenever `training_copies` changes what it makes (part of the feature-cache key).
COPIES_VERSION = "copies-v1"


def training_copies(
    signals: Sequence[np.ndarray], seeds: Sequence[int], talkers: Sequence[np.ndarray] = ()
) -> list[np.ndarray]:
    """Each signal through a random channel of the kinds users record with, drawn with its own
    seed and independently of the benchmark's conditions (other rates, SNRs and rooms): a room
    (RT60 0.2-1.0 s, 30 %), then a telephone or mobile codec, mp3 or Opus at a random rate, noise at
    5-25 dB (white, pink or babble), or a level change. Codec copies are encoded in batches."""
    out: list[np.ndarray] = []
    batches: dict[tuple[str, int], list[int]] = {}
    for index, (signal, seed) in enumerate(zip(signals, seeds, strict=True)):
        rng = np.random.default_rng(seed)
        x = np.asarray(signal, dtype=np.float32)
        if rng.random() < 0.3:
            x = reverberate(x, _room(1000 + int(rng.integers(32)), 0.2, 1.0, 32))
        kind = str(rng.choice(["telephone", "gsm", "mp3", "opus", "noise", "level"]))
        if kind == "noise":
            source = str(rng.choice(["white", "pink", "babble"] if talkers else ["white", "pink"]))
            noise = babble(len(x), talkers, rng) if source == "babble" else (white if source == "white" else pink)(len(x), rng)
            x = add_noise(x, noise, float(rng.uniform(5.0, 25.0)))
        elif kind == "level":
            x = at_level(x, float(rng.uniform(-40.0, -10.0)))
        else:
            rate = {"telephone": 0, "gsm": 0, "mp3": int(rng.choice([24, 32, 48, 64])), "opus": int(rng.choice([8, 12, 16, 24]))}[kind]
            batches.setdefault((kind, rate), []).append(index)
        out.append(x)
    for (kind, rate), members in batches.items():
        codec = {"telephone": telephone, "gsm": gsm, "mp3": partial(mp3, kbps=rate), "opus": partial(opus, kbps=rate)}[kind]
        for index, coded in zip(members, _batched(codec, [out[i] for i in members]), strict=True):
            out[index] = coded
    return out
