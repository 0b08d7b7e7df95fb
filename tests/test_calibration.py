"""Calibrated confidence: temperature scaling, stored in the artifact, applied, and shown."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import ser_core
from ser_core.errors import ArtifactError
from ser_core.models.artifacts import Model, load_model
from ser_core.models.calibration import fit_temperature, scale
from ser_core.pipeline.exports import render
from ser_core.settings import get_settings
from ser_core.training import channels
from ser_core.training.api import Features, Trainer
from ser_core.training.datasets import Item
from ser_core.training.metrics import calibration_report

from .conftest import SR, voice


def _overconfident(n: int = 4000, temperature: float = 4.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities from logits `temperature` times too sharp, with labels drawn from the true ones."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.5, size=(n, 5))
    true = scale(np.exp(logits), 1.0)
    truth = np.array([rng.choice(5, p=p / p.sum()) for p in true])
    return scale(np.exp(logits), 1.0 / temperature), truth


def test_temperature_recovers_the_overconfidence_and_lowers_ece() -> None:
    probs, truth = _overconfident()
    temperature = fit_temperature(probs, truth)
    assert temperature == pytest.approx(4.0, rel=0.15)
    before = calibration_report(probs, truth)
    after = calibration_report(scale(probs, temperature), truth)
    assert before["ece"] > 0.2 and after["ece"] < 0.03
    assert sum(b["n"] for b in after["bins"]) == after["n"] == len(truth)
    # scaling never changes which label is on top
    np.testing.assert_array_equal(scale(probs, temperature).argmax(1), probs.argmax(1))


def test_ece_is_zero_when_confidence_matches_accuracy() -> None:
    probs = np.array([[0.75, 0.25]] * 8)
    truth = np.array([0, 0, 0, 1, 0, 0, 0, 1])
    assert calibration_report(probs, truth)["ece"] == pytest.approx(0.0)
    assert calibration_report(probs, 1 - truth)["ece"] == pytest.approx(0.5)


def test_the_artifact_applies_and_checks_its_temperature(trained_model, tmp_path) -> None:
    model = load_model(trained_model)
    assert model.meta.calibration and model.meta.calibration["method"] == "temperature"
    features = np.random.default_rng(0).normal(size=(5, model.meta.feature_dim))
    raw = model.classifier.predict_proba(features)
    np.testing.assert_allclose(model.predict_proba(features), scale(raw, model.temperature))
    for bad in (-1.0, 0.0, "hot"):
        meta = model.meta.model_copy(update={"calibration": {"method": "temperature", "temperature": bad}})
        path = Model(meta, model.classifier).save(tmp_path / "bad.npz")
        with pytest.raises(ArtifactError, match="temperature must be a positive number"):
            load_model(path)


def test_train_with_copies_calibrates_on_held_out_corpora(corpus, tmp_path) -> None:
    # a second "corpus" in another layout: the same voices one octave lower, speaker ids folders:
    other = tmp_path / "other"
    for label, f0, loud, rate in (("angry", 200.0, 0.5, 5.0), ("sad", 95.0, 0.08, 2.0)):
        (other / label).mkdir(parents=True)
        for take in range(6):
            sf.write(other / label / f"{take}.wav", voice(f0, 1.6, loud, rate, seed=50 + take), SR)
    result = ser_core.train(
        [corpus, other], profile="fast", out=tmp_path / "m.npz", augment=1, crops=1, balance_corpora=True
    )
    calibration = result.model.meta.calibration
    assert calibration["fit_on"].startswith("held-out speakers and leave-one-corpus-out")
    speakers, corpora = (view["temperature"] for view in calibration["views"].values())
    assert calibration["temperature"] == pytest.approx(np.sqrt(speakers * corpora), rel=1e-3)
    assert all(view["ece_scaled"] <= view["ece_raw"] + 1e-9 for view in calibration["views"].values())
    training = result.report["training"]
    assert training["training_copies"] == 1 and training["training_crops"] == 1 and training["balance_corpora"]
    assert result.report["calibration"] == calibration
    assert set(result.report["leave_one_corpus_out"]) == {"emodb", "other"}
    # the adapted head (each corpus by its own statistics) has a temperature of its own
    adapted = calibration["adapted"]
    assert adapted["temperature"] > 0 and "leave-one-corpus-out" in adapted["fit_on"]
    assert set(result.report["leave_one_corpus_out_adapted"]) == {"emodb", "other"}


def test_uncertain_follows_the_threshold_in_results_and_formats(trained_model, long_recording, monkeypatch) -> None:
    path, _ = long_recording
    monkeypatch.setenv("SER_UNCERTAIN_BELOW", "1.01")
    get_settings.cache_clear()
    unsure = ser_core.analyze(path, model=trained_model)
    assert unsure.uncertain and all(s.uncertain for s in unsure.segments)
    assert all(row.uncertain for row in unsure.timeline if row.emotion)
    rows = list(csv.DictReader(io.StringIO(render([unsure], "csv"))))
    assert rows and {row["uncertain"] for row in rows} == {"true"}
    assert ", uncertain]" in render([unsure], "srt")
    assert "uncertain)" in render([unsure], "table")
    page = render([unsure], "html")
    assert 'fill="url(#uncertain)"' in page and 'class="uncertain"' in page
    monkeypatch.setenv("SER_UNCERTAIN_BELOW", "0")
    get_settings.cache_clear()
    sure = ser_core.analyze(path, model=trained_model)
    assert not sure.uncertain and not any(s.uncertain for s in sure.segments)
    assert "uncertain" not in render([sure], "srt") and 'fill="url(#uncertain)"' not in render([sure], "html")
    assert {row["uncertain"] for row in csv.DictReader(io.StringIO(render([sure], "csv")))} == {"false"}


def test_telephone_audio_gets_a_warning_in_the_result_and_its_formats(trained_model, tmp_path) -> None:
    speech = voice(180.0, 4.0, 0.3, 4.0, seed=3)
    clean, phone = tmp_path / "clean.wav", tmp_path / "phone.wav"
    sf.write(clean, speech, SR)
    sf.write(phone, channels.telephone(speech), SR)
    assert ser_core.analyze(clean, model=trained_model).warnings == []
    result = ser_core.analyze(phone, model=trained_model)
    (warning,) = result.warnings
    assert warning.startswith("narrowband") and "accurate profile holds up better" in warning
    assert f"NOTE warning: {warning}" in render([result], "vtt")
    assert f"Warning: {warning}" in render([result], "html")
    assert "warning: narrowband" in render([result], "table")


def test_balanced_corpora_weigh_alike_whatever_their_size() -> None:
    """Doubling every clip of one corpus changes an unbalanced fit but not a balanced one."""
    rng = np.random.default_rng(0)
    items, vectors = [], []
    for corpus, n, shift in (("big", 40, 0.0), ("small", 10, 1.5)):
        for i in range(n):
            label = "angry" if i % 2 else "sad"
            items.append(Item(Path(f"{corpus}{i}.wav"), label, f"{corpus}:{i % 5}", corpus))
            vectors.append(rng.normal(size=6) + shift + (2.0 if label == "angry" else 0.0))
    data = Features(items, np.array(vectors))
    small = np.array([item.corpus == "small" for item in items])
    doubled = Features(items + [i for i, s in zip(items, small, strict=True) if s], np.vstack([data.vectors, data.vectors[small]]))
    probe = rng.normal(size=(5, 6))
    change = {}
    for balance in (True, False):
        once = Trainer(data, [], balance_corpora=balance).fit(np.ones(len(items), bool)).predict_proba(probe)
        twice = Trainer(doubled, [], balance_corpora=balance).fit(np.ones(len(doubled.items), bool)).predict_proba(probe)
        odds = [np.log(p[:, 1] / p[:, 0]) for p in (once, twice)]
        change[balance] = np.max(np.abs(odds[1] - odds[0]) / np.abs(odds[0]))
    # balanced: only the covariance's small-sample correction (rows - classes) sees the extra rows
    assert change[True] < 0.01 < 0.03 < change[False]


def test_copies_of_each_kind_are_cached_apart_and_differ(corpus) -> None:
    from ser_core.plugins.lookup import get_backend
    from ser_core.training.api import copy_vectors, load_features

    backend = get_backend("fast")
    data = load_features([corpus], backend)
    (channel,) = copy_vectors(data, backend, 1, 1, 0, None)
    (crop,) = copy_vectors(data, backend, 1, 1, 0, None, kind="crop")
    assert channel.shape == crop.shape == data.vectors.shape
    assert not np.allclose(channel, data.vectors) and not np.allclose(crop, channel)
    (again,) = copy_vectors(data, backend, 1, 1, 0, None, kind="crop")  # from the cache, same seeds
    np.testing.assert_array_equal(again, crop)
