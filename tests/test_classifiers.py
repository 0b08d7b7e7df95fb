"""Classifier kinds: fit on synthetic data, exact state round trip, malformed state fails closed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ser_core.errors import ArtifactError
from ser_core.models.classifiers import LogisticClassifier, ShrinkageLDAClassifier
from ser_core.plugins.lookup import classifier_kinds, make_classifier

LABELS = ("angry", "neutral", "sad")


def _blobs(n_per_class: int = 30, dim: int = 40, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = 1.5 * rng.standard_normal((len(LABELS), dim))
    scale = np.exp(rng.uniform(-2, 2, dim))  # unequal feature scales, as with real descriptors
    x = np.vstack([c + rng.standard_normal((n_per_class, dim)) for c in centres]) * scale
    labels = [label for label in LABELS for _ in range(n_per_class)]
    return x.astype(np.float32), labels


@pytest.mark.parametrize("covariance", ["pooled", "balanced"])
@pytest.mark.parametrize("dim", [40, 200])  # fewer and more dimensions than samples
def test_shrinkage_lda_fits_and_predicts(covariance, dim):
    x, labels = _blobs(dim=dim)
    model = ShrinkageLDAClassifier(covariance=covariance).fit(x[::2], labels[::2])
    assert model.labels == sorted(LABELS)
    proba = model.predict_proba(x[1::2])
    assert proba.shape == (len(x[1::2]), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    predicted = np.asarray(model.labels)[proba.argmax(axis=1)]
    assert np.mean(predicted == np.asarray(labels[1::2])) > 0.9
    single = model.predict_proba(x[1])
    np.testing.assert_allclose(single, proba[:1])


@pytest.mark.parametrize("n_per_class, dim", [(30, 20), (10, 80)])  # direct solve and Woodbury
def test_matches_dense_closed_form(n_per_class, dim):
    x, labels = _blobs(n_per_class=n_per_class, dim=dim)
    model = ShrinkageLDAClassifier(shrinkage=0.4).fit(x, labels)
    x = x.astype(np.float64)
    z = (x - x.mean(0)) / x.std(0)
    y = np.asarray(labels)
    means = np.stack([z[y == k].mean(0) for k in model.labels])
    residuals = z - means[np.searchsorted(model.labels, y)]
    cov = residuals.T @ residuals / (len(z) - len(LABELS))
    cov = 0.6 * cov + 0.4 * np.trace(cov) / dim * np.eye(dim)
    coef = np.linalg.solve(cov, means.T).T
    np.testing.assert_allclose(model.coef, coef, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(model.intercept, -0.5 * np.sum(coef * means, axis=1), rtol=1e-7, atol=1e-9)


def test_uniform_priors_do_not_favour_the_majority_class():
    rng = np.random.default_rng(1)
    x = np.vstack([rng.standard_normal((90, 5)), rng.standard_normal((10, 5))])
    labels = ["big"] * 90 + ["small"] * 10
    model = ShrinkageLDAClassifier().fit(x, labels)  # indistinguishable classes: intercepts ~ equal
    assert abs(model.intercept[0] - model.intercept[1]) < 0.5


@pytest.mark.parametrize("kind", ["logistic", "shrinkage_lda"])
def test_state_round_trip_gives_identical_probabilities(kind):
    x, labels = _blobs()
    model = make_classifier(kind).fit(x, labels)
    params, arrays = model.state()
    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays.values())
    params = json.loads(json.dumps(params))  # the artifact stores params as JSON
    again = classifier_kinds()[kind].from_state(params, {k: np.array(v) for k, v in arrays.items()})
    assert type(again) is type(model) and again.labels == model.labels
    np.testing.assert_array_equal(again.predict_proba(x), model.predict_proba(x))


def test_kinds_are_registered():
    kinds = classifier_kinds()
    assert kinds["logistic"] is LogisticClassifier
    assert kinds["shrinkage_lda"] is ShrinkageLDAClassifier


def _state():
    x, labels = _blobs()
    return ShrinkageLDAClassifier().fit(x, labels).state()


@pytest.mark.parametrize(
    "change",
    [
        lambda p, a: a.update(coef=a["coef"][:2]),  # fewer rows than labels
        lambda p, a: a.update(mean=a["mean"][:-1]),
        lambda p, a: a.update(scale=a["scale"][:-1]),
        lambda p, a: a.update(intercept=a["intercept"][:2]),
        lambda p, a: a.update(coef=a["coef"].ravel()),
        lambda p, a: p.update(labels=p["labels"][:2]),
    ],
)
def test_malformed_state_raises_artifact_error(change):
    params, arrays = _state()
    params, arrays = dict(params), dict(arrays)
    change(params, arrays)
    with pytest.raises(ArtifactError):
        ShrinkageLDAClassifier.from_state(params, arrays)


def test_missing_state_entries_and_bad_params_raise():
    params, arrays = _state()
    with pytest.raises(KeyError):  # load_model turns this into an ArtifactError
        ShrinkageLDAClassifier.from_state(params, {k: v for k, v in arrays.items() if k != "coef"})
    for bad in ({"shrinkage": 0.0}, {"shrinkage": 1.5}, {"covariance": "diagonal"}):
        with pytest.raises(ValueError):
            ShrinkageLDAClassifier.from_state({**params, **bad}, arrays)
    with pytest.raises(ValueError):
        ShrinkageLDAClassifier().fit(np.zeros((4, 3)), ["a"] * 4)


def test_sample_weights_count_rows_as_present_or_absent() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(90, 12)) + np.repeat(np.eye(3, 12) * 2.0, 30, axis=0)
    labels = [lab for lab in ("a", "b", "c") for _ in range(30)]
    plain = ShrinkageLDAClassifier().fit(x, labels)
    uniform = ShrinkageLDAClassifier().fit(x, labels, sample_weight=np.full(90, 3.7))
    np.testing.assert_allclose(uniform.predict_proba(x), plain.predict_proba(x), atol=1e-10)
    keep = np.arange(90) % 3 != 0
    dropped = ShrinkageLDAClassifier().fit(x[keep], [lab for lab, k in zip(labels, keep, strict=True) if k])
    zeroed = ShrinkageLDAClassifier().fit(x, labels, sample_weight=keep.astype(float))
    np.testing.assert_allclose(zeroed.predict_proba(x), dropped.predict_proba(x), atol=1e-10)
    # a heavier half pulls the class mean towards itself
    heavy = np.where(np.arange(90) % 2 == 0, 5.0, 1.0)
    assert not np.allclose(ShrinkageLDAClassifier().fit(x, labels, sample_weight=heavy).coef, plain.coef)
    with pytest.raises(ValueError, match="sample_weight"):
        ShrinkageLDAClassifier().fit(x, labels, sample_weight=-np.ones(90))
