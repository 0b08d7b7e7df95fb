"""Tests for `ser_core.pipeline.audio`: every input is synthesised into tmp_path."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser_core.errors import AudioError
from ser_core.pipeline import audio
from ser_core.pipeline.audio import SAMPLE_RATE, duration_seconds, is_silent, load_audio
from ser_core.settings import get_settings

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


def sine(freq: float, rate: int, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_hz(signal: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(signal.size)))
    return float(np.fft.rfftfreq(signal.size, 1 / rate)[np.argmax(spectrum)])


def assert_audio_error(path: Path, cause: str, **kwargs: object) -> AudioError:
    with pytest.raises(AudioError) as info:
        load_audio(path, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert cause in message, message
    assert "\n" not in message
    return info.value


def make_with_ffmpeg(path: Path, seconds: float, freq: int = 440, rate: int = 44100) -> Path:
    source = f"sine=frequency={freq}:duration={seconds}"
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source]
    subprocess.run([*cmd, "-ar", str(rate), "-ac", "1", str(path)], check=True)
    return path


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


# --- decoding ---------------------------------------------------------------------------------------------


def test_sine_wav_at_16k_round_trips(tmp_path: Path) -> None:
    x = sine(220, 16000, amp=0.7)
    sf.write(tmp_path / "s.wav", x, 16000, subtype="FLOAT")
    y = load_audio(tmp_path / "s.wav")
    assert y.dtype == np.float32 and y.ndim == 1 and y.shape == (16000,)
    assert np.max(np.abs(y - x)) < 1e-3
    assert abs(np.max(np.abs(y)) - 0.7) < 1e-3


def test_int16_wav_is_scaled_to_unit_range(tmp_path: Path) -> None:
    x = sine(220, 16000, amp=0.5)
    sf.write(tmp_path / "s.wav", x, 16000, subtype="PCM_16")
    y = load_audio(str(tmp_path / "s.wav"))  # str paths work as well as Path
    assert y.dtype == np.float32 and y.shape == (16000,)
    assert np.max(np.abs(y - x)) < 2 / 32768


def test_8k_stereo_becomes_16k_mono_channel_mean(tmp_path: Path) -> None:
    base = sine(300, 8000, amp=1.0)
    sf.write(tmp_path / "st.wav", np.stack([0.6 * base, 0.2 * base], axis=1), 8000, subtype="FLOAT")
    y = load_audio(tmp_path / "st.wav")
    assert y.ndim == 1 and y.dtype == np.float32
    assert abs(y.size - 16000) <= 1
    expected = sine(300, 16000, amp=0.4)[: y.size]  # mean of 0.6 and 0.2, not either channel alone
    inner = slice(200, y.size - 200)
    assert np.max(np.abs(y[inner] - expected[inner])) < 1e-2


def test_opposite_channels_cancel(tmp_path: Path) -> None:
    base = sine(300, 16000)
    sf.write(tmp_path / "st.wav", np.stack([base, -base], axis=1), 16000, subtype="FLOAT")
    assert np.max(np.abs(load_audio(tmp_path / "st.wav"))) < 1e-6


def test_96k_is_resampled_with_antialiasing(tmp_path: Path) -> None:
    # 10 kHz is above the 8 kHz Nyquist limit of the output: it must be filtered out, not aliased to 6 kHz.
    x = sine(1000, 96000) + sine(10000, 96000, amp=0.3)
    sf.write(tmp_path / "hi.wav", x, 96000, subtype="FLOAT")
    y = load_audio(tmp_path / "hi.wav")
    assert abs(y.size - 16000) <= 1
    expected = sine(1000, 16000)[: y.size]
    inner = slice(200, y.size - 200)
    assert np.max(np.abs(y[inner] - expected[inner])) < 1e-2


@pytest.mark.parametrize(("name", "tolerance"), [("s.flac", 1e-2), ("s.ogg", 0.1)])
def test_44k1_flac_and_ogg(tmp_path: Path, name: str, tolerance: float) -> None:
    sf.write(tmp_path / name, sine(440, 44100), 44100)
    y = load_audio(tmp_path / name)
    assert abs(y.size - 16000) <= 1
    assert dominant_hz(y) == pytest.approx(440, abs=2)
    inner = slice(400, y.size - 400)
    assert np.max(np.abs(y[inner] - sine(440, 16000)[: y.size][inner])) < tolerance


def test_unknown_extension_still_read_by_soundfile(tmp_path: Path) -> None:
    sf.write(tmp_path / "s.wav", sine(220, 16000), 16000)
    (tmp_path / "s.wav").rename(tmp_path / "s.dat")
    assert load_audio(tmp_path / "s.dat").shape == (16000,)


def test_float_wav_target_rate_and_helpers(tmp_path: Path) -> None:
    sf.write(tmp_path / "s.wav", sine(220, 16000), 16000, subtype="DOUBLE")
    y = load_audio(tmp_path / "s.wav", sample_rate=8000)
    assert y.dtype == np.float32 and abs(y.size - 8000) <= 1
    assert duration_seconds(y, 8000) == pytest.approx(1.0, abs=1e-3)
    assert duration_seconds(np.zeros(24000, np.float32)) == pytest.approx(1.5)


@needs_ffmpeg
def test_mp3_decodes_via_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_with_ffmpeg(tmp_path / "s.mp3", 1.5)
    calls: list[list[str]] = []
    real_popen = subprocess.Popen

    def spy(cmd: list[str], *args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        calls.append(cmd)
        return real_popen(cmd, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(audio.subprocess, "Popen", spy)
    y = load_audio(path)
    assert len(calls) == 1 and os.path.basename(calls[0][0]) == "ffmpeg"
    assert y.dtype == np.float32 and y.ndim == 1
    assert duration_seconds(y) == pytest.approx(1.5, abs=0.05)
    assert dominant_hz(y) == pytest.approx(440, abs=2)
    assert 0.05 < np.max(np.abs(y)) <= 1.0


@needs_ffmpeg
def test_unknown_extension_falls_back_to_ffmpeg(tmp_path: Path) -> None:
    m4a = make_with_ffmpeg(tmp_path / "s.m4a", 1.0, freq=660)  # AAC in MP4: libsndfile cannot open it
    y = load_audio(m4a.rename(tmp_path / "s.audio"))
    assert duration_seconds(y) == pytest.approx(1.0, abs=0.05)
    assert dominant_hz(y) == pytest.approx(660, abs=2)


@needs_ffmpeg
def test_ffmpeg_output_is_capped_at_max_seconds(tmp_path: Path) -> None:
    path = make_with_ffmpeg(tmp_path / "long.mp3", 3.0)
    err = assert_audio_error(path, "too long", max_seconds=1.0)
    assert "SER_MAX_AUDIO_SECONDS" in str(err)
    assert load_audio(path, max_seconds=3.0).size == pytest.approx(48000, abs=800)


@needs_ffmpeg
def test_ffmpeg_failure_reports_its_first_error_line(tmp_path: Path) -> None:
    path = tmp_path / "junk.m4a"
    path.write_bytes(b"this is not audio\n" * 100)
    err = assert_audio_error(path, "not a readable audio file (ffmpeg: ")
    assert "file:" not in err.cause and "@ 0x" not in err.cause


def test_ffmpeg_missing_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "s.mp3"
    path.write_bytes(b"ID3" + bytes(500))  # never decoded: ffmpeg is looked up first
    empty = tmp_path / "no-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    err = assert_audio_error(path, "ffmpeg")
    assert "apt-get install ffmpeg" in err.cause and "brew install ffmpeg" in err.cause


def test_unknown_format_without_ffmpeg_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "noise.bin"
    path.write_bytes(np.random.default_rng(0).bytes(4000))
    monkeypatch.setattr(audio.shutil, "which", lambda *a, **k: None)
    err = assert_audio_error(path, "not a readable audio file")
    assert "ffmpeg" in err.cause


# --- bad inputs -------------------------------------------------------------------------------------------


def _missing(d: Path) -> Path:
    return d / "missing.wav"


def _directory(d: Path) -> Path:
    (d / "dir.wav").mkdir()
    return d / "dir.wav"


def _zero_bytes(d: Path) -> Path:
    (d / "empty.wav").write_bytes(b"")
    return d / "empty.wav"


def _zero_frames(d: Path) -> Path:
    sf.write(d / "z.wav", np.zeros(0, np.float32), 16000)
    assert (d / "z.wav").stat().st_size > 0
    return d / "z.wav"


def _truncated_header(d: Path) -> Path:
    sf.write(d / "full.wav", sine(220, 16000), 16000)
    (d / "trunc.wav").write_bytes((d / "full.wav").read_bytes()[:20])
    return d / "trunc.wav"


def _random_wav(d: Path) -> Path:
    (d / "noise.wav").write_bytes(b"\x00" + np.random.default_rng(0).bytes(8000))
    return d / "noise.wav"


def _random_wav_mp3_sync(d: Path) -> Path:
    # Starts like an MPEG frame: libsndfile's mp3 sniffing takes it and fails with a misleading message.
    data = np.random.default_rng(1).bytes(8000)
    assert data[:2] == b"\xff\xe4"
    (d / "sync.wav").write_bytes(data)
    return d / "sync.wav"


def _nan_samples(d: Path) -> Path:
    x = sine(220, 8000)  # 8 kHz: the NaN must be caught before resampling
    x[1234] = np.nan
    sf.write(d / "nan.wav", x, 8000, subtype="FLOAT")
    return d / "nan.wav"


def _inf_samples(d: Path) -> Path:
    x = np.stack([sine(220, 16000), sine(220, 16000)], axis=1)
    x[50, 1] = np.inf
    sf.write(d / "inf.wav", x, 16000, subtype="FLOAT")
    return d / "inf.wav"


def _rate(hz: int) -> Callable[[Path], Path]:
    def make(d: Path) -> Path:
        sf.write(d / "r.wav", sine(220, 16000), 16000, subtype="PCM_16")
        data = bytearray((d / "r.wav").read_bytes())
        assert data[24:28] == (16000).to_bytes(4, "little")
        data[24:28] = hz.to_bytes(4, "little")
        data[28:32] = (hz * 2).to_bytes(4, "little")
        (d / "r.wav").write_bytes(bytes(data))
        return d / "r.wav"

    return make


@pytest.mark.parametrize(
    ("make", "cause"),
    [
        (_missing, "no such file"),
        (_directory, "is a directory, not an audio file"),
        (_zero_bytes, "empty file (0 bytes)"),
        (_zero_frames, "contains no audio samples"),
        (_truncated_header, "not a readable audio file (libsndfile: "),
        (_random_wav, "not a readable audio file (libsndfile: Format not recognised)"),
        (_random_wav_mp3_sync, "not a readable audio file (libsndfile: unrecognised or corrupt data)"),
        (_nan_samples, "contains NaN or infinite samples"),
        (_inf_samples, "contains NaN or infinite samples"),
        (_rate(500), "implausible sample rate 500 Hz"),
        (_rate(1_000_000), "implausible sample rate 1000000 Hz"),
    ],
    ids=lambda v: getattr(v, "__name__", None) if callable(v) else None,
)
def test_bad_input_raises_one_line_audio_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: Callable[[Path], Path], cause: str
) -> None:
    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError("ffmpeg must not be spawned for files soundfile owns")

    path = make(tmp_path)
    monkeypatch.setattr(audio.subprocess, "Popen", no_subprocess)
    assert_audio_error(path, cause)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions and non-root")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "locked.wav"
    sf.write(path, sine(220, 16000), 16000)
    path.chmod(0)
    try:
        assert_audio_error(path, "permission denied")
    finally:
        path.chmod(0o644)


def test_too_long_uses_setting_and_names_env_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    path = tmp_path / "two.wav"
    sf.write(path, sine(220, 16000, seconds=2.0), 16000)
    monkeypatch.setenv("SER_MAX_AUDIO_SECONDS", "0.5")
    get_settings.cache_clear()
    read_called = False
    real_read = sf.SoundFile.read

    def spy_read(self: sf.SoundFile, *args: object, **kwargs: object) -> np.ndarray:
        nonlocal read_called
        read_called = True
        return real_read(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sf.SoundFile, "read", spy_read)
    err = assert_audio_error(path, "too long")
    assert "0.5 s" in err.cause and "SER_MAX_AUDIO_SECONDS" in err.cause
    assert not read_called, "the length limit must be enforced from the header, before decoding"
    assert load_audio(path, max_seconds=2.0).size == 32000  # explicit argument overrides the setting
    assert read_called


def test_is_silent() -> None:
    assert is_silent(np.zeros(16000, np.float32))
    assert is_silent(np.zeros(0, np.float32))
    assert not is_silent(sine(220, 16000))
    quiet = sine(220, 16000, amp=5e-5)
    assert is_silent(quiet)  # below the default 1e-4 peak
    assert not is_silent(quiet, peak=1e-5)


def test_permission_error_becomes_audio_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulated, so it also runs as root (where chmod 0 does not stop reads).
    path = tmp_path / "locked.wav"
    sf.write(path, sine(220, 16000), 16000)

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(audio, "open", denied, raising=False)
    assert_audio_error(path, "permission denied")
