"""Words meet emotions: label each word with the emotion of the audio it spans, cut the transcript
into sentences, and merge words into timeline rows. Pure functions on the result models."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from ser_core.contract.results import Segment, TimelineRow, Word
from ser_core.pipeline.vad import merge_regions

SENTENCE_END = (
    ".",
    "?",
    "!",
    "\u2026",
    "\u3002",
    "\uff1f",
    "\uff01",
)  # ellipsis, CJK full stop, fullwidth ? and !


def _key(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def tidy(words: Sequence[Word]) -> list[Word]:
    """Words in time order without zero-length words (no audio was heard for them: a transcriber's
    alignment squeezed them, usually repeated or invented text) and without a word repeating one
    of the three before it with overlapping or identical times (the same word heard twice)."""
    out: list[Word] = []
    for word in sorted(words, key=lambda w: (w.start, w.end)):
        if word.end <= word.start:
            continue
        if any(_key(w.text) == _key(word.text) and word.start < w.end for w in out[-3:]):
            continue
        out.append(word)
    return out


def clamp_to_speech(words: Sequence[Word], speech: Sequence[Sequence[float]]) -> list[Word]:
    """Words trimmed to the speech region they overlap most: Whisper's word timestamps often run
    on into the silence after a sentence, which the VAD has measured better. Then `tidy`."""
    out = []
    for word in words:
        overlaps = [(min(word.end, b) - max(word.start, a), a, b) for a, b in speech]
        overlap, a, b = max(overlaps, default=(0.0, 0.0, 0.0))
        if overlap <= 0:
            out.append(word)
            continue
        start, end = max(word.start, a), min(word.end, b)
        out.append(word.model_copy(update={"start": round(float(start), 3), "end": round(float(end), 3)}))
    return tidy(out)


def label_words(words: Sequence[Word], segments: Sequence[Segment], tolerance: float = 0.5) -> list[Word]:
    """Copies of `words`, each with the emotion of the segment it overlaps most (and the mean
    probability of that emotion over the overlap). A word outside every segment takes the nearest
    segment within `tolerance` seconds, else no emotion."""
    out = []
    for word in words:
        overlaps = [(min(word.end, s.end) - max(word.start, s.start), s) for s in segments]
        best = max(overlaps, key=lambda pair: pair[0], default=None)
        if best is None:
            out.append(word.model_copy(update={"emotion": None, "confidence": None}))
            continue
        if best[0] <= 0:
            gap, nearest = min(
                ((max(s.start - word.end, word.start - s.end), s) for s in segments), key=lambda p: p[0]
            )
            if gap > tolerance:
                out.append(word.model_copy(update={"emotion": None, "confidence": None}))
                continue
            emotion, confidence = nearest.label, nearest.probabilities.get(nearest.label, nearest.confidence)
        else:
            emotion = best[1].label
            spans = [(o, s) for o, s in overlaps if o > 0]
            confidence = sum(o * s.probabilities.get(emotion, 0.0) for o, s in spans) / sum(
                o for o, _ in spans
            )
        out.append(word.model_copy(update={"emotion": emotion, "confidence": round(confidence, 4)}))
    return out


def split_sentences(
    words: Sequence[Word],
    gap: float = 1.0,
    speech: Sequence[Sequence[float]] | None = None,
    pause: float = 0.3,
) -> list[list[Word]]:
    """Consecutive words up to a sentence-final punctuation mark, a pause longer than `gap`
    between two words, or (given the `speech` regions) a gap longer than `pause` between the
    regions of two consecutive words: 0.3 s between regions padded by 0.1 s (the VAD's) is half a
    second without speech. Word times cannot be trusted at pauses (Whisper stretches words over
    them) and long recordings come back with few full stops, so without the regions a sentence
    runs on across utterances ("are sitting by the door Kids")."""
    regions = sorted((float(a), float(b)) for a, b in (speech if speech is not None else []))
    pauses = [(b, c) for (_, b), (c, _) in pairwise(regions) if c - b > pause]
    sentences: list[list[Word]] = []
    current: list[Word] = []
    for word in words:
        before = (current[-1].start + current[-1].end) / 2 if current else 0.0
        middle = (word.start + word.end) / 2
        if current and (
            word.start - current[-1].end > gap or any(before < c and b < middle for b, c in pauses)
        ):
            sentences.append(current)
            current = []
        current.append(word)
        if word.text.endswith(SENTENCE_END):
            sentences.append(current)
            current = []
    if current:
        sentences.append(current)
    return sentences


def join_text(words: Sequence[Word]) -> str:
    return " ".join(word.text for word in words)


def timeline_rows(
    words: Sequence[Word] | None, segments: Sequence[Segment], gap: float = 1.0, max_seconds: float = 10.0
) -> list[TimelineRow]:
    """Rows of consecutive labelled words with one emotion and speaker; a row also ends at a pause
    longer than `gap` and before it grows past `max_seconds`. Speech the words do not cover still appears:
    a stretch shorter than `gap` joins the word row it touches (one of its own emotion first),
    a longer one (or one touching no row) is a row of its own with no words. So the rows cover
    every emotion segment, whether or not the transcriber heard words there. Without a transcript
    (`words` None), one row per emotion segment."""
    if words is None:
        return [_speech_row(s.start, s.end, s) for s in segments]
    groups: list[list[Word]] = []
    for word in words:
        last = groups[-1] if groups else None
        if (
            last is None
            or word.emotion != last[-1].emotion
            or word.speaker != last[-1].speaker
            or word.start - last[-1].end > gap
            or word.end - last[0].start > max_seconds
        ):
            groups.append([word])
        else:
            last.append(word)
    rows = [_row(group) for group in groups]
    return sorted(rows + _uncovered_rows(rows, segments, gap), key=lambda row: (row.start, row.end))


def _uncovered_rows(rows: list[TimelineRow], segments: Sequence[Segment], gap: float) -> list[TimelineRow]:
    """Rows for the parts of `segments` no word row covers; a part shorter than `gap` extends a
    row it touches (`rows` is changed in place) instead."""
    # Rows less than 1 ms apart count as one span: `_subtract` drops slivers that short anyway.
    covered = merge_regions(np.array([(row.start, row.end) for row in rows]), 1e-3).tolist()
    covered_ends = [end for _, end in covered]
    # The row ending where a part starts (the last, in time order) and the one starting where it
    # ends (the first): rows are in time order, so their indices say which is which.
    ends: dict[float, int] = {}
    starts: dict[float, int] = {}
    for i, row in enumerate(rows):
        ends[row.end] = i
        starts.setdefault(row.start, i)
    extra: list[TimelineRow] = []
    for segment in segments:
        for start, end in _subtract((segment.start, segment.end), covered, covered_ends):
            touching = [
                i for i in (ends.get(start), starts.get(end)) if i is not None and rows[i].speaker == segment.speaker
            ]
            if not touching or end - start >= gap:
                extra.append(_speech_row(start, end, segment))
                continue
            i = min(touching, key=lambda k: rows[k].emotion != segment.label)  # its own emotion first
            row = rows[i] = rows[i].model_copy(
                update={"start": min(rows[i].start, start), "end": max(rows[i].end, end)}
            )
            ends[row.end] = max(i, ends.get(row.end, i))
            starts[row.start] = min(i, starts.get(row.start, i))
    return extra


def _subtract(
    span: tuple[float, float], covered: list[tuple[float, float]], ends: list[float]
) -> list[tuple[float, float]]:
    """The parts of `span` outside the sorted, disjoint `covered` spans (`ends`: their ends);
    slivers under 1 ms are dropped."""
    start, end = span
    left = bisect.bisect_right(ends, start)
    out = []
    for a, b in covered[left:]:
        if a >= end:
            break
        if a - start >= 1e-3:
            out.append((start, a))
        start = max(start, b)
    if end - start >= 1e-3:
        out.append((start, end))
    return out


def _speech_row(start: float, end: float, segment: Segment) -> TimelineRow:
    return TimelineRow(
        start=round(float(start), 3),
        end=round(float(end), 3),
        emotion=segment.label,
        confidence=segment.confidence,
        text="",
        words=0,
        speaker=segment.speaker,
    )


def _row(words: list[Word]) -> TimelineRow:
    confidence = None
    if words[0].emotion is not None:
        weights = [max(w.end - w.start, 1e-3) for w in words]
        confidence = round(
            sum(w * (x.confidence or 0.0) for w, x in zip(weights, words, strict=True)) / sum(weights), 4
        )
    return TimelineRow(
        start=words[0].start,
        end=words[-1].end,
        emotion=words[0].emotion,
        confidence=confidence,
        text=join_text(words),
        words=len(words),
        speaker=words[0].speaker,
    )
