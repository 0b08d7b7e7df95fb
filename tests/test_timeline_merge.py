"""Short runs merge into their most similar neighbour, not just any neighbour: where a too-short
run goes decides where the boundary between its two neighbours lands."""

from __future__ import annotations

import numpy as np
import pytest

from ser_core.builtin_plugins.timeline import build_segments

LABELS = ["happy", "sad", "angry"]
HAPPY, SAD = [0.8, 0.1, 0.1], [0.1, 0.8, 0.1]


def segments_around(blip: list[float]):
    """Five happy windows, one `blip` window, five sad windows (2 s windows every 1 s, no
    smoothing or hysteresis). Window i owns [i + 0.5, i + 1.5] (the first from 0, the last to 12),
    so the happy run owns [0, 5.5], the 1 s blip [5.5, 6.5] and the sad run [6.5, 12]."""
    starts = np.arange(11.0)
    times = np.column_stack([starts, starts + 2.0])
    probabilities = np.array([HAPPY] * 5 + [blip] + [SAD] * 5)
    return build_segments(
        times, probabilities, LABELS, smoothing_windows=1, hysteresis=0.0, min_segment_seconds=2.0
    )


def test_short_run_joins_the_closer_earlier_neighbour():
    # Distances (sum of absolute differences): to happy 0.5+0.1+0.4 = 1.0, to sad 0.2+0.6+0.4 = 1.2.
    blip = [0.3, 0.2, 0.5]
    segments = segments_around(blip)
    assert [(s.start, s.end, s.label) for s in segments] == [(0.0, 6.5, "happy"), (6.5, 12.0, "sad")]
    merged = (5 * np.array(HAPPY) + blip) / 6
    assert segments[0].probabilities == pytest.approx(dict(zip(LABELS, merged, strict=True)), abs=1e-4)


def test_short_run_joins_the_closer_later_neighbour():
    # Distances: to happy 0.7+0.3+0.4 = 1.4, to sad 0.0+0.4+0.4 = 0.8.
    segments = segments_around([0.1, 0.4, 0.5])
    assert [(s.start, s.end, s.label) for s in segments] == [(0.0, 5.5, "happy"), (5.5, 12.0, "sad")]
