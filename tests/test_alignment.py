"""Words meet emotions: alignment, sentences and timeline rows on hand-made inputs."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ser_core.contract.results import Segment, Word
from ser_core.pipeline.alignment import clamp_to_speech, label_words, split_sentences, timeline_rows


def seg(start, end, label, p=0.8):
    other = "sad" if label != "sad" else "angry"
    return Segment(start=start, end=end, label=label, confidence=p, probabilities={label: p, other: 1 - p})


def word(start, end, text="w"):
    return Word(start=start, end=end, text=text, probability=0.9)


SEGMENTS = [seg(0.0, 2.0, "angry", 0.9), seg(2.0, 4.0, "sad", 0.6), seg(6.0, 8.0, "angry", 0.7)]


def test_words_take_the_emotion_of_their_audio():
    words = label_words([word(0.5, 1.0), word(2.5, 3.0), word(6.1, 6.4)], SEGMENTS)
    assert [(w.emotion, w.confidence) for w in words] == [("angry", 0.9), ("sad", 0.6), ("angry", 0.7)]


def test_word_across_a_boundary_takes_the_larger_overlap_and_mixes_confidence():
    (w,) = label_words([word(1.8, 2.6)], SEGMENTS)  # 0.2 s angry, 0.6 s sad
    assert w.emotion == "sad"
    # P(sad) over the overlap: 0.2 s of the angry segment (P(sad) 0.1) and 0.6 s of 0.6.
    assert w.confidence == pytest.approx((0.2 * 0.1 + 0.6 * 0.6) / 0.8, abs=1e-4)


def test_words_in_gaps():
    near, far = label_words([word(4.1, 4.3), word(5.0, 5.2)], SEGMENTS, tolerance=0.5)
    assert (near.emotion, near.confidence) == ("sad", 0.6)  # 0.1 s after a segment: nearest wins
    assert (far.emotion, far.confidence) == (None, None)  # 0.8 s from any segment: no emotion


def test_no_speech_at_all_and_empty_transcript():
    (w,) = label_words([word(0.0, 0.5)], [])
    assert w.emotion is None
    assert label_words([], SEGMENTS) == []
    # No words at all: the speech is still there, as rows without words.
    assert [(r.start, r.end, r.emotion, r.words, r.text) for r in timeline_rows([], SEGMENTS)] == [
        (s.start, s.end, s.label, 0, "") for s in SEGMENTS
    ]
    assert split_sentences([]) == []
    assert timeline_rows(None, []) == []


def test_sentences_end_at_punctuation_and_long_pauses():
    words = [word(0, 0.3, "Hello"), word(0.4, 0.8, "there."), word(0.9, 1.2, "How"), word(1.3, 1.5, "are"),
             word(3.0, 3.3, "you"), word(3.4, 3.6, "today?")]  # fmt: skip
    sentences = split_sentences(words, gap=1.0)
    assert [" ".join(w.text for w in s) for s in sentences] == ["Hello there.", "How are", "you today?"]


def test_rows_merge_same_emotion_and_break_on_change_gap_and_length():
    labelled = label_words(
        [
            word(0.1, 0.5, "a"),
            word(0.6, 1.0, "b"),
            word(2.2, 2.5, "c"),
            word(2.6, 3.0, "d"),
            word(6.2, 6.5, "e"),
        ],
        SEGMENTS,
    )
    rows = timeline_rows(labelled, SEGMENTS, gap=1.0)
    # Speech before a row's first word (< gap) joins it; a second or more after its last word is
    # a row of its own, without words.
    assert [(r.emotion, r.text, r.start, r.end, r.words) for r in rows] == [
        ("angry", "a b", 0.0, 1.0, 2),
        ("angry", "", 1.0, 2.0, 0),
        ("sad", "c d", 2.0, 3.0, 2),
        ("sad", "", 3.0, 4.0, 0),
        ("angry", "e", 6.0, 6.5, 1),  # same emotion as the first row, but not consecutive
        ("angry", "", 6.5, 8.0, 0),
    ]
    assert rows[0].confidence == pytest.approx(0.9) and rows[1].confidence == 0.9
    # A pause longer than `gap` inside one emotion starts a new row ...
    said = [r.text for r in timeline_rows(labelled[:2], SEGMENTS, gap=0.05) if r.words]
    assert said == ["a", "b"]
    # ... and so does the length limit.
    long = label_words([word(t, t + 0.4) for t in (0.0, 0.5, 1.0, 1.5)], SEGMENTS)
    assert [r.words for r in timeline_rows(long, SEGMENTS, max_seconds=1.0) if r.words] == [2, 2]


def test_speech_without_words_keeps_its_place_in_the_timeline():
    """The issue's recording: Whisper heard nothing from 16.69 s to 47.03 s, where the segments
    say angry; the rows must not jump over that half-minute."""
    segments = [seg(0.0, 17.0, "neutral", 0.7), seg(19.0, 45.0, "angry", 0.99), seg(47.0, 50.0, "sad", 0.6)]
    words = label_words(
        [word(0.2, 8.0, "before"), word(8.2, 16.69, "it"), word(47.03, 49.5, "after")], segments
    )
    rows = timeline_rows(words, segments, gap=1.0, max_seconds=10.0)
    assert [(r.start, r.end, r.emotion, r.confidence, r.words) for r in rows] == [
        (0.0, 8.2, "neutral", 0.7, 1),  # the 0.2 s pause between two rows joins the first
        (8.2, 17.0, "neutral", 0.7, 1),  # the 0.31 s after "it" joins its row
        (19.0, 45.0, "angry", 0.99, 0),
        (47.0, 50.0, "sad", 0.6, 1),
    ]


def _length(spans) -> float:
    merged: list[list[float]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return sum(b - a for a, b in merged)


@st.composite
def layouts(draw):
    """Speech regions tiled by segments of random labels, and words anywhere (some in pauses,
    some across segment edges, some at zero length), in time order."""
    segments, t = [], 0.0
    for _ in range(draw(st.integers(0, 5))):
        t += draw(st.sampled_from([0.0, 0.3, 2.0]))  # pause before the region
        for _ in range(draw(st.integers(1, 3))):
            length = draw(st.floats(0.2, 6.0)).__round__(3)
            p = draw(st.floats(0.34, 1.0)).__round__(3)
            segments.append(
                seg(round(t, 3), round(t + length, 3), draw(st.sampled_from(["angry", "sad"])), p)
            )
            t += length
    words, w = [], 0.0
    for _ in range(draw(st.integers(0, 30))):
        w += draw(st.floats(0.0, 3.0))
        length = draw(st.sampled_from([0.0, 0.1, 0.4, 1.2]))
        words.append(word(round(w, 3), round(w + length, 3), f"w{len(words)}"))
        w += length
    return segments, words


@settings(max_examples=300, deadline=None, derandomize=True)
@given(layouts(), st.sampled_from([0.3, 1.0]), st.sampled_from([2.0, 10.0]))
def test_rows_cover_every_segment(layout, gap, max_seconds):
    segments, words = layout
    rows = timeline_rows(label_words(words, segments), segments, gap=gap, max_seconds=max_seconds)
    spans = [(r.start, r.end) for r in rows]
    # The rows' union covers the segments' union (to the millisecond rounding of times) ...
    missing = _length([(s.start, s.end) for s in segments] + spans) - _length(spans)
    assert missing < 1e-3 * (len(segments) + 1)
    # ... the rows are in order and do not overlap, and each word is in exactly one row, in order.
    assert all(a.end <= b.start + 1e-9 for a, b in pairwise(rows))
    assert " ".join(r.text for r in rows if r.words).split() == [w.text for w in words]
    assert sum(r.words for r in rows) == len(words)


def test_rows_without_a_transcript_are_the_segments():
    rows = timeline_rows(None, SEGMENTS)
    assert [(r.start, r.end, r.emotion, r.confidence, r.text) for r in rows] == [
        (s.start, s.end, s.label, s.confidence, "") for s in SEGMENTS
    ]


def test_words_are_clamped_to_their_speech_region():
    speech = [(1.4, 2.65), (3.65, 6.75)]
    words = clamp_to_speech([word(1.5, 1.9), word(2.2, 3.2), word(3.3, 4.0), word(7.0, 7.2)], speech)
    assert [(w.start, w.end) for w in words] == [(1.5, 1.9), (2.2, 2.65), (3.65, 4.0), (7.0, 7.2)]
