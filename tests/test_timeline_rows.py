"""A timeline row's confidence is its words' confidences weighted by how long each word lasts, so
a long word counts for the stretch of audio it covers and a clipped one does not outweigh it."""

from __future__ import annotations

import pytest

from ser_core.contract.results import Segment, Word
from ser_core.pipeline.alignment import timeline_rows


def word(start: float, end: float, text: str, confidence: float) -> Word:
    return Word(start=start, end=end, text=text, probability=1.0, emotion="sad", confidence=confidence)


def test_row_confidence_is_weighted_by_word_duration():
    words = [word(0.0, 0.2, "so", 0.9), word(0.2, 1.0, "tired", 0.4)]
    segment = Segment(
        start=0.0, end=1.0, label="sad", confidence=0.5, probabilities={"sad": 0.5, "angry": 0.5}
    )
    rows = [row for row in timeline_rows(words, [segment]) if row.text]
    assert [(row.start, row.end, row.text) for row in rows] == [(0.0, 1.0, "so tired")]
    # (0.2 s * 0.9 + 0.8 s * 0.4) / 1.0 s = 0.5; a plain mean would give 0.65.
    assert rows[0].confidence == pytest.approx(0.5)
