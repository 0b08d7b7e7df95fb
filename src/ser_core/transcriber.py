"""The transcriber interface and the process-wide, lazily loaded transcriber instances."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from ser_core import registries
from ser_core.errors import TranscriberError
from ser_core.results import Word
from ser_core.settings import Settings, get_settings


@dataclass
class Transcript:
    """Words with timestamps (seconds from the start of the file) and the language spoken."""

    language: str
    words: list[Word] = field(default_factory=list)


class Transcriber(ABC):
    """Speech to timed words. Implementations load their model in `__init__` (once per process)."""

    name: str
    model_id: str

    def check_language(self, language: str) -> str | None:
        """Raise `TranscriberError` for a language the model cannot transcribe."""
        return language

    @abstractmethod
    def transcribe(self, signal: np.ndarray, language: str, speech: np.ndarray) -> Transcript:
        """Transcribe 16 kHz mono `signal`; `language` is a code or "auto"; `speech` holds the
        (n, 2) speech regions in seconds, so the transcriber can skip its own VAD."""


_loaded: dict[tuple[str, str, str], Transcriber] = {}


def get_transcriber(model: str | None = None, settings: Settings | None = None) -> Transcriber:
    """The `transcriber` setting's transcriber for `model` (default: the `whisper_model` setting),
    loaded once per process and reused for every file analysed with the same settings."""
    settings = settings or get_settings()
    name = settings.transcriber
    model = model or settings.whisper_model
    key = (name, model, settings.model_dump_json())
    if key not in _loaded:
        found = registries.transcribers().get(name)
        if found is None:
            raise TranscriberError(
                f"transcriber {name!r} is not installed: pip install 'ser-core[transcribe]' "
                "(or run with --no-transcript)"
            )
        _loaded[key] = found.value(settings, model)
    return _loaded[key]


def clear_cache() -> None:
    _loaded.clear()


registries.on_reset(clear_cache)
