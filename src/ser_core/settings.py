"""Settings from `SER_*` environment variables, with platform directories as defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import platformdirs
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_APP = "ser_core"


class Settings(BaseSettings):
    """Everything a user can set; `SER_MODELS_DIR=/x ser analyze ...` overrides `models_dir`."""

    model_config = SettingsConfigDict(env_prefix="SER_", extra="ignore")

    models_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir(_APP)) / "models")
    cache_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_cache_dir(_APP)))
    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir(_APP)))

    default_profile: str = "fast"
    #: Longest input accepted, in seconds (guards against forged headers and runaway memory).
    max_audio_seconds: float = 4 * 3600.0
    #: Peak amplitude below which a file counts as silent.
    silence_peak: float = 1e-4

    # Emotion over time: windows pooled from frame features, then smoothed into segments.
    window_seconds: float = 2.0
    hop_seconds: float = 1.0
    smoothing_windows: int = 3
    hysteresis: float = 0.1
    min_segment_seconds: float = 2.0

    jobs: int = 1
    feature_cache: bool = True


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests call `get_settings.cache_clear()` after changing env)."""
    return Settings()
