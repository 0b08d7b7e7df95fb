"""Shared fixtures: isolated settings/plugins and synthetic voices (no corpus files needed)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser_core.plugins import manager as plugins
from ser_core.settings import get_settings

SR = 16000


@pytest.fixture(autouse=True)
def isolated(tmp_path_factory, monkeypatch):
    """Every test gets its own models/cache/data dirs and a fresh plugin manager."""
    root = tmp_path_factory.mktemp("ser_home")
    for name in ("models", "cache", "data"):
        monkeypatch.setenv(f"SER_{name.upper()}_DIR", str(root / name))
    # Synthetic voices are not speech to silero, and most tests are about emotions, not words:
    # tests of the VAD and the transcriber switch these back on.
    monkeypatch.setenv("SER_VAD", "energy")
    monkeypatch.setenv("SER_TRANSCRIPT", "false")
    monkeypatch.delenv("SER_PLUGINS", raising=False)
    monkeypatch.delenv("SER_TRACE_HOOKS", raising=False)
    get_settings.cache_clear()
    plugins.reset()
    yield root
    get_settings.cache_clear()
    plugins.reset()


def voice(
    f0: float, seconds: float, loudness: float, syllables_per_s: float, seed: int, breath: float = 0.02
):
    """A crude voiced signal: a harmonic source at `f0` with jitter and vibrato, a formant-like
    spectral envelope, a syllable-rate amplitude envelope and breath noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    contour = f0 * (
        1
        + 0.05 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
        + 0.01 * rng.standard_normal(n).cumsum() / np.sqrt(n)
    )
    phase = 2 * np.pi * np.cumsum(contour) / SR
    harmonics = sum((0.8**k) * np.sin(k * phase) for k in range(1, 25) if k * f0 < 7000)
    syllables = 0.5 * (1 + np.sin(2 * np.pi * syllables_per_s * t + rng.uniform(0, 6)))
    signal = loudness * (harmonics * syllables**1.5 + breath * rng.standard_normal(n))
    return (0.9 * signal / max(1.0, np.abs(signal).max() / 0.9)).astype(np.float32)


# Two acoustically distinct "emotions": high, loud and fast vs low, quiet and slow.
STYLES = {
    "angry": {"f0": 240.0, "loudness": 0.5, "syllables_per_s": 5.0, "breath": 0.05},
    "sad": {"f0": 110.0, "loudness": 0.08, "syllables_per_s": 2.0, "breath": 0.01},
}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """A tiny Emo-DB-layout corpus: 4 speakers x 2 labels x 4 takes of synthetic voices."""
    root = tmp_path_factory.mktemp("corpus")
    codes = {"angry": "W", "sad": "T"}
    for s, speaker in enumerate(("03", "08", "09", "10")):
        shift = 0.8 + 0.15 * s  # speakers differ in pitch range
        for label, style in STYLES.items():
            for take in range(4):
                seed = 100 * s + 10 * list(STYLES).index(label) + take
                signal = voice(
                    style["f0"] * shift,
                    1.5 + 0.25 * take,
                    style["loudness"],
                    style["syllables_per_s"],
                    seed,
                    style["breath"],
                )
                sf.write(root / f"{speaker}a0{take + 1}{codes[label]}a.wav", signal, SR)
    return root


@pytest.fixture(scope="session")
def trained_model(corpus, tmp_path_factory) -> Path:
    import ser_core

    out = tmp_path_factory.mktemp("model") / "fast.npz"
    ser_core.train([corpus], profile="fast", out=out)
    return out


@pytest.fixture
def long_recording(tmp_path) -> tuple[Path, float]:
    """12 s: angry 0-6 s, then sad 6-12 s; returns the path and the switch time."""
    first = voice(240.0, 6.0, 0.5, 5.0, 1, 0.05)
    second = voice(110.0, 6.0, 0.08, 2.0, 2, 0.01)
    path = tmp_path / "two_moods.wav"
    sf.write(path, np.concatenate([first, second]), SR)
    return path, 6.0


def espeak(text: str, path: Path, pitch: int = 50, speed: int = 160, voice_name: str = "en") -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    subprocess.run(
        ["espeak-ng", "-v", voice_name, "-p", str(pitch), "-s", str(speed), "-w", str(path), text],
        check=True,
        capture_output=True,
    )
    return path


SPOKEN = ("The meeting is over.", "I am going home now, and I will call you tomorrow.")


@pytest.fixture(scope="session")
def spoken(tmp_path_factory) -> tuple[Path, list[tuple[float, float]]]:
    """Two espeak-ng sentences with silence around and between them, at 16 kHz.

    Returns the path and the (start, end) seconds of each sentence's audio."""
    from ser_core.pipeline.audio import load_audio

    root = tmp_path_factory.mktemp("spoken")
    parts, spans, t = [np.zeros(int(1.5 * SR), np.float32)], [], 1.5
    for i, text in enumerate(SPOKEN):
        speech = load_audio(espeak(text, root / f"part{i}.wav"))
        trimmed = speech[
            np.flatnonzero(np.abs(speech) > 1e-3)[0] : np.flatnonzero(np.abs(speech) > 1e-3)[-1] + 1
        ]
        spans.append((t, t + len(trimmed) / SR))
        parts += [trimmed, np.zeros(int(1.2 * SR), np.float32)]
        t = spans[-1][1] + 1.2
    path = root / "spoken.wav"
    sf.write(path, np.concatenate(parts), SR)
    return path, spans


@contextlib.contextmanager
def served(env: dict[str, str]):
    """`ser serve` in a subprocess on a free localhost port, with `env` on top of the test's
    environment; yields its base URL once /v1/health answers."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "ser_core", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=dict(os.environ, **env), stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
