"""Built-in timelines: window probabilities -> emotion segments; words + segments -> timeline rows.

1. Each window owns the stretch around its centre (windows overlap; the owned stretches tile time).
2. Probabilities are smoothed with a centred moving average over `smoothing_windows` windows.
3. Hysteresis: the label changes only when another label beats the current one by `hysteresis`.
4. Runs shorter than `min_segment_seconds` merge into the neighbour whose mean probabilities are
   closest, until none is left (or one segment remains).

Timeline rows: see `ser_core.pipeline.alignment.timeline_rows`.
"""

from __future__ import annotations

import numpy as np

from ser_core.contract.hookspecs import hookimpl
from ser_core.contract.results import Segment
from ser_core.pipeline.alignment import timeline_rows


def _owned_spans(times: np.ndarray) -> np.ndarray:
    centres = times.mean(axis=1)
    edges = np.r_[times[0, 0], (centres[1:] + centres[:-1]) / 2, times[-1, 1]]
    return np.column_stack([edges[:-1], edges[1:]])


def _smooth(probabilities: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or len(probabilities) < 2:
        return probabilities
    kernel = np.ones(width)
    padded = np.pad(probabilities, ((width // 2, width - 1 - width // 2), (0, 0)), mode="edge")
    smoothed = np.stack(
        [np.convolve(padded[:, k], kernel, "valid") for k in range(probabilities.shape[1])], 1
    )
    return smoothed / width


def _hysteresis(probabilities: np.ndarray, margin: float) -> np.ndarray:
    choice = np.empty(len(probabilities), dtype=int)
    current = int(probabilities[0].argmax())
    for i, row in enumerate(probabilities):
        best = int(row.argmax())
        if best != current and row[best] - row[current] > margin:
            current = best
        choice[i] = current
    return choice


def build_segments(
    times: np.ndarray,
    probabilities: np.ndarray,
    labels: list[str],
    smoothing_windows: int = 3,
    hysteresis: float = 0.1,
    min_segment_seconds: float = 2.0,
) -> list[Segment]:
    """Segments covering the windows' time range, each with one label and its mean probabilities."""
    times = np.asarray(times, dtype=float)
    probabilities = np.asarray(probabilities, dtype=float)
    if len(times) == 0:
        return []
    spans = _owned_spans(times)
    smoothed = _smooth(probabilities, smoothing_windows)
    choice = _hysteresis(smoothed, hysteresis)
    # Runs of equal choice: [first window, last window + 1).
    cuts = np.flatnonzero(np.diff(choice)) + 1
    runs = [[int(a), int(b)] for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(choice)], strict=True)]

    def duration(run: list[int]) -> float:
        return spans[run[1] - 1, 1] - spans[run[0], 0]

    def mean(run: list[int]) -> np.ndarray:
        return smoothed[run[0] : run[1]].mean(axis=0)

    while len(runs) > 1:
        shortest = min(range(len(runs)), key=lambda i: duration(runs[i]))
        if duration(runs[shortest]) >= min_segment_seconds:
            break
        neighbours = [i for i in (shortest - 1, shortest + 1) if 0 <= i < len(runs)]
        target = min(neighbours, key=lambda i: np.abs(mean(runs[i]) - mean(runs[shortest])).sum())
        low, high = sorted((shortest, target))
        runs[low : high + 1] = [[runs[low][0], runs[high][1]]]
        # Merged neighbours with the same label become one run.
        merged: list[list[int]] = []
        for run in runs:
            if merged and int(mean(merged[-1]).argmax()) == int(mean(run).argmax()):
                merged[-1][1] = run[1]
            else:
                merged.append(run)
        runs = merged
    segments = []
    for run in runs:
        probs = mean(run)
        best = int(probs.argmax())
        segments.append(
            Segment(
                start=round(float(spans[run[0], 0]), 3),
                end=round(float(spans[run[1] - 1, 1]), 3),
                label=labels[best],
                confidence=round(float(probs[best]), 4),
                probabilities={label: round(float(p), 4) for label, p in zip(labels, probs, strict=True)},
            )
        )
    return segments


@hookimpl(trylast=True)
def ser_build_segments(times, probabilities, labels, settings):
    return build_segments(
        times,
        probabilities,
        labels,
        smoothing_windows=settings.smoothing_windows,
        hysteresis=settings.hysteresis,
        min_segment_seconds=settings.min_segment_seconds,
    )


@hookimpl(trylast=True)
def ser_build_timeline(words, segments, settings):
    return timeline_rows(
        words, segments, gap=settings.timeline_gap_seconds, max_seconds=settings.timeline_max_seconds
    )
