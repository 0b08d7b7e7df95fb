"""What a result may claim: no label without speech, a flag on too little of it, and an overall
label that agrees with the timeline (the emotion of the largest share of speech time)."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import ser_core
from ser_core.cli import app
from ser_core.contract.results import Segment
from ser_core.pipeline.exports import render
from ser_core.pipeline.speakers import overall
from ser_core.settings import get_settings

from .conftest import SR, voice

runner = CliRunner()
FORMATS = ("json", "csv", "srt", "vtt", "table", "html")


def non_speech(kind: str) -> np.ndarray:
    """Sounds with no speech in them: digital silence, white noise, a steady or a very short tone."""
    rng = np.random.default_rng(0)
    t = np.arange(5 * SR) / SR
    sounds = {
        "silence": np.zeros(SR, np.float32),
        "white noise": 0.3 * rng.standard_normal(5 * SR),
        "440 Hz tone": 0.5 * np.sin(2 * np.pi * 440 * t),
        # A tone pulsed at a syllable rate (silero calls it speech), and a DTMF key press.
        "pulsed 220 Hz tone": 0.5
        * np.sin(2 * np.pi * 220 * t)
        * (0.5 * (1 + np.sin(2 * np.pi * 4 * t))) ** 1.5,
        "DTMF tone": 0.25 * (np.sin(2 * np.pi * 697 * t) + np.sin(2 * np.pi * 1209 * t)),
        "0.1 s tone": np.r_[
            np.zeros(SR // 2), 0.5 * np.sin(2 * np.pi * 440 * t[: SR // 10]), np.zeros(SR // 2)
        ],
    }
    return np.asarray(sounds[kind], np.float32)


@pytest.mark.parametrize(
    "kind", ["silence", "white noise", "440 Hz tone", "pulsed 220 Hz tone", "DTMF tone", "0.1 s tone"]
)
def test_no_speech_gets_no_label_in_any_format(kind, tmp_path, monkeypatch):
    """The shipped model called these neutral (1.00) or sad (1.00); the speech detector finds no
    speech in them, so there is nothing to label."""
    monkeypatch.setenv("SER_VAD", "silero")
    get_settings.cache_clear()
    path = tmp_path / "sound.wav"
    sf.write(path, non_speech(kind), SR)
    result = ser_core.analyze(path, transcript=False)
    assert (result.status, result.label, result.confidence) == ("no_speech", None, None)
    assert result.probabilities == {} and result.segments == [] and result.speech_seconds == 0.0
    texts = {fmt: render([result], fmt) for fmt in FORMATS}
    assert json.loads(texts["json"])["status"] == "no_speech" and json.loads(texts["json"])["label"] is None
    rows = list(csv.DictReader(io.StringIO(texts["csv"])))
    assert [(r["status"], r["emotion"]) for r in rows] == [("no_speech", "")]
    for fmt in ("srt", "vtt", "table", "html"):
        assert "no speech" in texts[fmt], fmt
        assert not re.search(r"(?<![\d:.])1\.00(?!\d)", texts[fmt]), fmt  # no confidence of 1.00
    cli = runner.invoke(app, ["analyze", str(path), "--no-transcript", "-f", "table"])
    assert cli.exit_code == 0 and "no speech" in cli.stdout


def test_batch_records_no_speech(tmp_path, trained_model):
    folder = tmp_path / "in"
    folder.mkdir()
    sf.write(folder / "quiet.wav", non_speech("silence"), SR)
    sf.write(folder / "voice.wav", voice(240, 3.0, 0.5, 5, 1, 0.05), SR)
    out = tmp_path / "out"
    cli = runner.invoke(
        app, ["analyze", str(folder), "--output-dir", str(out), "--model", str(trained_model)]
    )
    assert cli.exit_code == 0, cli.output
    report = json.loads((out / "ser-run-report.json").read_text())
    status = {
        record["path"].rsplit("/", 1)[1]: (record["status"], record["label"]) for record in report["analysed"]
    }
    assert status == {"quiet.wav": ("no_speech", None), "voice.wav": ("ok", "angry")}
    assert json.loads((out / "quiet.json").read_text())["status"] == "no_speech"


def test_too_little_speech_is_flagged(tmp_path, trained_model, monkeypatch):
    """Speech under `min_speech_seconds` keeps its label, flagged; the same voice, longer, is ok."""
    monkeypatch.setenv("SER_MIN_SPEECH_SECONDS", "1.5")
    get_settings.cache_clear()
    pad = np.zeros(SR, np.float32)
    for seconds, expected in ((0.6, "too_short"), (3.0, "ok")):
        path = tmp_path / f"{seconds}.wav"
        sf.write(path, np.r_[pad, voice(240, seconds, 0.5, 5, 1, 0.05), pad], SR)
        result = ser_core.analyze(path, model=trained_model)
        assert result.status == expected and result.label == "angry"
        assert (result.speech_seconds < 1.5) == (expected == "too_short")
        srt = render([result], "srt")
        assert ("too short" in srt) == (expected == "too_short")


def test_overall_label_is_the_largest_share_of_speech(tmp_path, trained_model):
    """8 s angry then 4 s sad: the timeline shows angry for two thirds of the speech, so does the
    overall label; the other way round, sad."""
    angry, sad = voice(240.0, 8.0, 0.5, 5.0, 1, 0.05), voice(110.0, 8.0, 0.08, 2.0, 2, 0.01)
    for name, signal, expected in (
        ("mostly_angry", np.r_[angry, sad[: 4 * SR]], "angry"),
        ("mostly_sad", np.r_[angry[: 4 * SR], sad], "sad"),
    ):
        path = tmp_path / f"{name}.wav"
        sf.write(path, signal, SR)
        result = ser_core.analyze(path, model=trained_model)
        held: dict[str, float] = {}
        for segment in result.segments:
            held[segment.label] = held.get(segment.label, 0.0) + segment.end - segment.start
        assert result.label == expected == max(held, key=held.get)
        assert result.shares[expected] == pytest.approx(held[expected] / sum(held.values()), abs=1e-3)
        assert 0.55 < result.shares[expected] < 0.8
        assert result.confidence == result.probabilities[expected]


def segment(start, end, label, probs):
    return Segment(start=start, end=end, label=label, confidence=probs[label], probabilities=probs)


def test_overall_weights_segments_by_duration():
    """6 s of neutral at 0.5 and 2 s of angry at 0.9: neutral holds 3/4 of the speech and is the
    label, although angry's time-averaged probability (0.6) beats neutral's (0.4)."""
    labels = ["angry", "neutral"]
    segments = [
        segment(0.0, 6.0, "neutral", {"angry": 0.5, "neutral": 0.5}),
        segment(6.0, 8.0, "angry", {"angry": 0.9, "neutral": 0.1}),
    ]
    label, probabilities, shares = overall(segments, labels)
    assert label == "neutral" and shares == {"angry": 0.25, "neutral": 0.75}
    assert probabilities == {"angry": pytest.approx(0.6), "neutral": pytest.approx(0.4)}
    # Equal shares: the higher mean probability decides.
    tie = [
        segment(0, 2, "neutral", {"angry": 0.4, "neutral": 0.6}),
        segment(2, 4, "angry", {"angry": 0.9, "neutral": 0.1}),
    ]
    assert overall(tie, labels)[0] == "angry"
    assert overall([], labels) == (None, {}, {})
