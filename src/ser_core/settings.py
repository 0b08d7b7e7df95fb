"""Settings from `SER_*` environment variables, with platform directories as defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, model_validator
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
    #: Recordings are decoded as a stream and analysed in pieces of at most this many seconds,
    #: cut at quiet moments, so memory does not grow with their length.
    piece_seconds: float = Field(default=60.0, ge=10.0)
    #: Peak amplitude below which a file counts as silent (no speech).
    silence_peak: float = 1e-4
    #: Less speech than this (seconds) still gets a label, flagged `too_short`: the models'
    #: accuracy falls towards chance on shorter speech (docs/performance.md, short speech).
    min_speech_seconds: float = 1.5
    #: A label whose calibrated confidence is below this is marked `uncertain`: more likely wrong
    #: than right (docs/performance.md, calibration).
    uncertain_below: float = 0.5

    # Emotion over time: windows pooled from frame features, then smoothed into segments.
    window_seconds: float = 2.0
    hop_seconds: float = 1.0
    smoothing_windows: int = 3
    hysteresis: float = 0.1
    min_segment_seconds: float = 2.0
    #: Seconds of audio around each window that its features also see (the surrounding pauses,
    #: as in the whole clips the models are trained on); segments keep the window's own times.
    window_context: float = 0.25

    # Speech regions: "auto" is silero (bundled with faster-whisper) when installed, else "energy";
    # "off" treats the whole file as speech. Pauses shorter than `vad_merge_gap` join regions.
    vad: Literal["auto", "silero", "energy", "off"] = "auto"
    vad_merge_gap: float = 0.3

    # Transcript (faster-whisper).
    transcript: bool = True
    #: Which registered transcriber (`ser plugins` lists them).
    transcriber: str = "faster-whisper"
    whisper_model: str = "base"
    #: A language code ("en", "de", ...) or "auto" to detect it (multilingual models only).
    language: str = "auto"
    whisper_device: str = "cpu"
    whisper_compute_type: str = "int8"
    whisper_beam_size: int = 5
    #: Beam search goes on until `patience` x beam size hypotheses have ended: a window of many
    #: short utterances otherwise ends at its first few sentences and drops the rest.
    whisper_patience: float = 3.0
    whisper_batch_size: int = 8
    #: A batch run (`ser analyze ... --output-dir`, `analyze_many`, Ray) keeps this many inputs
    #: open at once and transcribes them together: several short recordings share one batched
    #: Whisper pass (`ser_core.pipeline.grouped`). 1: one input at a time.
    group_files: int = Field(default=16, ge=1)
    #: CPU threads for the transcriber; 0: one per core.
    whisper_threads: int = 0
    #: Timeline rows also break at pauses longer than this, and after this many seconds.
    timeline_gap_seconds: float = 1.0
    timeline_max_seconds: float = 10.0
    #: Where `--save-transcript` writes; default `<data_dir>/transcripts`.
    transcripts_dir: Path | None = None

    # Speakers (who speaks when): "off", "auto" (estimate how many), or a number of speakers.
    speakers: str = Field(default="off", pattern=r"^(off|auto|[1-9][0-9]?)$")
    #: Which registered diarizer (`ser plugins` lists them).
    diarizer: str = "ge2e"

    # Restricted backends (their weights carry their own licence): see ser_core.plugins.consent.
    #: Where consents are stored; default `<data_dir>/restricted_backends_consent.json`.
    restricted_backends_consent_file: Path | None = None
    #: Comma-separated backend ids allowed for this run.
    allowed_restricted_backends: str = ""
    #: Allow every restricted backend for this run.
    enable_restricted_backends: bool = False

    # `ser serve`: the HTTP API.
    #: Largest upload accepted (MB), enforced while the upload streams in.
    serve_max_upload_mb: float = Field(default=500.0, gt=0)
    #: Finished analyses (results and their metadata) are kept this long (hours).
    serve_retention_hours: float = Field(default=168.0, gt=0)
    #: Uploads that may wait for a worker; one more is answered 429 with Retry-After.
    serve_queue: int = Field(default=16, ge=0)
    #: Where analyses are kept; default `<data_dir>/server`.
    serve_dir: Path | None = None

    #: Turn off every profile's timeout (`SER_<PROFILE>_TIMEOUT_SECONDS`, see ser_core.runs.budget).
    disable_timeouts: bool = False

    # The quality gate of `ser evaluate --profile A --profile B --require-pass`: every later
    # profile against the first, and the timeline of each on long recordings.
    gate_min_uar_delta: float = 0.0
    gate_min_macro_f1_delta: float = 0.0
    gate_max_segments_per_minute: float = 12.0
    gate_min_median_segment_seconds: float = 2.0

    jobs: int = 1
    feature_cache: bool = True

    @model_validator(mode="after")
    def _derived_dirs(self) -> Settings:
        if self.serve_dir is None:
            self.serve_dir = self.data_dir / "server"
        if self.transcripts_dir is None:
            self.transcripts_dir = self.data_dir / "transcripts"
        if self.restricted_backends_consent_file is None:
            self.restricted_backends_consent_file = self.data_dir / "restricted_backends_consent.json"
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests call `get_settings.cache_clear()` after changing env)."""
    return Settings()
