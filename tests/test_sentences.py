"""Sentences in an analysis: each one's emotion comes from its own audio span, and a recording
analysed in pieces gets its sentences in file time, like its words.

A stand-in transcriber says one word a second of speech and ends a sentence at the end of each
speech region, so which sentence covers which voice is known from how the audio is built."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

import ser_core
from ser_core.contract.hookspecs import hookimpl
from ser_core.contract.results import Word
from ser_core.contract.transcriber import Transcriber, Transcript
from ser_core.pipeline.audio import stream_audio
from ser_core.pipeline.pieces import pieces
from ser_core.plugins import manager as plugins
from ser_core.plugins import registries
from ser_core.settings import get_settings

from .conftest import SR, STYLES, voice

VOICE_SECONDS = 4.0
PAUSE_SECONDS = 1.5


class RegionTranscriber(Transcriber):
    """`word<i>` at every second of each speech region; the region's last word ends with a full stop."""

    name = "regions"
    model_id = "regions-v1"

    def __init__(self, settings, model):
        pass

    def transcribe(self, signal, language, speech):
        words = []
        for start, end in speech:
            times = np.arange(start, end - 0.5, 1.0)
            for k, t in enumerate(times):
                stop = "." if k == len(times) - 1 else ""
                words.append(
                    Word(start=float(t), end=float(t) + 0.5, text=f"word{len(words)}{stop}", probability=1.0)
                )
        return Transcript(language=language, words=words)


class RegionTranscriberPlugin:
    @hookimpl
    def ser_register_transcribers(self, register):
        register("regions", RegionTranscriber)


@pytest.fixture
def regions_transcriber(monkeypatch):
    plugins.get_plugin_manager().register(RegionTranscriberPlugin(), name="regions")
    registries.refresh()
    monkeypatch.setenv("SER_TRANSCRIBER", "regions")
    get_settings.cache_clear()


def moods(path, labels: list[str]) -> list[float]:
    """Write VOICE_SECONDS of each style in `labels`, PAUSE_SECONDS of silence between them;
    returns the start time of each voice."""
    parts, starts = [], []
    for i, label in enumerate(labels):
        if i:
            parts.append(np.zeros(int(PAUSE_SECONDS * SR), np.float32))
        starts.append(i * (VOICE_SECONDS + PAUSE_SECONDS))
        parts.append(voice(seconds=VOICE_SECONDS, seed=10 + i, **STYLES[label]))
    sf.write(path, np.concatenate(parts), SR)
    return starts


def word_groups(words: list[Word]) -> list[list[Word]]:
    """The words cut after each full stop: what the sentences must span."""
    groups: list[list[Word]] = [[]]
    for word in words:
        groups[-1].append(word)
        if word.text.endswith("."):
            groups.append([])
    return [g for g in groups if g]


def check_sentences(result: ser_core.AnalysisResult, labels: list[str], starts: list[float]) -> None:
    groups = word_groups(result.words)
    assert len(groups) == len(labels), [w.text for w in result.words]
    assert [(s.start, s.end) for s in result.sentences] == [(g[0].start, g[-1].end) for g in groups]
    for sentence, start in zip(result.sentences, starts, strict=True):
        assert sentence.start == pytest.approx(start, abs=0.3)  # where its voice starts
        assert sentence.end <= start + VOICE_SECONDS + 0.1
    assert [s.emotion for s in result.sentences] == labels


def test_each_sentence_takes_the_emotion_of_its_own_audio(tmp_path, trained_model, regions_transcriber):
    """An angry then a sad sentence in one piece: the piece as a whole has one emotion, its two
    sentences have one each."""
    path = tmp_path / "angry_then_sad.wav"
    starts = moods(path, ["angry", "sad"])
    result = ser_core.analyze(path, model=trained_model, transcript=True, language="en")
    check_sentences(result, ["angry", "sad"], starts)


def test_sentences_of_later_pieces_are_in_file_time(
    tmp_path, trained_model, regions_transcriber, monkeypatch
):
    """Three voices in 10 s pieces: the cut falls in the second pause (the quietest stretch of the
    first piece's last third), so the third sentence comes from the second piece, and is where its
    voice is in the file, not in the piece."""
    monkeypatch.setenv("SER_PIECE_SECONDS", "10")
    get_settings.cache_clear()
    path = tmp_path / "three.wav"
    labels = ["angry", "sad", "angry"]
    starts = moods(path, labels)
    cuts = [offset / SR for offset, _ in pieces(stream_audio(path), 10.0)][1:]
    assert len(cuts) == 1 and starts[1] + VOICE_SECONDS < cuts[0] < starts[2]
    result = ser_core.analyze(path, model=trained_model, transcript=True, language="en")
    check_sentences(result, labels, starts)
