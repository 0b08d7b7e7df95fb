"""Words meet emotions: alignment, sentences and timeline rows on hand-made inputs."""

from __future__ import annotations

import pytest

from ser_core.alignment import clamp_to_speech, label_words, split_sentences, timeline_rows
from ser_core.results import Segment, Word


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
    assert timeline_rows([], SEGMENTS) == []
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
    assert [(r.emotion, r.text, r.start, r.end) for r in rows] == [
        ("angry", "a b", 0.1, 1.0),
        ("sad", "c d", 2.2, 3.0),
        ("angry", "e", 6.2, 6.5),  # same emotion as the first row, but not consecutive
    ]
    assert rows[0].confidence == pytest.approx(0.9)
    # A pause longer than `gap` inside one emotion starts a new row ...
    assert [r.text for r in timeline_rows(labelled[:2], SEGMENTS, gap=0.05)] == ["a", "b"]
    # ... and so does the length limit.
    long = label_words([word(t, t + 0.4) for t in (0.0, 0.5, 1.0, 1.5)], SEGMENTS)
    assert [len(r.text.split()) for r in timeline_rows(long, SEGMENTS, max_seconds=1.0)] == [2, 2]


def test_rows_without_a_transcript_are_the_segments():
    rows = timeline_rows(None, SEGMENTS)
    assert [(r.start, r.end, r.emotion, r.confidence, r.text) for r in rows] == [
        (s.start, s.end, s.label, s.confidence, "") for s in SEGMENTS
    ]


def test_words_are_clamped_to_their_speech_region():
    speech = [(1.4, 2.65), (3.65, 6.75)]
    words = clamp_to_speech([word(1.5, 1.9), word(2.2, 3.2), word(3.3, 4.0), word(7.0, 7.2)], speech)
    assert [(w.start, w.end) for w in words] == [(1.5, 1.9), (2.2, 2.65), (3.65, 4.0), (7.0, 7.2)]
