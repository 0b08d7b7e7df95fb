"""The transcriber interface and the process-wide, lazily loaded transcriber instances."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ser_core.contract.results import Word


@dataclass
class Transcript:
    """Words with timestamps (seconds from the start of the file) and the language spoken."""

    language: str
    words: list[Word] = field(default_factory=list)


@dataclass(frozen=True)
class Request:
    """One recording (or piece of one) to transcribe: the arguments of `Transcriber.transcribe`."""

    signal: np.ndarray
    language: str
    speech: np.ndarray


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

    def transcribe_many(self, requests: Sequence[Request]) -> list[Transcript]:
        """A transcript per request, each in its own clock. Batch runs hand several short
        recordings over at once, so a transcriber can decode them together; this default
        transcribes them one by one."""
        return [self.transcribe(r.signal, r.language, r.speech) for r in requests]
