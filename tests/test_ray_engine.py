"""The Ray engine: the local engine's outputs, report and resumability from Ray actors on a local
cluster (skipped without Ray), and one line naming the extra to install when Ray is missing."""

from __future__ import annotations

import json
import logging
import os
import sys

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from ser_core.cli import app
from ser_core.runs import batch

from .conftest import SR, voice

runner = CliRunner()
NO_RAY = "Ray is not installed (pip install 'ser-core[ray]')"
KWARGS = {"profile": "fast", "transcript": False}


def inputs(root):
    """Three synthetic voices (one with a second of silence on each side) and a corrupt file."""
    folder = root / "in"
    folder.mkdir()
    sf.write(folder / "high.wav", voice(240, 2.0, 0.5, 5, 1, 0.05), SR)
    sf.write(folder / "low.wav", voice(110, 2.5, 0.08, 2, 2, 0.01), SR)
    quiet = np.zeros(SR, np.float32)
    sf.write(folder / "padded.wav", np.concatenate([quiet, voice(180, 2.0, 0.3, 3, 3), quiet]), SR)
    (folder / "broken.wav").write_bytes(os.urandom(500))
    return folder


@pytest.fixture(scope="module")
def ray_local():
    """One small local Ray cluster for the tests that share it."""
    ray = pytest.importorskip("ray", reason=NO_RAY)
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


def test_missing_ray_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if not installed
    sf.write(tmp_path / "a.wav", voice(240, 2.0, 0.5, 5, 1), SR)
    args = ["analyze", str(tmp_path / "a.wav"), "--no-transcript", "--no-progress", "--engine", "ray"]
    result = runner.invoke(app, [*args, "--output-dir", str(tmp_path / "out")])
    assert result.exit_code == 10, result.output
    assert result.stderr.strip().splitlines() == [
        "error: --engine ray needs Ray: pip install 'ser-core[ray]'"
    ]
    assert not (tmp_path / "out" / "a.json").exists()
    assert runner.invoke(app, args).exit_code == 2  # Ray is for batch runs (--output-dir)


def test_unreachable_cluster_is_one_line(tmp_path):
    ray = pytest.importorskip("ray", reason=NO_RAY)
    if ray.is_initialized():
        pytest.skip("a Ray connection is already open in this process (it would be used)")
    sf.write(tmp_path / "a.wav", voice(240, 2.0, 0.5, 5, 1), SR)
    args = ["analyze", str(tmp_path / "a.wav"), "--output-dir", str(tmp_path / "out"), "--no-progress"]
    result = runner.invoke(app, [*args, "--engine", "ray", "--address", "127.0.0.1:1"])
    assert result.exit_code == 10, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: Ray cluster at 127.0.0.1:1: cannot connect")


def test_cli_ray_engine_starts_and_stops_its_own_cluster(tmp_path):
    ray = pytest.importorskip("ray", reason=NO_RAY)
    if ray.is_initialized():
        pytest.skip("a Ray connection is already open in this process")
    folder, out = inputs(tmp_path), tmp_path / "out"
    args = ["analyze", str(folder), "--output-dir", str(out), "--no-transcript", "-f", "csv", "--no-progress"]
    result = runner.invoke(app, [*args, "--engine", "ray", "--jobs", "2"])
    assert result.exit_code == 3, result.output  # the corrupt file fails, the rest are done
    assert sorted(p.name for p in out.glob("*.csv")) == ["high.csv", "low.csv", "padded.csv"]
    report = json.loads((out / batch.REPORT_NAME).read_text())
    assert [f["path"] for f in report["failures"]] == [str(folder / "broken.wav")]
    assert "broken.wav: not a readable audio file" in result.stderr
    assert not ray.is_initialized()  # the engine shut down the cluster it started


def test_ray_gives_the_local_engines_outputs_report_and_resume(tmp_path, monkeypatch, ray_local):
    # Set after the cluster started: only the actors' runtime environment can carry it there.
    monkeypatch.setenv("SER_VAD", "off")
    items = batch.expand([inputs(tmp_path)])
    local = batch.run(items, tmp_path / "local", "json", KWARGS)
    ticks: list[int] = []
    remote = batch.run(items, tmp_path / "ray", "json", KWARGS, 2, ticks.append, engine="ray")

    def outputs(root):
        return {p.name: p.read_text() for p in root.glob("*.json") if p.name != batch.REPORT_NAME}

    assert outputs(tmp_path / "ray") == outputs(tmp_path / "local") and len(outputs(tmp_path / "ray")) == 3
    padded = json.loads((tmp_path / "ray" / "padded.json").read_text())
    assert padded["speech"] == [[0.0, 4.0]]  # SER_VAD=off reached the actors
    assert padded["label"] == json.loads((tmp_path / "local" / "padded.json").read_text())["label"]
    assert remote.failures == local.failures
    [failure] = remote.failures
    assert failure["path"].endswith("broken.wav") and "not a readable audio file" in failure["error"]
    assert [a["path"] for a in remote.analysed] == [a["path"] for a in local.analysed]
    assert [a["outputs"] for a in remote.analysed] == [
        [str(tmp_path / "ray" / name)] for name in ("high.json", "low.json", "padded.json")
    ]
    assert remote.audio_seconds == local.audio_seconds == 8.5 and sum(ticks) == 4

    again = batch.run(items, tmp_path / "ray", "json", KWARGS, 2, ticks.append, engine="ray")
    assert len(again.skipped) == 3 and again.analysed == []  # done inputs skipped; the bad one retried
    assert [f["path"] for f in again.failures] == [failure["path"]]
