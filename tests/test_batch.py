"""Batch runs: folders and globs in, one output per input, a run report, resumable, bad files recorded."""

from __future__ import annotations

import json
import os
from pathlib import Path

import soundfile as sf
from typer.testing import CliRunner

import ser_core
from ser_core.cli import app
from ser_core.errors import AudioError
from ser_core.runs.batch import REPORT_NAME, expand

from .conftest import SR, voice

runner = CliRunner()


def make_tree(root):
    (root / "a" / "deep").mkdir(parents=True)
    sf.write(root / "a" / "one.wav", voice(240, 2.0, 0.5, 5, 1, 0.05), SR)
    sf.write(root / "a" / "deep" / "two.flac", voice(110, 2.0, 0.08, 2, 2, 0.01), SR)
    (root / "a" / "notes.txt").write_text("not audio")
    (root / "a" / "broken.wav").write_bytes(os.urandom(500))
    return root / "a"


def test_expand_folders_globs_and_files(tmp_path):
    folder = make_tree(tmp_path)
    assert [str(r) for _, r in expand([folder])] == ["broken.wav", "one.wav"]
    assert [str(r) for _, r in expand([folder], recursive=True)] == ["broken.wav", "deep/two.flac", "one.wav"]
    assert [p.name for p, _ in expand([str(folder / "*.wav")])] == ["broken.wav", "one.wav"]
    assert expand([tmp_path / "missing.wav"]) == [(tmp_path / "missing.wav", Path("missing.wav"))]


def test_batch_writes_outputs_report_and_resumes(tmp_path, trained_model):
    folder = make_tree(tmp_path)
    out = tmp_path / "out"
    args = [
        "analyze",
        str(folder),
        "--recursive",
        "--output-dir",
        str(out),
        "--model",
        str(trained_model),
        "-f",
        "csv",
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 3, first.output  # the broken file fails, the others are done
    assert (
        (out / "one.csv").is_file()
        and (out / "deep" / "two.csv").is_file()
        and not (out / "broken.csv").exists()
    )
    report = json.loads((out / REPORT_NAME).read_text())
    assert sorted(a["outputs"] for a in report["analysed"]) == [
        [str(out / "deep" / "two.csv")],
        [str(out / "one.csv")],
    ]
    assert [f["path"] for f in report["failures"]] == [str(folder / "broken.wav")]
    assert report["audio_seconds"] == 4.0
    stamp = (out / "one.csv").stat().st_mtime_ns
    second = runner.invoke(app, args)  # resumable: done inputs are skipped, the bad one retried
    report = json.loads((out / REPORT_NAME).read_text())
    assert second.exit_code == 3 and len(report["skipped"]) == 2 and report["analysed"] == []
    assert (out / "one.csv").stat().st_mtime_ns == stamp


def test_several_formats_from_one_analysis_and_missing_ones_filled_in(tmp_path, trained_model):
    folder = make_tree(tmp_path)
    (folder / "broken.wav").unlink()
    out = tmp_path / "out"
    args = ["analyze", str(folder), "--recursive", "--output-dir", str(out), "--model", str(trained_model)]
    first = runner.invoke(app, [*args, "-f", "json", "-f", "srt"])
    assert first.exit_code == 0, first.output
    report = json.loads((out / REPORT_NAME).read_text())
    assert report["formats"] == ["json", "srt"]
    assert sorted(a["outputs"] for a in report["analysed"]) == [
        [str(out / "deep" / "two.json"), str(out / "deep" / "two.srt")],
        [str(out / "one.json"), str(out / "one.srt")],
    ]
    # one.wav is the angry style, two.flac the sad one: every cue of each says so.
    for name, label in (("one", "angry"), ("deep/two", "sad")):
        assert json.loads((out / f"{name}.json").read_text())["label"] == label
        cues = (out / f"{name}.srt").read_text().split("\n\n")[:-1]
        assert cues and all(cue.split("\n")[2].startswith(f"[{label} ") for cue in cues), cues
    (out / "one.srt").unlink()  # only the missing output is made again
    stamp = (out / "one.json").stat().st_mtime_ns
    second = runner.invoke(app, [*args, "-f", "json", "-f", "srt"])
    report = json.loads((out / REPORT_NAME).read_text())
    assert second.exit_code == 0 and [a["outputs"] for a in report["analysed"]] == [[str(out / "one.srt")]]
    assert len(report["skipped"]) == 1 and (out / "one.json").stat().st_mtime_ns == stamp
    single = runner.invoke(app, ["analyze", str(folder / "one.wav"), "-f", "json", "-f", "srt"])
    assert single.exit_code == 2 and "--output-dir" in single.output


def test_analyze_many_is_lazy_and_goes_on(tmp_path, trained_model):
    folder = make_tree(tmp_path)
    results = ser_core.analyze_many([folder / "broken.wav", folder / "one.wav"], model=trained_model)
    path, first = next(results)
    assert path.name == "broken.wav" and isinstance(first, AudioError)
    path, second = next(results)
    assert path.name == "one.wav" and second.label == "angry"  # the angry style (make_tree)


def test_parallel_jobs_give_the_same_outputs(tmp_path, trained_model):
    folder = make_tree(tmp_path)
    outputs = {}
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}"
        args = ["analyze", str(folder), "--recursive", "--output-dir", str(out), "--model", str(trained_model)]
        result = runner.invoke(app, [*args, "-f", "csv", "--jobs", str(jobs), "--no-progress"])
        assert result.exit_code == 3
        outputs[jobs] = {p.relative_to(out): p.read_text() for p in out.rglob("*.csv")}
        report = json.loads((out / REPORT_NAME).read_text())
        assert len(report["analysed"]) == 2 and len(report["failures"]) == 1
    assert outputs[1] == outputs[2] and len(outputs[1]) == 2


def test_ctrl_c_leaves_complete_outputs_and_a_report_then_resumes(tmp_path, trained_model) -> None:
    import json
    import signal
    import subprocess
    import sys
    import time

    import soundfile as sf

    from .conftest import SR, voice

    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for i in range(12):
        sf.write(folder / f"call{i:02d}.wav", voice(150.0 + 10 * i, 60.0, 0.3, 4.0, i), SR)
    cmd = [sys.executable, "-m", "ser_core", "analyze", str(folder), "--output-dir", str(out)]
    cmd += ["--model", str(trained_model), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob("*.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    report = json.loads((out / "ser-run-report.json").read_text())
    assert report["interrupted"] and 1 <= len(report["analysed"]) < 12
    outputs = sorted(p for p in out.iterdir() if p.name != "ser-run-report.json")
    assert [p.suffix for p in outputs] == [".json"] * len(outputs)  # no temporary files left
    for path in outputs:
        assert json.loads(path.read_text())["duration"] == 60.0  # each output whole
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "ser-run-report.json").read_text())
    assert len(report["skipped"]) == len(outputs) and len(report["analysed"]) == 12 - len(outputs)
    assert not report["interrupted"]
