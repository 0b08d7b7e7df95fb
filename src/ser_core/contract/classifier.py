"""The classifier interface: what a `ser_register_classifiers` kind implements. Its fitted state is
plain arrays and JSON, so artifacts load without unpickling."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np


class Classifier(ABC):
    """Fit on (n, dim) features and string labels (optionally weighted per sample); predict class
    probabilities in `labels` order."""

    kind: ClassVar[str]
    labels: list[str]

    @abstractmethod
    def fit(
        self, features: np.ndarray, labels: list[str], sample_weight: np.ndarray | None = None
    ) -> Classifier: ...

    @abstractmethod
    def predict_proba(self, features: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able parameters and named arrays that `from_state` rebuilds the fitted model from."""

    @classmethod
    @abstractmethod
    def from_state(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Classifier: ...
