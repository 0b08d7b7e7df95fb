"""Decode an audio file into a mono float32 signal at 16 kHz, or fail with a one-line `AudioError`.

libsndfile (via soundfile) reads wav/flac/ogg/aiff and friends; compressed and container formats
(mp3, m4a, mp4, webm, ...) go through the `ffmpeg` executable when it is on PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ser_core.contract.signals import SAMPLE_RATE, block_db
from ser_core.errors import AudioError
from ser_core.settings import get_settings

#: Extensions libsndfile owns: if it cannot open such a file, the file is broken (ffmpeg is not tried).
#: Any other extension goes to ffmpeg when libsndfile cannot open it.
SOUNDFILE_EXTENSIONS = frozenset(
    {".wav", ".wave", ".w64", ".rf64", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".aifc"}
) | {".au", ".snd", ".caf"}
#: Extensions always decoded by ffmpeg (one decoder per format, whatever the libsndfile build supports).
FFMPEG_EXTENSIONS = frozenset(
    {".mp3", ".m4a", ".mp4", ".aac", ".webm", ".mkv", ".mka", ".mov", ".wma", ".amr", ".3gp"}
) | {".opus"}
#: What folders, globs and corpus layouts take as audio (case-insensitive); other files are ignored.
AUDIO_EXTENSIONS = SOUNDFILE_EXTENSIONS | FFMPEG_EXTENSIONS
_MIN_RATE, _MAX_RATE = 1000, 768000
_MAX_CHANNELS = 256
#: libsndfile's frame count when the header does not know the length (a streamed FLAC, say).
_UNKNOWN_FRAMES = 2**63 - 1
#: Most samples (all channels) decoded at once, whatever the block length asked for.
_MAX_BLOCK_SAMPLES = 1 << 22
_INSTALL_FFMPEG = "install ffmpeg (`apt-get install ffmpeg` or `brew install ffmpeg`)"


def load_audio(
    path: str | os.PathLike[str], *, sample_rate: int = SAMPLE_RATE, max_seconds: float | None = None
) -> np.ndarray:
    """Return the file's audio as a 1-D float32 array, mono (channel mean), resampled to `sample_rate`.

    Inputs longer than `max_seconds` (default: the `max_audio_seconds` setting) are rejected before
    decoding, or as soon as decoding passes the limit when the header does not tell the length.
    Every failure is an `AudioError` whose message starts with the path.
    """
    blocks = list(stream_audio(path, sample_rate=sample_rate, max_seconds=max_seconds))
    samples = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    if samples.size == 0:
        raise AudioError(path, "contains no audio samples")
    return samples


def stream_audio(
    path: str | os.PathLike[str],
    *,
    sample_rate: int = SAMPLE_RATE,
    max_seconds: float | None = None,
    block_seconds: float = 5.0,
) -> Iterator[np.ndarray]:
    """The file's audio as consecutive 1-D float32 blocks (mono, at `sample_rate`) of about
    `block_seconds`, decoded and resampled as they are read: memory does not grow with the
    file's length. Same checks and errors as `load_audio`; an error may come after some blocks."""
    limit = get_settings().max_audio_seconds if max_seconds is None else float(max_seconds)
    if not limit > 0:
        raise ValueError(f"max_seconds must be positive, got {limit}")
    _check_file(path)
    ext = Path(path).suffix.lower()
    if ext not in FFMPEG_EXTENSIONS:
        try:
            f = _open_soundfile(path)
        except _NotSoundfile as exc:
            if ext in SOUNDFILE_EXTENSIONS:
                raise AudioError(path, f"not a readable audio file ({exc})") from None
            if shutil.which("ffmpeg") is None:
                hint = f"for mp3/m4a/webm and similar, {_INSTALL_FFMPEG}"
                raise AudioError(path, f"not a readable audio file ({exc}; {hint})") from None
        else:
            yield from _soundfile_blocks(path, f, sample_rate, limit, block_seconds)
            return
    yield from _ffmpeg_blocks(path, sample_rate, limit, block_seconds)


def is_silent(signal: np.ndarray, peak: float | None = None) -> bool:
    """True when no sample's magnitude reaches `peak` (default: the `silence_peak` setting)."""
    threshold = get_settings().silence_peak if peak is None else peak
    return signal.size == 0 or float(np.max(np.abs(signal))) < threshold


def duration_seconds(signal: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Length of `signal` in seconds."""
    return signal.shape[-1] / sample_rate if signal.ndim else 0.0


class _NotSoundfile(Exception):
    """libsndfile cannot open the file (internal: the caller may try ffmpeg)."""


def duration_of(path: str | os.PathLike[str]) -> float | None:
    """Seconds of audio from the file's header when libsndfile reads it (None otherwise: a
    compressed or video file, whose length ffmpeg only knows by decoding)."""
    try:
        with _open_soundfile(path) as f:
            return f.frames / f.samplerate if f.samplerate else None
    except (_NotSoundfile, RuntimeError):
        return None


def _check_file(path: str | os.PathLike[str]) -> None:
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise AudioError(path, "is a directory, not an audio file")
        if not stat.S_ISREG(st.st_mode):
            raise AudioError(path, "not a regular file")
        if st.st_size == 0:
            raise AudioError(path, "empty file (0 bytes)")
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise AudioError(path, "no such file") from None
    except PermissionError:
        raise AudioError(path, "permission denied") from None
    except OSError as exc:
        raise AudioError(path, f"cannot read file ({exc.strerror or exc})") from None


def _too_long(path: str | os.PathLike[str], seconds: float | None, limit: float) -> AudioError:
    length = "longer than the limit" if seconds is None else f"{seconds:.1f} s, longer than the limit"
    return AudioError(path, f"too long ({length} of {limit:g} s; set SER_MAX_AUDIO_SECONDS to change it)")


def _open_soundfile(path: str | os.PathLike[str]) -> sf.SoundFile:
    """Open with libsndfile; `_NotSoundfile` when it cannot (the caller may try ffmpeg)."""
    try:
        return sf.SoundFile(path)
    except (RuntimeError, ValueError, TypeError, OSError) as exc:
        raise _NotSoundfile(_soundfile_reason(exc)) from None


def _soundfile_blocks(
    path: str | os.PathLike[str], f: sf.SoundFile, sample_rate: int, limit: float, block_seconds: float
) -> Iterator[np.ndarray]:
    """Mono float32 blocks at `sample_rate`; the header is checked before any sample is decoded."""
    try:
        with f:
            frames, rate, channels = f.frames, f.samplerate, f.channels
            if not _MIN_RATE <= rate <= _MAX_RATE:
                raise AudioError(path, f"not a readable audio file (implausible sample rate {rate} Hz)")
            if not 1 <= channels <= _MAX_CHANNELS:
                raise AudioError(path, f"not a readable audio file (implausible channel count {channels})")
            if frames <= 0:
                raise AudioError(path, "contains no audio samples")
            if frames == _UNKNOWN_FRAMES:
                # libsndfile cannot seek in a stream of unknown length (a FLAC written to a pipe), and
                # soundfile seeks after every read of a seekable file: read it as a stream.
                f.seekable = lambda: False  # type: ignore[method-assign]
            elif frames / rate > limit:
                raise _too_long(path, frames / rate, limit)
            resampler = None
            if rate != sample_rate:
                resampler = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality="HQ")
            size = max(1, min(int(block_seconds * rate), _MAX_BLOCK_SAMPLES // channels))
            decoded = 0
            while (block := f.read(size, dtype="float32", always_2d=True)).shape[0]:
                decoded += block.shape[0]
                if decoded / rate > limit:  # a header may not know, or understate, the length
                    raise _too_long(path, None, limit)
                if not np.isfinite(block).all():
                    raise AudioError(path, "contains NaN or infinite samples")
                mono = block.mean(axis=1, dtype=np.float32) if channels > 1 else block[:, 0].copy()
                if resampler is not None:
                    mono = resampler.resample_chunk(mono)
                if mono.size:
                    yield np.ascontiguousarray(mono, dtype=np.float32)
            if resampler is not None and (tail := resampler.resample_chunk(np.zeros(0, np.float32), last=True)).size:
                yield np.ascontiguousarray(tail, dtype=np.float32)
    except (RuntimeError, ValueError, TypeError, OSError) as exc:
        raise AudioError(path, f"not a readable audio file ({_soundfile_reason(exc)})") from None


def _soundfile_reason(exc: Exception) -> str:
    if not isinstance(exc, sf.LibsndfileError):
        return str(exc)
    message = exc.error_string.rstrip(".")
    if message.startswith("File does not exist"):  # what libsndfile says when its mp3 sniffing misfires
        message = "unrecognised or corrupt data"
    return f"libsndfile: {message}"


def _ffmpeg_blocks(
    path: str | os.PathLike[str], sample_rate: int, limit: float, block_seconds: float
) -> Iterator[np.ndarray]:
    """Mono float32 blocks at `sample_rate` from an `ffmpeg` pipe; stops once past the length limit."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        ext = Path(path).suffix.lower() or "this format"
        raise AudioError(path, f"decoding {ext} needs ffmpeg, which is not on PATH: {_INSTALL_FFMPEG}")
    # "file:" keeps names starting with "-" or containing ":" from being read as options or protocols.
    source = "file:" + os.path.abspath(path)
    cmd = [exe, "-nostdin", "-v", "error", "-protocol_whitelist", "file", "-i", source]
    cmd += ["-vn", "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "-"]
    # 50 ms of slack for codec padding; a byte past the cap means the input is too long.
    cap = (int(min(limit, 1e9) * sample_rate) + sample_rate // 20) * 4
    size = max(4, int(block_seconds * sample_rate) * 4)
    received = 0
    decoded = False
    with tempfile.TemporaryFile() as errfile:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errfile)
        except OSError as exc:
            raise AudioError(path, f"cannot run ffmpeg ({exc.strerror or exc})") from None
        assert proc.stdout is not None
        try:
            while chunk := proc.stdout.read(min(size, cap + 1 - received)):
                received += len(chunk)
                if received > cap:
                    raise _too_long(path, None, limit)
                while len(chunk) % 4 and (more := proc.stdout.read(4 - len(chunk) % 4)):
                    chunk += more
                    received += len(more)
                samples = np.frombuffer(chunk[: len(chunk) - len(chunk) % 4], dtype="<f4").astype(np.float32)
                if not np.isfinite(samples).all():
                    raise AudioError(path, "contains NaN or infinite samples")
                if samples.size:
                    decoded = True
                    yield samples
            proc.stdout.close()
            returncode = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        if returncode != 0:
            errfile.seek(0)
            lines = errfile.read().decode("utf-8", "replace").strip().splitlines()
            reason = _clean_ffmpeg_line(lines[0], source) if lines else f"exit status {returncode}"
            raise AudioError(path, f"not a readable audio file (ffmpeg: {reason})")
    if not decoded:
        raise AudioError(path, "contains no audio samples")


def _clean_ffmpeg_line(line: str, source: str) -> str:
    """Drop ffmpeg's "[demuxer @ 0x...]" and "file:/path:" prefixes: the message already names the path."""
    line = re.sub(r"^\[[^\]]*\]\s*", "", line.strip())
    return line.removeprefix(source + ":").strip() or line


def speech_power(signal: np.ndarray, floor_db: float = 40.0) -> float:
    """Mean power of the 20 ms frames within `floor_db` of the loudest: the level of the speech,
    not of its pauses (SNR and dBFS figures refer to it)."""
    step = SAMPLE_RATE // 50
    n = len(signal) // step
    if n == 0:
        return float(np.mean(np.square(signal, dtype=np.float64))) if len(signal) else 0.0
    return loud_mean(np.square(signal[: n * step].astype(np.float64)).reshape(n, step).mean(axis=1), floor_db)


def loud_mean(power: np.ndarray, floor_db: float = 40.0) -> float:
    """Mean of the frame powers within `floor_db` of the loudest: `speech_power`'s rule, for
    callers that already have frame powers."""
    power = np.asarray(power, dtype=np.float64)
    return float(power[power >= power.max() * 10 ** (-floor_db / 10)].mean())


def at_level(signal: np.ndarray, dbfs: float, max_gain_db: float | None = None) -> np.ndarray:
    """Speech level set to `dbfs` (RMS of the speech frames relative to full scale), with at most
    `max_gain_db` of gain when given (so a near-silent file's noise is not blown up)."""
    gain = 10 ** (dbfs / 20) / np.sqrt(max(speech_power(signal), 1e-20))
    if max_gain_db is not None:
        gain = min(gain, 10 ** (max_gain_db / 20))
    return (signal * gain).astype(np.float32)


#: Samples per loudness block (50 ms): the envelope's finest resolution.
LOUDNESS_STEP = SAMPLE_RATE // 20


def envelope(signal: np.ndarray, max_points: int = 4000) -> tuple[np.ndarray, float]:
    """Loudness of a signal at up to 20 Hz (fewer points for long files); see `loudness`."""
    return loudness(block_db(signal, LOUDNESS_STEP), max_points)


def loudness(db: np.ndarray, max_points: int = 4000) -> tuple[np.ndarray, float]:
    """50 ms block powers (dB, from `block_db`) as values 0..1 over the 50 dB below the loudest,
    neighbouring blocks averaged (in power) down to at most `max_points`. Returns (values, rate in Hz)."""
    rate = SAMPLE_RATE / LOUDNESS_STEP
    db = np.asarray(db, dtype=np.float64)
    if len(db) == 0:
        return np.zeros(0, np.float32), rate
    group = -(-len(db) // max_points)
    if group > 1:
        starts = np.arange(0, len(db), group)
        power = np.add.reduceat(10 ** (db / 10), starts) / np.diff(np.r_[starts, len(db)])
        db = 10 * np.log10(power)
    values = np.clip((db - db.max() + 50.0) / 50.0, 0.0, 1.0)
    return values.astype(np.float32), rate / group
