"""Exact values in the exported files: CSV confidence, subtitle time stamps rounded to the nearest
millisecond (not cut), and no zero-length cue (players drop or mis-order those)."""

from __future__ import annotations

import csv
import io

import pytest

from ser_core.contract.results import AnalysisResult, TimelineRow
from ser_core.pipeline.exports import render

ROWS = [
    TimelineRow(start=1.001, end=2.0, emotion="angry", confidence=0.8, text="one"),  # 1.001 * 1000 < 1001
    TimelineRow(start=4.2, end=4.2, emotion="sad", confidence=0.25, text="two"),  # zero length
    TimelineRow(start=59.9996, end=3599.9996, emotion=None, confidence=None, text="three"),  # carries
]
# Each stamp from its row: the nearest millisecond; a zero-length cue ends 1 ms after it starts.
STAMPS = [
    ("00:00:01,001", "00:00:02,000"),
    ("00:00:04,200", "00:00:04,201"),
    ("00:01:00,000", "01:00:00,000"),
]


@pytest.fixture
def result() -> AnalysisResult:
    return AnalysisResult(
        path="talk.wav", profile="fast", backend_id="handcrafted", backend_model_id="handcrafted-v2",
        model="m.npz", duration=3600.0, label="angry", confidence=0.6, probabilities={"angry": 0.6, "sad": 0.4},
        segments=[], timeline=ROWS, ser_core_version="0.1.0",
    )  # fmt: skip


def test_csv_confidence_has_four_decimals_and_is_empty_without_an_emotion(result):
    rows = list(csv.DictReader(io.StringIO(render([result], "csv"))))
    assert [r["confidence"] for r in rows] == ["0.8000", "0.2500", ""]
    assert [r["emotion"] for r in rows] == ["angry", "sad", ""]
    assert [(r["start"], r["end"]) for r in rows] == [
        ("1.001", "2.000"),
        ("4.200", "4.200"),
        ("60.000", "3600.000"),
    ]


def test_srt_stamps_round_to_the_millisecond_and_cues_last_at_least_one(result):
    lines = render([result], "srt").splitlines()
    assert [tuple(line.split(" --> ")) for line in lines if " --> " in line] == STAMPS
    assert lines[:3] == ["1", "00:00:01,001 --> 00:00:02,000", "[angry 0.80] one"]


def test_vtt_stamps_match_the_srt_ones(result):
    lines = render([result], "vtt").splitlines()
    assert lines[0] == "WEBVTT"
    expected = [(a.replace(",", "."), b.replace(",", ".")) for a, b in STAMPS]
    assert [tuple(line.split(" --> ")) for line in lines if " --> " in line] == expected
