"""The built-in timeline: smoothing, hysteresis and minimum segment length."""

from __future__ import annotations

import numpy as np
import pytest

from ser_core.builtin_plugins.timeline import build_segments

LABELS = ["happy", "sad"]


def _windows(n, hop=1.0, window=2.0):
    starts = np.arange(n) * hop
    return np.column_stack([starts, starts + window])


def _probs(sequence):
    return np.array([[p, 1 - p] for p in sequence])


def test_single_blip_is_absorbed():
    probs = _probs([0.9] * 5 + [0.1] + [0.9] * 5)
    segments = build_segments(
        _windows(11), probs, LABELS, smoothing_windows=1, hysteresis=0.0, min_segment_seconds=2.0
    )
    assert [s.label for s in segments] == ["happy"]
    assert segments[0].start == 0.0 and segments[0].end == 12.0


def test_real_change_is_kept_near_the_switch():
    probs = _probs([0.9] * 6 + [0.1] * 6)
    segments = build_segments(_windows(12), probs, LABELS)
    assert [s.label for s in segments] == ["happy", "sad"]
    assert abs(segments[0].end - 6.5) <= 1.0
    assert segments[0].end == segments[1].start


def test_hysteresis_ignores_small_margins():
    probs = _probs([0.8, 0.8, 0.48, 0.47, 0.48, 0.8, 0.8])
    with_margin = build_segments(
        _windows(7), probs, LABELS, smoothing_windows=1, hysteresis=0.1, min_segment_seconds=0.0
    )
    without = build_segments(
        _windows(7), probs, LABELS, smoothing_windows=1, hysteresis=0.0, min_segment_seconds=0.0
    )
    assert [s.label for s in with_margin] == ["happy"]
    assert [s.label for s in without] == ["happy", "sad", "happy"]


def test_segment_probabilities_and_confidence():
    segments = build_segments(_windows(4), _probs([0.7] * 4), LABELS, smoothing_windows=3)
    assert segments[0].probabilities == pytest.approx({"happy": 0.7, "sad": 0.3})
    assert segments[0].confidence == pytest.approx(0.7)


def test_no_windows_no_segments():
    assert build_segments(np.zeros((0, 2)), np.zeros((0, 2)), LABELS) == []
