"""Per-profile time budgets: timeouts per attempt, retries, process isolation with a hard kill."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from ser_core.cli import app
from ser_core.errors import AnalysisTimeout, AudioError, WorkerCrashed
from ser_core.runs.budget import Budget, Runner, budget_for, is_transient
from ser_core.settings import get_settings

from .conftest import SR, voice


def write_voice(path: Path, seconds: float) -> Path:
    sf.write(path, voice(200.0, seconds, 0.3, 4.0, 7), SR)
    return path


def test_budget_from_profile_variables(monkeypatch) -> None:
    assert budget_for("fast") == Budget(1800.0)
    monkeypatch.setenv("SER_FAST_TIMEOUT_SECONDS", "5")
    monkeypatch.setenv("SER_FAST_TIMEOUT_RETRIES", "0")
    monkeypatch.setenv("SER_ACCURATE_RESEARCH_ISOLATE", "true")
    monkeypatch.setenv("SER_ACCURATE_RESEARCH_BACKOFF_SECONDS", "0.5")
    assert budget_for("fast") == Budget(5.0, timeout_retries=0)
    assert budget_for("accurate-research") == Budget(3600.0, backoff_seconds=0.5, isolate=True)
    monkeypatch.setenv("SER_MEDIUM_TIMEOUT_SECONDS", "0")
    assert budget_for("medium").timeout_seconds is None  # 0: no limit
    monkeypatch.setenv("SER_DISABLE_TIMEOUTS", "true")
    get_settings.cache_clear()
    assert budget_for("fast").timeout_seconds is None


def test_timeout_between_pieces_with_retries(tmp_path, trained_model, monkeypatch) -> None:
    monkeypatch.setenv("SER_PIECE_SECONDS", "10")
    get_settings.cache_clear()
    path = write_voice(tmp_path / "long.wav", 40.0)
    runner = Runner(Budget(1e-6, timeout_retries=1), model=trained_model)
    with pytest.raises(AnalysisTimeout) as info:
        runner.analyze(path)
    message = str(info.value)
    assert message.startswith(f"{path}: analysis timed out after 1e-06 s") and "(2 attempts)" in message
    assert "\n" not in message
    # The same runner without a limit analyses the whole file.
    assert Runner(Budget(None), model=trained_model).analyze(path).duration == pytest.approx(40.0)


def test_isolated_setup_is_untimed_and_a_timeout_kills_the_worker(tmp_path, trained_model) -> None:
    short = write_voice(tmp_path / "short.wav", 2.0)
    long = write_voice(tmp_path / "long.wav", 600.0)
    with Runner(Budget(1.0, timeout_retries=0, isolate=True), model=trained_model) as runner:
        # Spawning the worker and loading the models take longer than 1 s: not counted.
        result = runner.analyze(short)
        assert result.duration == pytest.approx(2.0)
        worker = runner._worker
        assert worker is not None and worker.alive()
        with pytest.raises(AnalysisTimeout, match="worker killed"):
            runner.analyze(long)
        assert not worker.alive() and worker.process.exitcode == -signal.SIGKILL
        # The next input gets a fresh worker.
        assert runner.analyze(short).label == result.label
        assert runner._worker is not worker and runner._worker.alive()


def test_dead_worker_is_a_transient_failure_retried_with_backoff(tmp_path, trained_model, caplog) -> None:
    short = write_voice(tmp_path / "short.wav", 2.0)
    long = write_voice(tmp_path / "long.wav", 300.0)
    budget = Budget(None, transient_retries=1, backoff_seconds=0.01, isolate=True)
    with Runner(budget, model=trained_model) as runner:
        runner.analyze(short)
        pid = runner._worker.process.pid
        killer = threading.Timer(0.5, os.kill, (pid, signal.SIGKILL))  # dies in the middle of the work
        killer.start()
        with caplog.at_level(logging.WARNING, logger="ser_core.runs.budget"):
            result = runner.analyze(long)
        killer.join()
    assert result.duration == pytest.approx(300.0)
    assert any("worker process died" in record.getMessage() for record in caplog.records)


def test_only_passing_failures_are_transient(tmp_path) -> None:
    assert is_transient(WorkerCrashed("x.wav", "the worker process died"))
    assert not is_transient(AudioError("x.wav", "not a readable audio file"))
    try:
        try:
            raise OSError(5, "Input/output error")
        except OSError as exc:
            raise AudioError("x.wav", "cannot read file (Input/output error)") from exc
    except AudioError as exc:
        assert is_transient(exc)


def test_cli_timeout_exit_code_and_disable_flag(tmp_path, trained_model, monkeypatch) -> None:
    path = write_voice(tmp_path / "talk.wav", 3.0)
    monkeypatch.setenv("SER_FAST_TIMEOUT_SECONDS", "0.000001")
    monkeypatch.setenv("SER_FAST_TIMEOUT_RETRIES", "0")
    monkeypatch.setenv("SER_DISABLE_TIMEOUTS", "false")  # restored after the flag sets it
    get_settings.cache_clear()
    cli = CliRunner()
    args = ["analyze", str(path), "--model", str(trained_model), "--no-progress"]
    timed_out = cli.invoke(app, args)
    assert timed_out.exit_code == AnalysisTimeout.exit_code, timed_out.output
    assert "analysis timed out" in timed_out.output and str(path) in timed_out.output
    done = cli.invoke(app, [*args, "--disable-timeouts"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["duration"] == pytest.approx(3.0)
    assert os.environ["SER_DISABLE_TIMEOUTS"] == "true"  # for worker processes too


def test_batch_records_timeouts_and_goes_on(tmp_path, trained_model, monkeypatch) -> None:
    from ser_core.plugins import registries
    from ser_core.runs import batch

    monkeypatch.setenv("SER_PIECE_SECONDS", "10")
    monkeypatch.setenv("SER_FAST_TIMEOUT_SECONDS", "0.05")
    monkeypatch.setenv("SER_FAST_TIMEOUT_RETRIES", "0")
    registries.reset()  # new settings, so new runners and budgets
    folder = tmp_path / "in"
    folder.mkdir()
    write_voice(folder / "a_short.wav", 2.0)
    sf.write(folder / "b_long.wav", np.tile(voice(200.0, 20.0, 0.3, 4.0, 1), 60), SR)  # 20 min
    report = batch.run(batch.expand([folder]), tmp_path / "out", "json", {"model": trained_model})
    assert [Path(r["path"]).name for r in report.analysed] == ["a_short.wav"]
    [failure] = report.failures
    assert failure["path"].endswith("b_long.wav") and "timed out" in failure["error"]
    assert not (tmp_path / "out" / "b_long.json").exists()


def test_grouped_failures_are_tried_again_alone_under_the_same_budget(tmp_path, trained_model, monkeypatch) -> None:
    monkeypatch.setenv("SER_PIECE_SECONDS", "10")
    get_settings.cache_clear()
    paths = [write_voice(tmp_path / f"v{i}.wav", 25.0) for i in range(3)]
    (tmp_path / "broken.wav").write_bytes(os.urandom(300))
    paths.insert(1, tmp_path / "broken.wav")
    grouped = Runner(Budget(1e-6, timeout_retries=1), model=trained_model).analyze_grouped(paths, 2)
    timed = {index: outcome for index, path, outcome in grouped if path == paths[index]}
    assert sorted(timed) == [0, 1, 2, 3]
    assert isinstance(timed[1], AudioError) and "attempts" not in str(timed[1])  # not worth a retry
    for index in (0, 2, 3):  # the grouped attempt, then one alone: two attempts, as for `analyze`
        assert isinstance(timed[index], AnalysisTimeout), timed[index]
        assert str(timed[index]).startswith(f"{paths[index]}: ") and "(2 attempts)" in str(timed[index])
    free = {index: outcome for index, _, outcome in Runner(Budget(None), model=trained_model).analyze_grouped(paths, 2)}
    assert [free[i].duration for i in (0, 2, 3)] == [25.0, 25.0, 25.0]
