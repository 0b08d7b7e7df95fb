"""The `handcrafted` embedding backend (fast profile) and its shipped default model."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ser_backend_handcrafted.features import HOP, SAMPLE_RATE, HandcraftedFeatures
from ser_core.contract.backend import EmbeddingBackend
from ser_core.contract.hookspecs import hookimpl
from ser_core.pipeline.audio import at_level

__version__ = "0.1.0"
#: Bumped whenever the features change, so old caches and models are never mixed with new ones.
MODEL_ID = "handcrafted-v4"
#: Speech level (dBFS, `ser_core.pipeline.audio.speech_power`) every span is set to before its
#: functionals: level, energy and loudness descriptors depend on the microphone's gain, not only on
#: the voice (leave-one-corpus-out +0.015 mean UAR, Emo-DB +0.08; docs/performance.md). v3 set it
#: once per analysed piece, so a 2 s window of a long recording was not levelled like a training
#: clip: v4 levels each span by its own speech (timeline frame accuracy 0.525 -> see performance.md).
LEVEL_DBFS = -25.0
#: At most this much gain (dB), so a near-silent file's noise is not blown up to speech level.
MAX_GAIN_DB = 50.0
DEFAULT_MODEL = "fast-default.npz"


class HandcraftedBackend(EmbeddingBackend):
    """Spectral, cepstral, prosodic and voice-quality descriptors with utterance functionals."""

    backend_id = "handcrafted"
    model_id = MODEL_ID
    frame_rate = SAMPLE_RATE / HOP

    def __init__(self, settings: Any = None) -> None:
        self.features = HandcraftedFeatures()
        self.dim = self.features.dim

    def config(self) -> dict[str, Any]:
        return {"level_dbfs": LEVEL_DBFS, "max_gain_db": MAX_GAIN_DB}

    def frames(self, signal: np.ndarray) -> np.ndarray:
        """The frame descriptors of the recording with its speech level set to `LEVEL_DBFS` (so the
        quiet-frame rules inside the descriptors see speech at a known level)."""
        return self.features.frames(at_level(signal, LEVEL_DBFS, MAX_GAIN_DB))

    def pool(self, frames: np.ndarray) -> np.ndarray:
        """Functionals of a span, levelled by the span's own speech first."""
        return self.features.pool(self.features.levelled(frames, LEVEL_DBFS, MAX_GAIN_DB))


def default_model_path() -> Path:
    return Path(str(resources.files(__name__).joinpath("models", DEFAULT_MODEL)))


@hookimpl
def ser_register_backends(register):
    register(HandcraftedBackend.backend_id, HandcraftedBackend, model_id=MODEL_ID)


@hookimpl
def ser_register_profiles(register):
    register(
        "fast",
        HandcraftedBackend.backend_id,
        distribution="ser-backend-handcrafted",
        description="handcrafted acoustic features + linear model",
        narrowband_alternative="accurate",  # holds up better on telephone audio (docs/performance.md)
    )


@hookimpl
def ser_default_models(register):
    path = default_model_path()
    if path.is_file():
        register("fast", path)
