"""Per-source normalisation: feature vectors standardised by the statistics of where they come from.

Most of what separates one corpus (or microphone, channel, language) from another is a shift and
stretch of the whole feature distribution, not of the emotions within it. So a model has a second
head trained on features standardised per training corpus, and a batch of recordings from one
source is standardised by its own statistics (`source_of`; `ser analyze --adapt`) and classified by
it. A single recording has no such statistics and goes to the head trained on the vectors as they
are. Leave-one-corpus-out gains on docs/performance.md, "Adapting to the user's recordings".

The statistics of a batch mix its emotions: a batch that is mostly one emotion shifts every label
a little (measured there too), so adaptation is opt-in and the result says when it was used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ser_core.contract.classifier import Classifier
from ser_core.errors import ArtifactError

#: Fewer readable recordings than this give statistics too noisy to standardise by.
MIN_FILES = 10
#: Recordings of a batch the statistics are estimated from (a seeded draw); more add little.
MAX_FILES = 200
_FLOOR = 1e-6


@dataclass(frozen=True)
class SourceStats:
    """Per-dimension mean and scale of one source's utterance vectors, from `n_files` recordings."""

    mean: np.ndarray
    scale: np.ndarray
    n_files: int

    @classmethod
    def of(cls, vectors: np.ndarray) -> SourceStats:
        x = np.asarray(vectors, dtype=np.float64)
        return cls(x.mean(axis=0), np.maximum(x.std(axis=0), _FLOOR), len(x))

    def __repr__(self) -> str:  # distinct per content: runners are cached by their arguments' repr
        import hashlib

        digest = hashlib.sha256(self.mean.tobytes() + self.scale.tobytes()).hexdigest()[:12]
        return f"SourceStats(n_files={self.n_files}, dim={len(self.mean)}, sha256={digest})"

    def standardise(self, vectors: np.ndarray) -> np.ndarray:
        return (np.asarray(vectors, dtype=np.float64) - self.mean) / self.scale

    def check(self, dim: int, where: str) -> None:
        """Fail closed on statistics that do not fit a model's features."""
        if self.mean.shape != (dim,) or self.scale.shape != (dim,):
            raise ArtifactError(f"{where}: source statistics have shape {self.mean.shape}, the features {dim}")
        if not (np.isfinite(self.mean).all() and np.isfinite(self.scale).all() and (self.scale > 0).all()):
            raise ArtifactError(f"{where}: source statistics must be finite with positive scales")


@dataclass
class Normalised:
    """Two heads over the same labels: `classifier` takes a recording's vectors as they are (it has
    learned the training corpora's own levels and spectra, so it is the better choice for a single
    recording, above all one like them); `adapted` takes vectors standardised by the statistics of
    their source, each training corpus by its own (None: the model cannot adapt)."""

    classifier: Classifier
    adapted: Classifier | None = None

    @property
    def labels(self) -> list[str]:
        return self.classifier.labels

    def check(self, source: SourceStats | None) -> None:
        """Raise unless vectors standardised by `source` (if any) can be classified."""
        if source is not None and self.adapted is None:
            raise ArtifactError("trained without per-corpus normalisation, cannot adapt to a source")

    def predict_proba(self, vectors: np.ndarray, source: SourceStats | None = None) -> np.ndarray:
        self.check(source)
        if source is None:
            return self.classifier.predict_proba(vectors)
        return self.adapted.predict_proba(source.standardise(vectors))
