"""Speakers in the results: turns from a diarizer's clusters, the speaker of every segment, word,
sentence and timeline row, and each speaker's summary.

Everything here works on the whole recording's results after its pieces were analysed, so
speaker ids stay the same across pieces (the diarizer clusters the whole file's vectors).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from ser_core.contract.results import Moment, Segment, SpeakerSummary, Turn

#: Turns are found on this grid (seconds): each step of speech takes the speaker of the window
#: whose centre is nearest.
STEP = 0.1
#: A turn shorter than this inside a speech region joins its longer neighbour: a voice does not
#: change for a tenth of a second, the vectors just wobble.
MIN_TURN = 0.5
#: Labels that say "no particular emotion": not a speaker's strongest moment.
QUIET = frozenset({"neutral", "calm"})


def parse_speakers(value: int | str | None) -> tuple[bool, int | None]:
    """(on, count) from "off", "auto", a number, or a number as text."""
    if value is None or str(value).strip().lower() == "off":
        return False, None
    if str(value).strip().lower() == "auto":
        return True, None
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"speakers must be 'off', 'auto' or a number of speakers, not {value!r}") from None
    if count < 1:
        raise ValueError(f"speakers must be at least 1, not {count}")
    return True, count


def find_turns(speech: Sequence[Sequence[float]], spans: np.ndarray, clusters: np.ndarray) -> list[Turn]:
    """Speaker turns over the speech regions from the windows' spans and cluster numbers; speakers
    are named S1, S2, ... in order of first appearance."""
    if len(spans) == 0:
        return []
    centres = np.asarray(spans, dtype=float).mean(axis=1)
    order = np.argsort(centres)
    centres, clusters = centres[order], np.asarray(clusters)[order]
    raw: list[list[Any]] = []  # [start, end, cluster], per region
    for start, end in speech:
        steps = np.arange(start, end, STEP)
        if len(steps) == 0:
            continue
        middle = np.minimum(steps + STEP / 2, end)
        right = np.clip(np.searchsorted(centres, middle), 1, len(centres) - 1)
        nearest = np.where(
            np.abs(centres[right - 1] - middle) <= np.abs(centres[right] - middle), right - 1, right
        )
        nearest = nearest if len(centres) > 1 else np.zeros(len(steps), int)
        region: list[list[Any]] = []
        for t, cluster in zip(steps, clusters[nearest], strict=True):
            if region and region[-1][2] == cluster:
                region[-1][1] = min(t + STEP, end)
            else:
                region.append([t, min(t + STEP, end), cluster])
        raw += _absorb_short(region)
    names: dict[Any, str] = {}
    turns = []
    for start, end, cluster in raw:
        name = names.setdefault(cluster, f"S{len(names) + 1}")
        if turns and turns[-1].speaker == name and abs(turns[-1].end - start) < 1e-6:
            turns[-1] = turns[-1].model_copy(update={"end": round(float(end), 3)})
        else:
            turns.append(Turn(start=round(float(start), 3), end=round(float(end), 3), speaker=name))
    return turns


def _absorb_short(region: list[list[Any]]) -> list[list[Any]]:
    """Turns of one region with those under MIN_TURN joined to their longer neighbour."""
    while len(region) > 1:
        lengths = [end - start for start, end, _ in region]
        i = int(np.argmin(lengths))
        if lengths[i] >= MIN_TURN:
            break
        before = lengths[i - 1] if i > 0 else -1.0
        after = lengths[i + 1] if i + 1 < len(region) else -1.0
        j = i - 1 if before >= after else i + 1
        a, b = sorted((i, j))
        merged = [region[a][0], region[b][1], region[j][2]]
        region = region[:a] + [merged] + region[b + 1 :]
        if a > 0 and region[a - 1][2] == merged[2]:  # the neighbour on the other side may match now
            region = region[: a - 1] + [[region[a - 1][0], merged[1], merged[2]]] + region[a + 1 :]
    return region


def speaker_at(turns: Sequence[Turn], start: float, end: float) -> str | None:
    """The speaker holding most of [start, end); for a point or a span in a pause, the nearest turn's.
    `turns` are in time order and do not overlap (as `find_turns` gives them), so only the few
    around the span are looked at."""
    if not turns:
        return None
    first = bisect.bisect_right(turns, start, key=lambda t: t.end)  # the first turn ending after start
    overlap: dict[str, float] = {}
    for turn in turns[first : bisect.bisect_left(turns, end, key=lambda t: t.start)]:
        held = min(end, turn.end) - max(start, turn.start)
        if held > 0:
            overlap[turn.speaker] = overlap.get(turn.speaker, 0.0) + held
    if overlap:
        return max(overlap, key=lambda name: overlap[name])
    middle = (start + end) / 2
    near = turns[max(first - 1, 0) : first + 1]
    return min(near, key=lambda t: max(t.start - middle, middle - t.end, 0.0)).speaker


def split_segments(segments: Sequence[Segment], turns: Sequence[Turn]) -> list[Segment]:
    """Segments cut at speaker changes, each part with its speaker (emotion and confidence those
    of the segment it was cut from)."""
    out = []
    for segment in segments:
        inside = turns[
            bisect.bisect_right(turns, segment.start, key=lambda t: t.end) : bisect.bisect_left(
                turns, segment.end, key=lambda t: t.start
            )
        ]
        cuts = sorted({t for turn in inside for t in (turn.start, turn.end) if segment.start < t < segment.end})
        edges = [segment.start, *cuts, segment.end]
        for start, end in itertools.pairwise(edges):
            out.append(
                segment.model_copy(
                    update={"start": start, "end": end, "speaker": speaker_at(turns, start, end)}
                )
            )
    merged: list[Segment] = []
    for segment in out:  # a cut between two turns of the same speaker is no cut
        last = merged[-1] if merged else None
        if (
            last
            and last.end == segment.start
            and (last.label, last.speaker, last.probabilities)
            == (
                segment.label,
                segment.speaker,
                segment.probabilities,
            )
        ):
            merged[-1] = last.model_copy(update={"end": segment.end})
        else:
            merged.append(segment)
    return merged


def with_speakers(items: Sequence[Any], turns: Sequence[Turn]) -> list[Any]:
    """Copies of timed items (words, sentences) with the speaker holding most of each."""
    return [item.model_copy(update={"speaker": speaker_at(turns, item.start, item.end)}) for item in items]


def overall(
    segments: Sequence[Segment], labels: Sequence[str]
) -> tuple[str | None, dict[str, float], dict[str, float]]:
    """(label, probabilities, shares) of a recording from its emotion segments: each label's
    share of the segments' time, the segments' probabilities averaged over their duration, and
    the label of the largest share (ties: the higher mean probability). No segments: no speech,
    so (None, {}, {})."""
    if not segments:
        return None, {}, {}
    seconds = np.array([max(s.end - s.start, 0.0) for s in segments])
    weights = seconds if seconds.sum() > 0 else np.ones_like(seconds)
    table = np.array([[s.probabilities.get(label, 0.0) for label in labels] for s in segments])
    mean = np.average(table, axis=0, weights=weights)
    held = np.array([weights[[s.label == label for s in segments]].sum() for label in labels])
    share = held / weights.sum()
    best = max(range(len(labels)), key=lambda k: (share[k], mean[k]))
    return labels[best], rounded(labels, mean), rounded(labels, share)


def rounded(labels: Sequence[str], probabilities: np.ndarray) -> dict[str, float]:
    return {label: round(float(p), 4) for label, p in zip(labels, probabilities, strict=True)}


def summaries(
    turns: Sequence[Turn],
    segments: Sequence[Segment],
    labels: Sequence[str],
    uncertain_below: float,
    moments: int = 3,
) -> list[SpeakerSummary]:
    """Each speaker's talk time, time-weighted emotion, first third against last third, and
    strongest moments (the most confident segments of an emotion other than neutral/calm)."""
    talk: dict[str, float] = {}
    for turn in turns:
        talk[turn.speaker] = talk.get(turn.speaker, 0.0) + turn.end - turn.start
    total = sum(talk.values()) or 1.0
    out = []
    for name, seconds in talk.items():
        own = [s for s in segments if s.speaker == name]
        label, probabilities, shares = overall(own, labels)
        confidence = None if label is None else probabilities[label]
        strongest = sorted((s for s in own if s.label not in QUIET), key=lambda s: -s.confidence)[:moments]
        out.append(
            SpeakerSummary(
                speaker=name,
                talk_seconds=round(seconds, 3),
                share=round(seconds / total, 4),
                label=label,
                confidence=confidence,
                uncertain=confidence is not None and confidence < uncertain_below,
                probabilities=probabilities,
                shares=shares,
                early=overall(_third(own, first=True), labels)[0],
                late=overall(_third(own, first=False), labels)[0],
                moments=[
                    Moment(start=s.start, end=s.end, emotion=s.label, confidence=s.confidence)
                    for s in sorted(strongest, key=lambda s: s.start)
                ],
            )
        )
    return out


def _third(segments: Sequence[Segment], first: bool) -> list[Segment]:
    """The segments (cut where needed) holding the first or the last third of their speech time."""
    ordered = sorted(segments, key=lambda s: s.start) if first else sorted(segments, key=lambda s: -s.end)
    left = sum(s.end - s.start for s in segments) / 3
    out = []
    for s in ordered:
        if left <= 1e-9:
            break
        take = min(s.end - s.start, left)
        span = {"end": s.start + take} if first else {"start": s.end - take}
        out.append(s.model_copy(update=span))
        left -= take
    return out
