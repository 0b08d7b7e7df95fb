"""Streaming decode and analysis in pieces: long recordings in bounded memory."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

import ser_core
from ser_core.pipeline.audio import LOUDNESS_STEP, SAMPLE_RATE, load_audio, loudness, stream_audio
from ser_core.pipeline.pieces import pieces
from ser_core.settings import get_settings

from .conftest import SPOKEN, SR, espeak, voice
from .test_transcriber import needs_tiny, needs_whisper, tokens


def speech_with_pauses(seconds: float, seed: int = 0) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Alternating angry-like and sad-like voice (2-3 s) and silent pauses (0.6-1 s)."""
    rng = np.random.default_rng(seed)
    parts, pauses, t, i = [], [], 0.0, 0
    while t < seconds:
        length = rng.uniform(2.0, 3.0)
        loud = i % 4 < 2
        parts.append(voice(240.0 if loud else 110.0, length, 0.5 if loud else 0.08, 5.0 if loud else 2.0, i))
        pause = rng.uniform(0.6, 1.0)
        parts.append(np.zeros(int(pause * SR), np.float32))
        pauses.append((t + length, t + length + pause))
        t += length + pause
        i += 1
    return np.concatenate(parts), pauses


def random_blocks(signal: np.ndarray, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    cuts = np.cumsum(rng.integers(100, 60000, size=len(signal) // 100))
    return np.split(signal, cuts[cuts < len(signal)])


def test_pieces_cover_the_stream_and_cut_in_pauses() -> None:
    signal, pauses = speech_with_pauses(70.0)
    found = list(pieces(random_blocks(signal, 1), seconds=10.0))
    assert len(found) >= 7
    assert np.array_equal(np.concatenate([piece for _, piece in found]), signal)
    offsets = [offset for offset, _ in found]
    assert offsets == list(np.cumsum([0] + [len(p) for _, p in found[:-1]]))
    for offset, piece in found:
        assert len(piece) <= 10 * SR
        assert offset % LOUDNESS_STEP == 0
    for offset in offsets[1:]:  # every cut is in a pause, not inside the voice
        assert any(a <= offset / SR <= b for a, b in pauses), offset / SR


def test_short_stream_is_one_piece() -> None:
    signal = np.ones(5 * SR, np.float32)
    [(offset, piece)] = pieces(random_blocks(signal, 2), seconds=10.0)
    assert offset == 0 and np.array_equal(piece, signal)


def test_stream_audio_resamples_in_blocks_like_one_shot(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    stereo = (0.1 * rng.standard_normal((44100 * 23, 2))).astype(np.float32)
    path = tmp_path / "long.wav"
    sf.write(path, stereo, 44100)
    blocks = list(stream_audio(path, block_seconds=2.0))
    assert len(blocks) >= 10 and max(len(b) for b in blocks) <= 2.1 * SAMPLE_RATE
    streamed = np.concatenate(blocks)
    whole = soxr.resample(stereo.mean(axis=1), 44100, SAMPLE_RATE, quality="HQ")
    assert streamed.shape == whole.shape
    assert np.abs(streamed - whole).max() < 1e-3


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_ffmpeg_stream_in_blocks_and_closed_early(tmp_path: Path) -> None:
    path = tmp_path / "tone.mp3"
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=30"]
    subprocess.run([*cmd, "-ar", "44100", str(path)], check=True)
    blocks = list(stream_audio(path, block_seconds=1.0))
    assert len(blocks) >= 25 and max(len(b) for b in blocks) <= SAMPLE_RATE
    assert abs(sum(len(b) for b in blocks) - 30 * SAMPLE_RATE) < 0.1 * SAMPLE_RATE
    stream = stream_audio(path, block_seconds=1.0)
    next(stream)
    assert "ffmpeg" in child_commands()
    stream.close()  # a consumer that stops early stops ffmpeg too
    assert "ffmpeg" not in child_commands()


def child_commands() -> str:
    """Command lines of this process's live children (Linux /proc)."""
    tasks = Path("/proc/self/task")
    if not tasks.is_dir():
        pytest.skip("needs Linux /proc")
    pids = [pid for task in tasks.iterdir() for pid in (task / "children").read_text().split()]
    return " ".join(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace") for pid in pids)


def test_loudness_averages_power_down_to_max_points() -> None:
    db = np.r_[np.full(100, -20.0), np.full(100, -60.0)]
    values, rate = loudness(db, max_points=50)
    assert len(values) == 50 and rate == pytest.approx(5.0)
    assert values[:25] == pytest.approx(1.0) and values[25:] == pytest.approx(0.2)


def label_at(result: ser_core.AnalysisResult, times: np.ndarray) -> list[str | None]:
    out = []
    for t in times:
        out.append(next((s.label for s in result.segments if s.start <= t < s.end), None))
    return out


def test_analysis_in_pieces_matches_the_whole(tmp_path: Path, trained_model: Path, monkeypatch) -> None:
    signal, _ = speech_with_pauses(75.0, seed=3)
    path = tmp_path / "long.flac"
    sf.write(path, signal, SR)
    whole = ser_core.analyze(path, model=trained_model)
    monkeypatch.setenv("SER_PIECE_SECONDS", "20")
    get_settings.cache_clear()
    assert len(list(pieces(stream_audio(path), 20.0))) >= 4
    parts = ser_core.analyze(path, model=trained_model)
    assert parts.duration == whole.duration == pytest.approx(len(signal) / SR, abs=1e-3)
    assert len(parts.envelope) == len(whole.envelope)
    speech = sum(b - a for a, b in parts.speech)
    assert speech == pytest.approx(sum(b - a for a, b in whole.speech), rel=0.05)
    times = np.arange(0.0, whole.duration, 0.1)
    same = np.mean([a == b for a, b in zip(label_at(parts, times), label_at(whole, times), strict=True)])
    assert same >= 0.9
    assert parts.label == whole.label
    assert sum(parts.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
    starts = [s.start for s in parts.segments]
    assert starts == sorted(starts) and parts.segments[-1].end <= parts.duration


@needs_whisper
@needs_tiny
def test_transcript_across_pieces(tmp_path: Path, trained_model: Path, monkeypatch) -> None:
    monkeypatch.setenv("SER_WHISPER_MODEL", "tiny.en")
    monkeypatch.setenv("SER_VAD", "silero")
    monkeypatch.setenv("SER_PIECE_SECONDS", "10")
    get_settings.cache_clear()
    sentences = [load_audio(espeak(text, tmp_path / f"s{i}.wav")) for i, text in enumerate(SPOKEN * 3)]
    pause = np.zeros(int(1.5 * SR), np.float32)
    path = tmp_path / "talk.wav"
    sf.write(path, np.concatenate([part for s in sentences for part in (s, pause)]), SR)
    result = ser_core.analyze(path, model=trained_model, transcript=True)
    assert result.duration > 20 and result.language == "en"
    heard = [t for w in result.words for t in tokens(w.text)]
    expected = [t for sentence in SPOKEN * 3 for t in tokens(sentence)]
    assert len(heard) >= 0.8 * len(expected)
    starts = [w.start for w in result.words]
    assert starts == sorted(starts) and result.words[-1].end <= result.duration
    assert result.timeline and result.timeline[-1].end <= result.duration
