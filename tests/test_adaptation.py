"""Per-source normalisation: corpora standardised in training, a batch by its own statistics."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import ser_core
from ser_core.cli import app
from ser_core.errors import ArtifactError, DatasetError
from ser_core.models.adaptation import MIN_FILES, SourceStats
from ser_core.models.artifacts import load_model
from ser_core.models.calibration import scale
from ser_core.plugins.lookup import get_backend
from ser_core.training.api import Features, Trainer, leave_one_corpus_out
from ser_core.training.datasets import Item
from ser_core.training.extract import source_of
from ser_core.training.metrics import classification_report

from .conftest import SR, STYLES, voice


def test_source_statistics_standardise_each_dimension() -> None:
    rng = np.random.default_rng(0)
    source = SourceStats.of(rng.normal([10.0, -3.0, 0.0], [1.0, 5.0, 0.01], size=(4000, 3)))
    assert source.n_files == 4000
    z = source.standardise(rng.normal([10.0, -3.0, 0.0], [1.0, 5.0, 0.01], size=(4000, 3)))
    assert np.abs(z.mean(axis=0)).max() < 0.1 and np.abs(z.std(axis=0) - 1).max() < 0.05
    constant = SourceStats.of(np.ones((20, 2)))  # a constant dimension gives no infinities
    assert np.isfinite(constant.standardise(np.zeros((1, 2)))).all()
    with pytest.raises(ArtifactError, match="shape"):
        source.check(4, "source")


def _corpora(rng: np.random.Generator) -> Features:
    """Three corpora with one emotion contrast, each shifted and stretched as a whole (the way a
    microphone or language moves every feature), the held-out one most of all."""
    items, vectors = [], []
    for corpus, shift, stretch in (("a", 0.0, 1.0), ("b", 1.0, 1.5), ("c", 6.0, 3.0)):
        for i in range(120):
            label = "angry" if i % 2 else "sad"
            items.append(Item(Path(f"{corpus}{i}.wav"), label, f"{corpus}:{i % 6}", corpus))
            vectors.append((rng.normal(size=5) + (1.5 if label == "angry" else 0.0)) * stretch + shift)
    return Features(items, np.array(vectors))


def test_a_new_corpus_standardised_by_its_own_statistics_is_recognised() -> None:
    data = _corpora(np.random.default_rng(1))
    truth = np.array(data.labels)
    held = np.array([item.corpus == "c" for item in data.items])
    scores = {}
    for adapt in (False, True):
        probs = leave_one_corpus_out(Trainer(data, [], corpus_norm=True), ["angry", "sad"], adapt=adapt)
        predicted = np.array(["angry", "sad"])[probs[held].argmax(axis=1)]
        scores[adapt] = classification_report(truth[held].tolist(), predicted.tolist(), ["angry", "sad"])["uar"]
    # shifted by 6, corpus c reads as all-angry unless standardised by its own statistics
    assert scores[False] < 0.65 < 0.8 < scores[True]


def test_the_model_stores_its_adapted_head_and_its_temperature(trained_model, tmp_path) -> None:
    model = load_model(trained_model)
    assert model.adapted is not None and model.meta.source_norm["training"] == "per-corpus"
    assert model.adapted.labels == model.labels
    dim = model.meta.feature_dim
    vectors = np.random.default_rng(0).normal(size=(4, dim))
    source = SourceStats(np.zeros(dim), np.ones(dim), 20)
    # one corpus, one held-out speaker: too few clips to calibrate the adapted head on its own
    assert model.meta.calibration["adapted"] is None
    adapted_t = model.temperature
    raw = model.adapted.predict_proba(vectors)
    assert np.allclose(model.predict_proba(vectors, source), scale(raw, adapted_t))
    assert np.allclose(model.predict_proba(vectors), scale(model.classifier.predict_proba(vectors), model.temperature))
    # the adapted head's arrays without their metadata fail closed
    with zipfile.ZipFile(trained_model) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    broken = tmp_path / "broken.npz"
    with zipfile.ZipFile(broken, "w") as archive:
        for name, data in members.items():
            if name != "adapted.coef.npy":
                archive.writestr(name, data)
    with pytest.raises(ArtifactError, match=r"checksum|adapted"):
        load_model(broken)


def test_a_model_without_source_statistics_cannot_adapt(corpus, tmp_path) -> None:
    result = ser_core.train([corpus], profile="fast", out=tmp_path / "pooled.npz", corpus_norm=False)
    model = load_model(result.path)
    assert model.adapted is None and model.meta.source_norm is None
    vectors = np.zeros((1, model.meta.feature_dim))
    with pytest.raises(ArtifactError, match=r"pooled\.npz: .*per-corpus normalisation"):
        model.predict_proba(vectors, SourceStats(np.zeros(model.meta.feature_dim), np.ones(model.meta.feature_dim), 20))


def test_fast_features_do_not_depend_on_the_recording_level() -> None:
    backend = get_backend("fast")
    signal = voice(180.0, 2.0, 0.4, 4.0, seed=3)
    loud, quiet = backend.embed(signal), backend.embed(signal * 0.02)
    assert np.abs(loud - quiet).max() <= 1e-3 * max(1.0, np.abs(loud).max())
    silence = np.zeros(SR, np.float32)
    silence[::97] = 1e-6  # near-silence is not blown up past the gain limit
    assert np.isfinite(backend.embed(silence)).all()


@pytest.fixture
def batch(tmp_path) -> list[Path]:
    """12 recordings from one "source": voices of both corpus styles, 10 dB quieter and with hum."""
    paths = []
    t = np.arange(int(1.5 * SR)) / SR
    for k in range(12):
        style = STYLES["angry" if k % 2 else "sad"]
        signal = voice(style["f0"], 1.5, style["loudness"], style["syllables_per_s"], 500 + k, style["breath"])
        signal = 0.3 * signal + 0.003 * np.sin(2 * np.pi * 50 * t)
        path = tmp_path / f"call{k:02d}.wav"
        sf.write(path, signal.astype(np.float32), SR)
        paths.append(path)
    return paths


def test_analyze_adapts_to_a_batch_and_says_so(trained_model, batch, tmp_path) -> None:
    source = source_of(batch, "fast")
    assert source.n_files == len(batch)
    plain = ser_core.analyze(batch[1], model=trained_model)
    adapted = ser_core.analyze(batch[1], model=trained_model, source=source)
    assert plain.adapted_to is None and adapted.adapted_to == len(batch)
    # a source whose mean sits higher by the angry-minus-sad difference makes angry voices read sad
    backend = get_backend("fast")
    angry, sad = (np.mean([backend.embed(sf.read(p, dtype="float32")[0]) for p in batch[k::2]], axis=0) for k in (1, 0))
    moved = SourceStats(source.mean + angry - sad, source.scale, 12)
    assert plain.label == "angry" and ser_core.analyze(batch[1], model=trained_model, source=moved).label == "sad"
    out = tmp_path / "out"
    run = CliRunner().invoke(
        app, ["analyze", *map(str, batch), "--adapt", "--model", str(trained_model), "--output-dir", str(out), "--no-progress"]
    )
    assert run.exit_code == 0, run.output
    results = [json.loads(p.read_text()) for p in sorted(out.glob("*.json")) if p.name.startswith("call")]
    assert len(results) == len(batch) and {r["adapted_to"] for r in results} == {len(batch)}
    # adapted to a batch of both emotions, each recording keeps its own
    assert [r["label"] for r in results] == ["sad", "angry"] * (len(batch) // 2)
    many = dict(ser_core.analyze_many(batch, adapt=True, model=trained_model))
    assert many[batch[1]].probabilities == adapted.probabilities


def test_too_few_recordings_to_adapt_is_a_one_line_error(trained_model, batch) -> None:
    with pytest.raises(DatasetError, match=f"at least {MIN_FILES} readable"):
        source_of(batch[: MIN_FILES - 1], "fast")
    run = CliRunner().invoke(app, ["analyze", *map(str, batch[:3]), "--adapt", "--model", str(trained_model)])
    assert run.exit_code != 0
    assert f"at least {MIN_FILES} readable recordings" in run.output and "Traceback" not in run.output
