"""The transcriber interface and the process-wide, lazily loaded transcriber instances."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from ser_core.contract.results import Word


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
