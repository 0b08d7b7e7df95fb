"""One test per hook, each registering an inline plugin; a meta-test fails when a hook has none."""

from __future__ import annotations

import inspect
import sys

import numpy as np
import pytest
import soundfile as sf

import ser_core
from ser_core import hookspecs, plugins
from ser_core.backend import EmbeddingBackend, get_backend
from ser_core.classifier import LogisticClassifier, make_classifier
from ser_core.hookspecs import hookimpl
from ser_core.results import Segment

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
    plugins.registry.cache_clear()
    from ser_core.backend import backend_ids, get_backend_by_id

    assert "loudness" in backend_ids() and "handcrafted" in backend_ids()
    backend = get_backend_by_id.__wrapped__("loudness")
    vector = backend.embed(voice(200, 1.0, 0.5, 3, 0))
    assert vector.shape == (2,) and 0 < vector[0] < vector[1]
    assert plugins.registry("ser_register_backends")["loudness"].plugin == "loudness-plugin"


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
    plugins.registry.cache_clear()
    report = ser_core.evaluate([corpus], classifier="nearest-mean")
    assert report["uar"] >= 0.9
    result = ser_core.train([corpus], out=tmp_path / "m.npz", classifier="nearest-mean")
    loaded = ser_core.artifacts.load_model(result.path)
    assert loaded.meta.classifier == "nearest-mean" and isinstance(loaded.classifier, Nearest)
    assert isinstance(make_classifier("logistic"), LogisticClassifier)


class EchoTranscriber:
    def __init__(self, settings=None):
        self.settings = settings

    def transcribe(self, signal):
        return [{"word": "hello", "start": 0.0, "end": len(signal) / SR}]


class TranscriberPlugin:
    @hookimpl
    def ser_register_transcribers(self, register):
        register("echo", EchoTranscriber)


def test_hook_ser_register_transcribers():
    plugins.get_plugin_manager().register(TranscriberPlugin(), name="echo")
    plugins.registry.cache_clear()
    found = plugins.registry("ser_register_transcribers")
    words = found["echo"].value().transcribe(np.zeros(SR // 2))
    assert words == [{"word": "hello", "start": 0.0, "end": 0.5}]


def test_hook_ser_default_models(trained_model, tmp_path):
    path = tmp_path / "sample.wav"
    sf.write(path, voice(240, 2.0, 0.5, 5.0, 3, 0.05), SR)
    # The shipped model serves `fast` out of the box ...
    shipped = plugins.registry("ser_default_models")["fast"]
    assert shipped.plugin == "handcrafted"
    assert ser_core.analyze(path).model == str(shipped.value)

    # ... and a plugin can ship models for other profiles the same way.
    class Ships:
        @hookimpl
        def ser_default_models(self, register):
            register("loud", trained_model)

    plugins.get_plugin_manager().register(Ships(), name="ships")
    plugins.registry.cache_clear()
    assert ser_core.api.model_path_for("loud") == trained_model


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
    plugins.registry("ser_register_backends")
    assert "ser_register_backends [handcrafted]" in capsys.readouterr().err


def test_backend_lookup_names_distribution():
    with pytest.raises(ser_core.errors.ProfileError, match="ser-backend-emotion2vec"):
        get_backend("accurate-research")
