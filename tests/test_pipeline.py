"""Train -> evaluate -> analyze on generated audio, through the public API."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

import ser_core
from ser_core.errors import ProfileError
from ser_core.models.artifacts import load_model
from ser_core.pipeline.analysis import window_spans
from ser_core.settings import get_settings

from .conftest import SR, voice


def test_train_writes_verified_artifact_and_report(trained_model):
    model = load_model(trained_model)
    assert model.labels == ["angry", "sad"]
    assert model.meta.profile == "fast" and model.meta.backend_id == "handcrafted"
    assert model.meta.training["n_files"] == 32
    report = json.loads(trained_model.with_name("fast.report.json").read_text())
    held = report["heldout"]
    assert held["heldout_speakers"] and held["n_files"] == 8 * len(held["heldout_speakers"])
    assert held["uar"] >= 0.9


def test_evaluate_is_speaker_independent(corpus):
    report = ser_core.evaluate([corpus], profile="fast")
    assert report["cv"] == "leave-one-speaker-out"
    assert [fold["test_speakers"] for fold in report["folds"]] == [
        [f"emodb:{s}"] for s in ("03", "08", "09", "10")
    ]
    assert report["n_files"] == 32 and sum(map(sum, report["confusion"])) == 32
    assert report["uar"] >= 0.9
    assert set(report) >= {"uar", "wa", "macro_f1", "labels", "confusion", "per_class", "n_files", "folds"}


def test_grouped_folds(corpus):
    report = ser_core.evaluate([corpus], folds=2)
    assert [len(fold["test_speakers"]) for fold in report["folds"]] == [2, 2]


def test_second_evaluation_uses_feature_cache(corpus):
    from ser_core.plugins.lookup import get_backend
    from ser_core.training.api import load_features

    backend = get_backend("fast")
    first = load_features([corpus], backend)
    second = load_features([corpus], backend)
    assert first.cache_hits == 0 and second.cache_hits == 32
    np.testing.assert_array_equal(first.vectors, second.vectors)


def test_parallel_extraction_matches_serial(corpus):
    from ser_core.plugins.lookup import get_backend
    from ser_core.training.api import load_features

    backend = get_backend("fast")
    serial = ser_core.training.extract.extract(
        [i.path for i in ser_core.training.datasets.load_dataset(corpus)], backend, cache=False
    )
    parallel = load_features([corpus], backend, jobs=2)
    np.testing.assert_allclose(serial.vectors, parallel.vectors, rtol=1e-5)


def test_analyze_labels_and_segments(trained_model, long_recording):
    path, switch = long_recording
    result = ser_core.analyze(path, model=trained_model)
    assert abs(result.duration - 12.0) < 0.01
    assert abs(sum(result.probabilities.values()) - 1) < 1e-3
    labels = [segment.label for segment in result.segments]
    assert labels == ["angry", "sad"], result.segments
    assert abs(result.segments[0].end - switch) <= 1.5
    assert result.segments[0].start == 0.0 and result.segments[-1].end == pytest.approx(12.0)
    for a, b in zip(result.segments, result.segments[1:], strict=False):
        assert a.end == b.start


def test_cross_corpus_evaluation_over_shared_labels(trained_model, tmp_path):
    (tmp_path / "sad").mkdir()
    (tmp_path / "happy").mkdir()
    for i in range(3):
        sf.write(tmp_path / "sad" / f"{i}.wav", voice(120.0, 2.0, 0.08, 2.0, 50 + i, 0.01), SR)
        sf.write(tmp_path / "happy" / f"{i}.wav", voice(300.0, 2.0, 0.4, 5.0, 60 + i), SR)
    report = ser_core.evaluate_model(trained_model, [tmp_path])
    assert report["shared_labels"] == ["sad"] and report["n_files"] == 3
    assert report["per_class"]["sad"]["recall"] == 1.0


def test_unknown_and_missing_profiles(monkeypatch):
    monkeypatch.setenv("SER_PLUGINS", "handcrafted")  # as if ser-backend-hf were not installed
    with pytest.raises(ProfileError, match="unknown profile"):
        ser_core.analyze("x.wav", profile="nope")
    with pytest.raises(ProfileError, match="pip install ser-backend-hf"):
        ser_core.analyze("x.wav", profile="accurate")


def test_window_spans_cover_the_signal():
    spans = window_spans(5.5, 2.0, 1.0)
    assert spans[0, 0] == 0 and spans[-1, 1] == pytest.approx(5.5)
    assert np.all(np.diff(spans[:, 0]) > 0) and np.allclose(spans[:, 1] - spans[:, 0], 2.0)
    assert window_spans(1.2, 2.0, 1.0).tolist() == [[0.0, 1.2]]


def test_shipped_model_on_synthesised_speech(tmp_path, monkeypatch):
    from .conftest import espeak

    monkeypatch.setenv("SER_VAD", "silero")
    get_settings.cache_clear()
    path = espeak(
        "The meeting is over. I am going home now, and I will call you tomorrow.", tmp_path / "s.wav"
    )
    result = ser_core.analyze(path)
    assert result.profile == "fast" and result.model.endswith("fast-default.npz")
    assert set(result.probabilities) == {"neutral", "happy", "sad", "angry", "fearful", "disgust"}
    assert result.label == max(result.probabilities, key=result.probabilities.get)
    # Segments tile the speech regions exactly, and speech is most of this file.
    speech = np.array(result.speech)
    assert result.segments[0].start == speech[0, 0] and result.segments[-1].end == speech[-1, 1]
    assert 0.7 * result.duration < (speech[:, 1] - speech[:, 0]).sum() <= result.duration


def test_silence_gets_no_emotion(trained_model, tmp_path):
    from .conftest import SR, voice

    path = tmp_path / "pause.wav"
    signal = np.concatenate(
        [voice(240, 4.0, 0.5, 5, 1, 0.05), np.zeros(2 * SR, np.float32), voice(110, 4.0, 0.08, 2, 2, 0.01)]
    )
    sf.write(path, signal, SR)
    result = ser_core.analyze(path, model=trained_model)
    assert len(result.speech) == 2 and result.speech[0][1] < 4.3 and result.speech[1][0] > 5.7
    assert not [s for s in result.segments if s.end > 4.3 and s.start < 5.7]
    assert [s.label for s in result.segments] == ["angry", "sad"]
    assert [(r.start, r.end, r.emotion) for r in result.timeline] == [
        (s.start, s.end, s.label) for s in result.segments
    ]
    assert result.envelope and result.envelope_rate == pytest.approx(20.0, rel=0.01)
