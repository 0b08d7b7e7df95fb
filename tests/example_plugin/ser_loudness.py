"""The plugin of docs/plugins.md: a profile `loudness` served by a tiny embedding backend.

Everything a backend plugin needs is here: a backend class (frames, then pooling over any span),
the backend's registration, and the profile users pick with `--profile loudness`. Its
pyproject.toml declares the entry point: `[project.entry-points.ser_core] loudness = "ser_loudness"`.
"""

from __future__ import annotations

import numpy as np

from ser_core.contract.backend import EmbeddingBackend
from ser_core.contract.hookspecs import hookimpl


class LoudnessBackend(EmbeddingBackend):
    """Per 10 ms frame: log energy and zero-crossing rate; pooled as their means and spreads."""

    backend_id = "loudness"
    model_id = "loudness-v1"  # change it whenever the features change: old models then fail closed
    frame_rate = 100.0  # frames per second
    dim = 4

    def __init__(self, settings=None):
        pass

    def frames(self, signal: np.ndarray) -> np.ndarray:
        n = max(1, len(signal) // 160)
        frames = np.resize(signal, n * 160).reshape(n, 160)
        energy = 10 * np.log10((frames**2).mean(axis=1) + 1e-10)
        crossings = (np.diff(np.sign(frames), axis=1) != 0).mean(axis=1)
        return np.stack([energy, crossings], axis=1)

    def pool(self, frames: np.ndarray) -> np.ndarray:
        if len(frames) == 0:
            return np.zeros(self.dim, np.float32)
        return np.concatenate([frames.mean(axis=0), frames.std(axis=0)]).astype(np.float32)


@hookimpl
def ser_register_backends(register):
    register(LoudnessBackend.backend_id, LoudnessBackend, model_id=LoudnessBackend.model_id)


@hookimpl
def ser_register_profiles(register):
    register("loudness", "loudness", description="loudness and zero crossings: a plugin example", timeout_seconds=60.0)
