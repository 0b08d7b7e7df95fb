"""Speech regions: silero on real (synthesised) speech, the energy fallback, merging."""

from __future__ import annotations

import numpy as np
import pytest

from ser_core.pipeline.audio import load_audio
from ser_core.pipeline.vad import merge_regions, silero_available, speech_regions

from .conftest import SR, voice


def _covers(regions, spans, slack=0.35):
    """Every known span is inside one region, and regions stay near the spans."""
    for start, end in spans:
        assert any(a - slack <= start and end <= b + slack for a, b in regions), (start, end, regions)
    for a, b in regions:
        assert any(a >= start - slack and b <= end + slack for start, end in spans), (a, b, spans)


@pytest.mark.parametrize("method", ["silero", "energy"])
def test_speech_regions_find_the_sentences_and_skip_silence(spoken, method):
    if method == "silero" and not silero_available():
        pytest.skip("faster-whisper (which bundles silero VAD) is not installed")
    path, spans = spoken
    signal = load_audio(path)
    # The 1.2 s pause between the sentences is longer than the merge gap: two regions expected.
    regions = speech_regions(signal, method, merge_gap=0.5)
    assert len(regions) == len(spans)
    _covers(regions, spans)


def test_energy_vad_on_a_synthetic_voice_with_a_pause():
    signal = np.concatenate(
        [voice(200, 2.0, 0.5, 4, 0), np.zeros(SR, np.float32), voice(150, 2.0, 0.3, 3, 1)]
    )
    regions = speech_regions(signal, "energy", merge_gap=0.3)
    assert len(regions) == 2
    assert regions[0][1] < 2.3 and regions[1][0] > 2.7


def test_off_and_silence():
    signal = np.zeros(2 * SR, np.float32)
    assert speech_regions(signal, "off").tolist() == [[0.0, 2.0]]
    assert len(speech_regions(signal, "energy")) == 0


def test_merge_regions():
    assert merge_regions(np.array([[3.0, 4.0], [0.0, 1.0], [1.2, 2.0]]), 0.3).tolist() == [
        [0.0, 2.0],
        [3.0, 4.0],
    ]
    assert merge_regions(np.zeros((0, 2)), 0.3).shape == (0, 2)
