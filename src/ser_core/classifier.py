"""Classifiers whose fitted state is plain arrays + JSON, so artifacts load without unpickling."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from ser_core.errors import ArtifactError
from ser_core.plugins import registry


class Classifier(ABC):
    """Fit on (n, dim) features and string labels; predict class probabilities in `labels` order."""

    kind: ClassVar[str]
    labels: list[str]

    @abstractmethod
    def fit(self, features: np.ndarray, labels: list[str]) -> Classifier: ...

    @abstractmethod
    def predict_proba(self, features: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able parameters and named arrays that `from_state` rebuilds the fitted model from."""

    @classmethod
    @abstractmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Classifier: ...


def _softmax(scores: np.ndarray) -> np.ndarray:
    scores = scores - scores.max(axis=1, keepdims=True)
    np.exp(scores, out=scores)
    return scores / scores.sum(axis=1, keepdims=True)


class LogisticClassifier(Classifier):
    """Standardised features + multinomial logistic regression with balanced class weights."""

    kind = "logistic"

    def __init__(self, c: float = 0.01, max_iter: int = 5000) -> None:
        self.c = c
        self.max_iter = max_iter
        self.labels = []

    def fit(self, features: np.ndarray, labels: list[str]) -> LogisticClassifier:
        from sklearn.linear_model import LogisticRegression

        x = np.asarray(features, dtype=np.float64)
        self.mean = x.mean(axis=0)
        self.scale = x.std(axis=0)
        self.scale[self.scale < 1e-12] = 1.0
        model = LogisticRegression(C=self.c, max_iter=self.max_iter, class_weight="balanced")
        model.fit((x - self.mean) / self.scale, np.asarray(labels))
        self.labels = [str(label) for label in model.classes_]
        coef, intercept = model.coef_, model.intercept_
        if len(self.labels) == 2:  # sklearn keeps one row for two classes; make it symmetric
            coef, intercept = np.vstack([-coef / 2, coef / 2]), np.r_[-intercept / 2, intercept / 2]
        self.coef, self.intercept = coef, intercept
        return self

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        x = (np.atleast_2d(np.asarray(features, dtype=np.float64)) - self.mean) / self.scale
        return _softmax(x @ self.coef.T + self.intercept)

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        params = {"c": self.c, "max_iter": self.max_iter, "labels": self.labels}
        arrays = {"mean": self.mean, "scale": self.scale, "coef": self.coef, "intercept": self.intercept}
        return params, arrays

    @classmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> LogisticClassifier:
        model = cls(c=float(params["c"]), max_iter=int(params["max_iter"]))
        model.labels = [str(label) for label in params["labels"]]
        model.mean, model.scale = arrays["mean"], arrays["scale"]
        model.coef, model.intercept = arrays["coef"], arrays["intercept"]
        n_labels, dim = model.coef.shape
        if (
            n_labels != len(model.labels)
            or model.mean.shape != (dim,)
            or model.intercept.shape != (n_labels,)
        ):
            raise ArtifactError("classifier arrays do not match their labels and feature dimension")
        return model


def classifier_kinds() -> dict[str, type[Classifier]]:
    return {key: reg.value for key, reg in registry("ser_register_classifiers").items()}


def make_classifier(kind: str, **params: Any) -> Classifier:
    kinds = classifier_kinds()
    if kind not in kinds:
        raise ArtifactError(f"unknown classifier kind {kind!r}; installed: {', '.join(sorted(kinds))}")
    return kinds[kind](**params)
