"""The embedding-backend interface and the lookup from profile to a ready backend instance."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ser_core.contract.signals import speech_extent


class EmbeddingBackend(ABC):
    """Turns 16 kHz mono audio into frame features, and any span of frames into one vector."""

    backend_id: str
    model_id: str
    #: Frames per second of `frames()`.
    frame_rate: float
    #: Length of the vectors `pool()` returns.
    dim: int
    #: How many files feature extraction hands to `embed_many` at once.
    batch_size: int = 1

    def config(self) -> dict[str, Any]:
        """Settings that change the output; part of feature-cache keys and of model artifacts."""
        return {}

    @abstractmethod
    def frames(self, signal: np.ndarray) -> np.ndarray:
        """Frame-level features, shape (n_frames, n_frame_features)."""

    @abstractmethod
    def pool(self, frames: np.ndarray) -> np.ndarray:
        """One vector of shape (dim,) for a contiguous span of frames (possibly very short)."""

    def embed(self, signal: np.ndarray) -> np.ndarray:
        """The utterance vector of a signal: its frames pooled over its speech extent."""
        return self.embed_utterance(signal, self.frames(signal))

    def embed_many(self, signals: list[np.ndarray]) -> list[np.ndarray]:
        """Utterance vectors of several signals; backends that batch (e.g. on a GPU) override it."""
        return [self.embed(signal) for signal in signals]

    def embed_utterance(self, signal: np.ndarray, frames: np.ndarray) -> np.ndarray:
        """The utterance vector from already computed frames, without leading/trailing silence."""
        return self.embed_windows(frames, np.array([speech_extent(signal)]))[0]

    def embed_windows(self, frames: np.ndarray, spans: np.ndarray) -> np.ndarray:
        """Vectors for time spans (n, 2) in seconds, pooled from the frames of the whole signal."""
        bounds = np.round(np.asarray(spans) * self.frame_rate).astype(int)
        out = np.empty((len(bounds), self.dim), np.float32)
        for row, (start, end) in enumerate(bounds):
            out[row] = self.pool(frames[start : max(end, start + 1)])
        return out
