"""Profiles compared on the same folds, with timeline statistics and the quality gate."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ser_core.cli import app
from ser_core.errors import DatasetError
from ser_core.training.compare import Thresholds, compare

LOOSE = {"max_segments_per_minute": 1000.0, "min_median_segment_seconds": 0.0}


def test_same_profile_twice_has_zero_deltas_and_timeline_stats(corpus) -> None:
    result = compare([corpus], ["fast", "fast"], thresholds=Thresholds(0.0, 0.0, 1000.0, 0.0))
    first, second = result["profiles"]
    assert first["uar"] == second["uar"] and second["delta"] == {"uar": 0.0, "macro_f1": 0.0}
    assert first["cv"] == "leave-one-speaker-out" and len(first["folds"]) == 4
    stats = first["timeline"]
    assert stats["recordings"] == 4 and stats["segments"] >= 4  # one recording per fold
    assert stats["reference_segments_per_minute"] > 0
    assert 0 < stats["median_segment_seconds"] <= stats["minutes"] * 60
    assert stats["segments_per_minute"] == pytest.approx(stats["segments"] / stats["minutes"], rel=0.01)
    assert result["gate"]["passed"] and len(result["gate"]["checks"]) == 2 + 2 * 2


def test_gate_fails_on_each_threshold(corpus) -> None:
    result = compare([corpus], ["fast", "fast"], thresholds=Thresholds(0.01, 0.0, 0.5, 30.0))
    failed = {(c["profile"], c["check"]) for c in result["gate"]["checks"] if not c["passed"]}
    assert ("fast", "uar_delta") in failed
    assert ("fast", "segments_per_minute") in failed and ("fast", "median_segment_seconds") in failed
    assert ("fast", "macro_f1_delta") not in failed
    assert not result["gate"]["passed"]


def test_compare_needs_two_profiles(corpus) -> None:
    with pytest.raises(DatasetError):
        compare([corpus], ["fast"])


def test_cli_compare_require_pass(corpus, tmp_path) -> None:
    cli = CliRunner()
    args = ["evaluate", "--dataset", str(corpus), "--profile", "fast", "--profile", "fast", "--no-progress"]
    report = tmp_path / "gate.json"
    ok = cli.invoke(
        app,
        [*args, "--require-pass", "--max-segments-per-minute", "1000", "--min-median-segment-seconds",
         "0", "--report", str(report)],
    )
    assert ok.exit_code == 0, ok.output
    assert "quality gate: passed" in ok.output
    assert json.loads(report.read_text())["gate"]["thresholds"]["max_segments_per_minute"] == 1000.0
    failed = cli.invoke(app, [*args, "--require-pass", "--min-uar-delta", "0.05", "-f", "json"])
    assert failed.exit_code == 1
    assert "quality gate failed: fast uar_delta 0 (limit 0.05)" in failed.output


def test_runs_of_one_label_go_on_across_pauses() -> None:
    from ser_core.contract.results import Segment
    from ser_core.training.compare import _runs

    def seg(start: float, end: float, label: str) -> Segment:
        return Segment(start=start, end=end, label=label, confidence=1.0, probabilities={label: 1.0})

    segments = [seg(0, 2, "sad"), seg(2.5, 4, "sad"), seg(4.2, 6, "angry"), seg(9, 10, "angry")]
    assert _runs(segments) == pytest.approx([4.0, 5.8])
    assert _runs(segments[1:3]) == pytest.approx([1.5, 1.8])
