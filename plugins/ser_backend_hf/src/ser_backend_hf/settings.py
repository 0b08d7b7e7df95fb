"""Settings of the Hugging Face backends, from `SER_*` environment variables like the core's."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class HFSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SER_", extra="ignore")

    #: medium profile: a transformers wav2vec2-family model (hub id or local directory).
    medium_model_id: str = "facebook/wav2vec2-xls-r-300m"
    #: Hidden-state layers (0 = the input to the first transformer block) concatenated per frame.
    medium_layers: str = "6-12"
    #: Empty: concatenate the layers; else one weight per layer ("1,1,2") for their weighted mean.
    medium_layer_weights: str = ""
    #: accurate profile: "pack:base", "pack:tiny.en", a transformers Whisper hub id or directory.
    accurate_model_id: str = "pack:base"
    accurate_layers: str = "2-6"
    accurate_layer_weights: str = ""
    #: "auto", "onnx-int8", "onnx" (ONNX Runtime on CPU, model packs only) or "torch".
    accurate_runtime: str = "auto"
    #: "cpu", "cuda", "mps" or "auto" (the first available).
    hf_device: str = "auto"
    #: torch CPU threads; 0: one per core.
    hf_threads: int = 0
    #: Audio longer than this is encoded in chunks that overlap by `hf_chunk_overlap` seconds.
    hf_chunk_seconds: float = 30.0
    hf_chunk_overlap: float = 2.0
    #: Clips of equal length encoded together in feature extraction.
    hf_batch_size: int = 8


@lru_cache(maxsize=1)
def get_hf_settings() -> HFSettings:
    return HFSettings()


def parse_layers(spec: str) -> tuple[int, ...]:
    """ "2-6" -> (2, 3, 4, 5, 6); "4" -> (4,); "1,3,5" -> (1, 3, 5)."""
    layers: list[int] = []
    for part in spec.replace(" ", "").split(","):
        if "-" in part:
            first, last = (int(x) for x in part.split("-"))
            layers += range(first, last + 1)
        elif part:
            layers.append(int(part))
    if not layers:
        raise ValueError(f"no layers in {spec!r}")
    return tuple(layers)


def parse_weights(spec: str, n: int):
    """None for "" (concatenate layers), else `n` non-negative weights normalised to sum 1."""
    import numpy as np

    if not spec.strip():
        return None
    weights = np.array([float(x) for x in spec.split(",")], dtype=np.float32)
    if len(weights) != n or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"layer weights {spec!r}: need {n} non-negative weights, not all zero")
    return weights / weights.sum()
