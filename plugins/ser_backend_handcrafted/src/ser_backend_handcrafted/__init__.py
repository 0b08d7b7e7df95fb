"""The `handcrafted` embedding backend (fast profile) and its shipped default model."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ser_backend_handcrafted.features import HOP, SAMPLE_RATE, HandcraftedFeatures
from ser_core.backend import EmbeddingBackend
from ser_core.hookspecs import hookimpl

__version__ = "0.1.0"
#: Bumped whenever the features change, so old caches and models are never mixed with new ones.
MODEL_ID = "handcrafted-v2"
DEFAULT_MODEL = "fast-default.npz"


class HandcraftedBackend(EmbeddingBackend):
    """Spectral, cepstral, prosodic and voice-quality descriptors with utterance functionals."""

    backend_id = "handcrafted"
    model_id = MODEL_ID
    frame_rate = SAMPLE_RATE / HOP

    def __init__(self, settings: Any = None) -> None:
        self.features = HandcraftedFeatures()
        self.dim = self.features.dim

    def frames(self, signal: np.ndarray) -> np.ndarray:
        return self.features.frames(signal)

    def pool(self, frames: np.ndarray) -> np.ndarray:
        return self.features.pool(frames)


def default_model_path() -> Path:
    return Path(str(resources.files(__name__).joinpath("models", DEFAULT_MODEL)))


@hookimpl
def ser_register_backends(register):
    register(HandcraftedBackend.backend_id, HandcraftedBackend, model_id=MODEL_ID)


@hookimpl
def ser_default_models(register):
    path = default_model_path()
    if path.is_file():
        register("fast", path)
