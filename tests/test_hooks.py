"""One test per hook, each registering an inline plugin; a meta-test fails when a hook has none."""

from __future__ import annotations

import inspect
import json
import sys

import numpy as np
import pytest
import soundfile as sf

import ser_core
from ser_core.contract import hookspecs
from ser_core.contract.backend import EmbeddingBackend
from ser_core.contract.diarizer import Diarizer
from ser_core.contract.hookspecs import hookimpl
from ser_core.contract.results import Segment, TimelineRow, Word
from ser_core.contract.transcriber import Transcriber, Transcript
from ser_core.models.classifiers import LogisticClassifier
from ser_core.plugins import manager as plugins
from ser_core.plugins import registries
from ser_core.plugins.lookup import get_backend, make_classifier
from ser_core.settings import get_settings

from .conftest import SR, voice


def test_every_hook_has_a_test():
    hooks = {name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("ser_")}
    tested = {
        name.removeprefix("test_hook_")
        for name in dir(sys.modules[__name__])
        if name.startswith("test_hook_")
    }
    assert hooks, "no hooks found"
    assert hooks <= tested, f"hooks without a test: {sorted(hooks - tested)}"


class LoudnessBackend(EmbeddingBackend):
    """A two-number backend: mean and peak of the frame energies."""

    backend_id = "loudness"
    model_id = "loudness-v1"
    frame_rate = 100.0
    dim = 2

    def __init__(self, settings=None):
        pass

    def frames(self, signal):
        n = max(1, len(signal) // 160)
        return np.sqrt((signal[: n * 160].reshape(n, -1) ** 2).mean(axis=1, keepdims=True) + 1e-12)

    def pool(self, frames):
        if len(frames) == 0:
            return np.zeros(2, np.float32)
        return np.array([frames.mean(), frames.max()], np.float32)


class BackendPlugin:
    @hookimpl
    def ser_register_backends(self, register):
        register("loudness", LoudnessBackend)


def test_hook_ser_register_backends():
    plugins.get_plugin_manager().register(BackendPlugin(), name="loudness-plugin")
    registries.refresh()
    from ser_core.plugins.lookup import backend_ids, get_backend_by_id

    assert "loudness" in backend_ids() and "handcrafted" in backend_ids()
    backend = get_backend_by_id.__wrapped__("loudness")
    vector = backend.embed(voice(200, 1.0, 0.5, 3, 0))
    assert vector.shape == (2,) and 0 < vector[0] < vector[1]
    assert registries.registered("ser_register_backends")["loudness"].plugin == "loudness-plugin"


class TinyProfile:
    """A plugin that brings its own profile: the loudness backend under the name "tiny"."""

    @hookimpl
    def ser_register_backends(self, register):
        register("loudness", LoudnessBackend, model_id="loudness-v1")

    @hookimpl
    def ser_register_profiles(self, register):
        register("tiny", "loudness", description="two loudness numbers", timeout_seconds=42.0)


def test_hook_ser_register_profiles(corpus, tmp_path):
    from typer.testing import CliRunner

    from ser_core.cli import app
    from ser_core.runs.budget import budget_for

    plugins.get_plugin_manager().register(TinyProfile(), name="tiny-plugin")
    registries.refresh()
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "--profile", "tiny", "-d", str(corpus), "--no-progress"])
    assert trained.exit_code == 0, trained.output  # into the models dir, where analyze looks
    clip = tmp_path / "clip.wav"
    sf.write(clip, voice(240.0, 2.0, 0.5, 5.0, 7), SR)
    analysed = runner.invoke(app, ["analyze", str(clip), "--profile", "tiny"])
    assert analysed.exit_code == 0, analysed.output
    result = json.loads(analysed.stdout)
    assert result["profile"] == "tiny" and result["backend_id"] == "loudness" and result["label"] in {"angry", "sad"}
    assert budget_for("tiny").timeout_seconds == 42.0
    listing = json.loads(runner.invoke(app, ["plugins", "--json"]).stdout)
    assert next(p for p in listing["plugins"] if p["name"] == "tiny-plugin")["profiles"] == ["tiny"]
    doctor = json.loads(runner.invoke(app, ["doctor", "--json"]).stdout)
    tiny = next(c for c in doctor["checks"] if c["name"] == "profile tiny")
    assert tiny["status"] == "ok" and "loudness" in tiny["detail"]
    assert "tiny 42 s" in next(c for c in doctor["checks"] if c["name"] == "time budgets")["detail"]


class LabelsFormat:
    """A plugin format: one "path<TAB>label" line per input."""

    @hookimpl
    def ser_register_exporters(self, register):
        def render(results, failures):
            return "".join(f"{r.path}\t{r.label}\n" for r in results)

        register("labels", render, extension=".lbl", description="path and label")


def test_hook_ser_register_exporters(trained_model, tmp_path):
    from typer.testing import CliRunner

    from ser_core.cli import app

    clip = tmp_path / "clip.wav"
    sf.write(clip, voice(240.0, 2.0, 0.5, 5.0, 7), SR)
    runner = CliRunner()
    before = runner.invoke(app, ["analyze", str(clip), "--model", str(trained_model), "-f", "labels"])
    assert before.exit_code != 0 and "unknown format 'labels'" in before.output
    plugins.get_plugin_manager().register(LabelsFormat(), name="labels-plugin")
    registries.refresh()
    one = runner.invoke(app, ["analyze", str(clip), "--model", str(trained_model), "-f", "labels"])
    assert one.exit_code == 0, one.output
    assert one.stdout == f"{clip}\tangry\n"
    out = tmp_path / "out"
    batch = runner.invoke(
        app, ["analyze", str(clip), "--model", str(trained_model), "-f", "labels", "-f", "json", "--output-dir", str(out), "--no-progress"]
    )
    assert batch.exit_code == 0, batch.output
    assert (out / "clip.lbl").read_text() == f"{clip}\tangry\n" and (out / "clip.json").is_file()


class TakesLayout:
    """A plugin layout: files named `<label>__<speaker>__<take>.wav`."""

    @hookimpl
    def ser_register_dataset_layouts(self, register):
        from ser_core.training.datasets import Parsed

        def parse(path, root):
            parts = path.stem.split("__")
            return Parsed(parts[0], f"takes:{parts[1]}") if len(parts) == 3 else None

        register("takes", parse, aliases=("take",))


def test_hook_ser_register_dataset_layouts(tmp_path):
    from ser_core.training.datasets import detect, load_dataset

    root = tmp_path / "my-corpus"
    root.mkdir()
    for k, label in enumerate(["angry", "sad", "angry", "sad"]):
        sf.write(root / f"{label}__spk{k % 2}__{k}.wav", voice(200.0, 0.5, 0.3, 4.0, k), SR)
    with pytest.raises(ser_core.errors.DatasetError, match="cannot tell the dataset layout"):
        detect(root)
    plugins.get_plugin_manager().register(TakesLayout(), name="takes-plugin")
    registries.refresh()
    assert detect(root) == "takes" and detect(f"take:{root}") == "takes"
    items = load_dataset(root)
    assert {(i.label, i.speaker, i.corpus) for i in items} == {("angry", "takes:spk0", "takes"), ("sad", "takes:spk1", "takes")}
    assert len(items) == 4


class Nearest(LogisticClassifier):
    kind = "nearest-mean"

    def __init__(self):
        self.labels = []

    def fit(self, features, labels):
        self.labels = sorted(set(labels))
        y = np.array(labels)
        self.means = np.stack([features[y == label].mean(axis=0) for label in self.labels])
        return self

    def predict_proba(self, features):
        distance = ((features[:, None, :] - self.means[None]) ** 2).sum(-1)
        scores = np.exp(-(distance - distance.min(axis=1, keepdims=True)))
        return scores / scores.sum(axis=1, keepdims=True)

    def state(self):
        return {"labels": self.labels}, {"means": self.means}

    @classmethod
    def from_state(cls, params, arrays):
        model = cls()
        model.labels, model.means = params["labels"], arrays["means"]
        return model


class ClassifierPlugin:
    @hookimpl
    def ser_register_classifiers(self, register):
        register(Nearest.kind, Nearest)


def test_hook_ser_register_classifiers(corpus, tmp_path):
    plugins.get_plugin_manager().register(ClassifierPlugin(), name="nearest")
    registries.refresh()
    report = ser_core.evaluate([corpus], classifier="nearest-mean")
    assert report["uar"] >= 0.9
    result = ser_core.train([corpus], out=tmp_path / "m.npz", classifier="nearest-mean")
    loaded = ser_core.models.artifacts.load_model(result.path)
    assert loaded.meta.classifier == "nearest-mean" and isinstance(loaded.classifier, Nearest)
    assert isinstance(make_classifier("logistic"), LogisticClassifier)


class EchoTranscriber(Transcriber):
    """Says "word<i>" once per second of speech, with a full stop after every sixth word (at the
    switch of `long_recording`, so its two sentences have one emotion each)."""

    name = "echo"

    def __init__(self, settings, model):
        self.model_id = model

    def transcribe(self, signal, language, speech):
        words = [
            Word(
                start=float(t),
                end=float(t) + 0.5,
                text=f"word{i}" + ("." if i % 6 == 5 else ""),
                probability=1.0,
            )
            for i, t in enumerate(t for start, end in speech for t in np.arange(start, end - 0.5, 1.0))
        ]
        return Transcript(language=language, words=words)


class TranscriberPlugin:
    @hookimpl
    def ser_register_transcribers(self, register):
        register("echo", EchoTranscriber)


def test_hook_ser_register_transcribers(trained_model, long_recording, monkeypatch):
    plugins.get_plugin_manager().register(TranscriberPlugin(), name="echo")
    registries.refresh()
    assert {"echo", "faster-whisper"} <= set(registries.registered("ser_register_transcribers"))
    monkeypatch.setenv("SER_TRANSCRIBER", "echo")
    get_settings.cache_clear()
    path, switch = long_recording
    result = ser_core.analyze(path, model=trained_model, transcript=True, language="xx", whisper_model="m1")
    assert result.transcriber == "echo m1" and result.language == "xx"
    assert len(result.words) == 12
    # Words take the emotion of the audio they span: angry before the switch, sad after it.
    assert {w.emotion for w in result.words if w.end < switch - 1} == {"angry"}
    assert {w.emotion for w in result.words if w.start > switch + 1} == {"sad"}
    assert [row.emotion for row in result.timeline] == ["angry", "sad"]
    assert result.timeline[0].text.startswith("word0 word1")
    # Two sentences (words 0-5 and 6-11), each with the emotion of its own audio.
    assert [(s.start, s.end, s.emotion) for s in result.sentences] == [
        (0.0, 5.5, "angry"),
        (6.0, 11.5, "sad"),
    ]


class ByTimeDiarizer(Diarizer):
    """A diarizer that knows nothing of voices: one vector per speech region, its start time;
    regions starting before `switch` are one speaker, the rest another."""

    name = "by-time"
    model_id = "t1"
    switch = 6.0

    def __init__(self, settings):
        pass

    def embed(self, signal, speech):
        spans = np.asarray(speech, dtype=float).reshape(-1, 2)
        return spans, spans[:, :1].copy()

    def assign(self, vectors, speakers):
        return (vectors[:, 0] >= self.switch).astype(int)


class DiarizerPlugin:
    @hookimpl
    def ser_register_diarizers(self, register):
        register("by-time", ByTimeDiarizer)


def test_hook_ser_register_diarizers(trained_model, long_recording, monkeypatch):
    plugins.get_plugin_manager().register(DiarizerPlugin(), name="by-time")
    registries.refresh()
    assert {"by-time", "ge2e"} <= set(registries.registered("ser_register_diarizers"))
    monkeypatch.setenv("SER_DIARIZER", "by-time")
    monkeypatch.setenv("SER_VAD_MERGE_GAP", "0")
    get_settings.cache_clear()
    path, switch = long_recording
    quiet = np.zeros(SR, np.float32)  # a pause at the switch: two speech regions
    audio, _ = sf.read(path, dtype="float32")
    gapped = path.with_name("gapped.wav")
    sf.write(gapped, np.concatenate([audio[: int(switch * SR)], quiet, audio[int(switch * SR) :]]), SR)
    result = ser_core.analyze(gapped, model=trained_model, speakers="auto")
    assert result.diarizer == "by-time t1"
    assert [(t.speaker, t.end <= switch + 0.5) for t in result.turns] == [("S1", True), ("S2", False)]
    assert [(s.speaker, s.label) for s in result.speakers] == [("S1", "angry"), ("S2", "sad")]
    assert [(r.speaker, r.emotion) for r in result.timeline] == [("S1", "angry"), ("S2", "sad")]


class WordPerRow:
    @hookimpl(tryfirst=True)
    def ser_build_timeline(self, words, segments, settings):
        if words is None:
            return None  # let the built-in one answer
        return [
            TimelineRow(start=w.start, end=w.end, emotion=w.emotion, confidence=w.confidence, text=w.text)
            for w in words
        ]


def test_hook_ser_build_timeline(trained_model, long_recording, monkeypatch):
    path, _ = long_recording
    without = ser_core.analyze(path, model=trained_model)  # no transcript: one row per segment
    assert [(r.emotion, r.text) for r in without.timeline] == [(s.label, "") for s in without.segments]
    plugins.get_plugin_manager().register(TranscriberPlugin(), name="echo")
    plugins.get_plugin_manager().register(WordPerRow(), name="word-per-row")
    registries.refresh()
    monkeypatch.setenv("SER_TRANSCRIBER", "echo")
    get_settings.cache_clear()
    result = ser_core.analyze(path, model=trained_model, transcript=True)
    assert [r.text for r in result.timeline] == [w.text for w in result.words]
    assert len(ser_core.analyze(path, model=trained_model, transcript=False).timeline) == len(
        without.timeline
    )


def test_hook_ser_default_models(trained_model, tmp_path):
    path = tmp_path / "sample.wav"
    sf.write(path, voice(240, 2.0, 0.5, 5.0, 3, 0.05), SR)
    # The shipped model serves `fast` out of the box ...
    shipped = registries.registered("ser_default_models")["fast"]
    assert shipped.plugin == "handcrafted"
    assert ser_core.analyze(path).model == str(shipped.value)

    # ... and a plugin can ship models for other profiles the same way.
    class Ships:
        @hookimpl
        def ser_default_models(self, register):
            register("loud", trained_model)

    plugins.get_plugin_manager().register(Ships(), name="ships")
    registries.refresh()
    assert ser_core.training.api.model_path_for("loud") == trained_model


class ConstantTimeline:
    @hookimpl(tryfirst=True)
    def ser_build_segments(self, times, probabilities, labels, settings):
        return [
            Segment(start=0.0, end=float(times[-1][1]), label="override", confidence=1.0, probabilities={})
        ]


def test_hook_ser_build_segments(trained_model, long_recording):
    path, _ = long_recording
    default = ser_core.analyze(path, model=trained_model)
    assert len(default.segments) == 2
    plugins.get_plugin_manager().register(ConstantTimeline(), name="constant")
    overridden = ser_core.analyze(path, model=trained_model)
    assert [s.label for s in overridden.segments] == ["override"]


def test_trace_hooks(monkeypatch, capsys):
    monkeypatch.setenv("SER_TRACE_HOOKS", "1")
    plugins.reset()
    registries.registered("ser_register_backends")
    assert "ser_register_backends [handcrafted]" in capsys.readouterr().err


def test_backend_lookup_names_distribution(monkeypatch):
    monkeypatch.setenv("SER_PLUGINS", "handcrafted")  # as if ser-backend-emotion2vec were not installed
    plugins.reset()
    with pytest.raises(ser_core.errors.ProfileError, match="ser-backend-emotion2vec"):
        get_backend("accurate-research")
