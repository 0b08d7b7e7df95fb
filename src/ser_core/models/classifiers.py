"""Classifiers whose fitted state is plain arrays + JSON, so artifacts load without unpickling."""

from __future__ import annotations

from typing import Any

import numpy as np

from ser_core.contract.classifier import Classifier
from ser_core.errors import ArtifactError


def _softmax(scores: np.ndarray) -> np.ndarray:
    scores = scores - scores.max(axis=1, keepdims=True)
    np.exp(scores, out=scores)
    return scores / scores.sum(axis=1, keepdims=True)


class LinearClassifier(Classifier):
    """Standardised features and a linear softmax: `softmax(z @ coef.T + intercept)`.

    Subclasses fit `coef` and `intercept` on the standardised features `z` (`_standardise`);
    prediction, the stored arrays and their validation are shared.
    """

    labels: list[str]

    def _standardise(self, features: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        x = np.asarray(features, dtype=np.float64)
        self.mean = np.average(x, axis=0, weights=weights)
        self.scale = np.sqrt(np.average((x - self.mean) ** 2, axis=0, weights=weights))
        self.scale[self.scale < 1e-12] = 1.0
        return (x - self.mean) / self.scale

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        x = (np.atleast_2d(np.asarray(features, dtype=np.float64)) - self.mean) / self.scale
        return _softmax(x @ self.coef.T + self.intercept)

    def _params(self) -> dict[str, Any]:
        return {}

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        arrays = {"mean": self.mean, "scale": self.scale, "coef": self.coef, "intercept": self.intercept}
        return {**self._params(), "labels": self.labels}, arrays

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> LinearClassifier:
        model = cls(**{key: value for key, value in params.items() if key != "labels"})
        model.labels = [str(label) for label in params["labels"]]
        model.mean, model.scale = arrays["mean"], arrays["scale"]
        model.coef, model.intercept = arrays["coef"], arrays["intercept"]
        stored = (model.mean, model.scale, model.coef, model.intercept)
        if not all(a.dtype.kind == "f" and np.isfinite(a).all() for a in stored):
            raise ArtifactError("classifier arrays must hold finite floating-point numbers")
        if model.coef.ndim != 2:
            raise ArtifactError("classifier coefficients must be a matrix")
        if not (model.scale > 0).all():
            raise ArtifactError("classifier feature scales must be positive")
        n_labels, dim = model.coef.shape
        if (
            n_labels != len(model.labels)
            or model.mean.shape != (dim,)
            or model.scale.shape != (dim,)
            or model.intercept.shape != (n_labels,)
        ):
            raise ArtifactError("classifier arrays do not match their labels and feature dimension")
        return model


class LogisticClassifier(LinearClassifier):
    """Standardised features + multinomial logistic regression with balanced class weights."""

    kind = "logistic"

    def __init__(self, c: float = 0.01, max_iter: int = 5000) -> None:
        self.c = float(c)
        self.max_iter = int(max_iter)
        self.labels = []

    def _params(self) -> dict[str, Any]:
        return {"c": self.c, "max_iter": self.max_iter}

    def fit(
        self, features: np.ndarray, labels: list[str], sample_weight: np.ndarray | None = None
    ) -> LogisticClassifier:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=self.c, max_iter=self.max_iter, class_weight="balanced")
        model.fit(self._standardise(features), np.asarray(labels), sample_weight=sample_weight)
        self.labels = [str(label) for label in model.classes_]
        coef, intercept = model.coef_, model.intercept_
        if len(self.labels) == 2:  # sklearn keeps one row for two classes; make it symmetric
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.r_[-intercept / 2, intercept / 2]
        self.coef, self.intercept = coef, intercept
        return self


class ShrinkageLDAClassifier(LinearClassifier):
    """Standardised features + linear discriminant analysis with a shrunk within-class covariance.

    Gaussian classes sharing one covariance, estimated from the training residuals (class means
    removed) and shrunk towards a scaled identity: ``(1 - shrinkage) * S + shrinkage * trace(S) / dim * I``.
    `covariance` "pooled" pools the residual scatter of all samples; "balanced" averages the per-class
    covariances. Class priors are uniform (the analogue of balanced class weights), so the model is
    ``softmax(x_std @ coef.T + intercept)`` like `LogisticClassifier` and stores the same arrays.
    Fitting is closed-form; with fewer samples than dimensions it inverts through the sample space
    (Woodbury identity), so its cost is linear in the dimension.
    """

    kind = "shrinkage_lda"
    covariances = ("pooled", "balanced")

    def __init__(self, shrinkage: float = 0.6, covariance: str = "pooled") -> None:
        if not 0.0 < shrinkage <= 1.0:
            raise ValueError(f"shrinkage must be in (0, 1], got {shrinkage!r}")
        if covariance not in self.covariances:
            raise ValueError(f"covariance must be one of {self.covariances}, got {covariance!r}")
        self.shrinkage = float(shrinkage)
        self.covariance = covariance
        self.labels = []

    def fit(
        self, features: np.ndarray, labels: list[str], sample_weight: np.ndarray | None = None
    ) -> ShrinkageLDAClassifier:
        """`sample_weight` weighs each row in the class means and the covariance (e.g. so that
        corpora of different sizes count alike); None: all rows alike."""
        x = np.asarray(features, dtype=np.float64)
        y = np.asarray([str(label) for label in labels])
        if x.ndim != 2 or len(x) != len(y):
            raise ValueError("features must be (n, dim) with one label per row")
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if w.shape != (len(y),) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError("sample_weight must hold one finite, non-negative weight per row")
        kept = int((w > 0).sum())
        w = w * kept / w.sum()  # rows of weight 0 count as absent; the others average 1
        self.labels = sorted(set(y.tolist()))
        if len(self.labels) < 2:
            raise ValueError("shrinkage LDA needs at least two classes")
        z = self._standardise(x, w)
        index = np.searchsorted(self.labels, y)
        counts = np.bincount(index, weights=w, minlength=len(self.labels))
        means = np.stack([np.average(z[index == k], axis=0, weights=w[index == k]) for k in range(len(self.labels))])
        residuals = z - means[index]
        if self.covariance == "pooled":
            weights = w / max(kept - len(self.labels), 1)
        else:
            weights = w / (np.maximum(counts - 1, 1) * len(self.labels))[index]
        rows = residuals * np.sqrt(weights)[:, None]  # covariance S = rows.T @ rows
        dim = z.shape[1]
        target = float(np.sum(rows * rows)) / dim  # trace(S) / dim
        if target <= 1e-12:
            target = 1.0
        ridge = self.shrinkage * target
        u = np.sqrt(1.0 - self.shrinkage) * rows  # shrunk covariance = ridge * I + u.T @ u
        rhs = means.T
        if len(u) < dim:  # Woodbury: solve in the n-dimensional sample space
            inner = ridge * np.eye(len(u)) + u @ u.T
            solved = (rhs - u.T @ np.linalg.solve(inner, u @ rhs)) / ridge
        else:
            solved = np.linalg.solve(ridge * np.eye(dim) + u.T @ u, rhs)
        self.coef = solved.T
        self.intercept = -0.5 * np.sum(self.coef * means, axis=1)
        return self

    def _params(self) -> dict[str, Any]:
        return {"shrinkage": self.shrinkage, "covariance": self.covariance}


#: The kind `train` and `evaluate` use unless told otherwise: on the shared corpora it beats
#: logistic regression on mean speaker-independent UAR (+0.01) and cross-corpus UAR (+0.04).
DEFAULT_KIND = "shrinkage_lda"
