"""What the two Hugging Face backends share: choosing and combining hidden layers, chunked
encoding at 50 Hz, and mean + std pooling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ser_backend_hf.settings import HFSettings, parse_layers, parse_weights
from ser_backend_hf.stitch import chunked
from ser_core.backend import EmbeddingBackend


class HiddenStateBackend(EmbeddingBackend):
    """Frames: the chosen hidden layers at 50 Hz, concatenated, or their weighted mean when
    weights are given; pooled as mean and standard deviation."""

    frame_rate = 50.0
    max_chunk_seconds = float("inf")
    hf: HFSettings

    def choose_layers(self, layers: str, weights: str, n_layers: int, width: int, variable: str) -> None:
        self.layers = parse_layers(layers)
        if max(self.layers) > n_layers:
            raise ValueError(f"{variable}={layers}: {self.model_id} has layers 0-{n_layers}")
        self.weights = parse_weights(weights, len(self.layers))
        self.width = width
        self.dim = 2 * width * (1 if self.weights is not None else len(self.layers))

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"layers": list(self.layers), "pooling": "mean+std"}
        if self.weights is not None:
            config["layer_weights"] = [round(float(w), 6) for w in self.weights]
        return config

    def combine(self, states: Sequence[Any]) -> np.ndarray:
        """(frames, features) from per-layer tensors of shape (1, frames, width)."""
        chosen = [states[i][0].float().cpu().numpy() for i in self.layers]
        if self.weights is None:
            return np.concatenate(chosen, axis=1)
        return np.tensordot(self.weights, np.stack(chosen), axes=1).astype(np.float32)

    def frames(self, signal: np.ndarray) -> np.ndarray:
        chunk = min(self.hf.hf_chunk_seconds, self.max_chunk_seconds)
        return chunked(signal, self.encode_chunk, self.frame_rate, chunk, self.hf.hf_chunk_overlap)

    def encode_chunk(self, signal: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def pool(self, frames: np.ndarray) -> np.ndarray:
        if len(frames) == 0:
            return np.zeros(self.dim, np.float32)
        return np.concatenate([frames.mean(axis=0), frames.std(axis=0)]).astype(np.float32)
