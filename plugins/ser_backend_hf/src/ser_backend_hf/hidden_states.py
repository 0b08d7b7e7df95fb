"""What the two Hugging Face backends share: choosing and combining hidden layers, chunked
encoding at 50 Hz, and mean + std pooling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ser_backend_hf.settings import HFSettings, parse_layers, parse_weights
from ser_core.contract.backend import EmbeddingBackend
from ser_core.contract.encoders import chunked


def _array(state: Any) -> np.ndarray:
    """A float32 array of a torch tensor (on any device) or of an ONNX Runtime output."""
    if isinstance(state, np.ndarray):
        return state.astype(np.float32, copy=False)
    return state.float().cpu().numpy()


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
        self.batch_size = max(1, self.hf.hf_batch_size)

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"layers": list(self.layers), "pooling": "mean+std"}
        if self.weights is not None:
            config["layer_weights"] = [round(float(w), 6) for w in self.weights]
        return config

    def combine(self, states: Sequence[Any], item: int = 0) -> np.ndarray:
        """(frames, features) of batch item `item` from per-layer tensors or arrays (batch, frames,
        width), indexed by layer."""
        chosen = [_array(states[i][item]) for i in self.layers]
        if self.weights is None:
            return np.concatenate(chosen, axis=1)
        return np.tensordot(self.weights, np.stack(chosen), axes=1).astype(np.float32)

    def frames(self, signal: np.ndarray) -> np.ndarray:
        return chunked(
            signal, self.encode_chunk, self.frame_rate, self.chunk_seconds, self.hf.hf_chunk_overlap
        )

    @property
    def chunk_seconds(self) -> float:
        """The longest audio encoded in one pass."""
        return min(self.hf.hf_chunk_seconds, self.max_chunk_seconds)

    def encode_chunk(self, signal: np.ndarray) -> np.ndarray:
        return self.encode_batch(signal[None])[0]

    def encode_batch(self, signals: np.ndarray) -> list[np.ndarray]:
        """Frames of each row of `signals` (equal lengths, at most one chunk long)."""
        raise NotImplementedError

    def embed_many(self, signals: list[np.ndarray]) -> list[np.ndarray]:
        """Signals of exactly the same length (common in corpora) run through the encoder together,
        up to `batch_size` at a time: no padding, so the numbers are those of one-by-one runs."""
        out: list[np.ndarray | None] = [None] * len(signals)
        groups: dict[int, list[int]] = {}
        for i, signal in enumerate(signals):
            if len(signal) <= self.chunk_seconds * 16000:
                groups.setdefault(len(signal), []).append(i)
            else:
                out[i] = self.embed(signal)
        for members in groups.values():
            for k in range(0, len(members), self.batch_size):
                batch = members[k : k + self.batch_size]
                frames = self.encode_batch(np.stack([signals[i] for i in batch]))
                for i, item in zip(batch, frames, strict=True):
                    out[i] = self.embed_utterance(signals[i], item)
        return out  # type: ignore[return-value]

    def pool(self, frames: np.ndarray) -> np.ndarray:
        if len(frames) == 0:
            return np.zeros(self.dim, np.float32)
        return np.concatenate([frames.mean(axis=0), frames.std(axis=0)]).astype(np.float32)
