"""The library's error types: each carries a one-line message naming the file and the cause."""

from __future__ import annotations

import os


class SerError(Exception):
    """Base class for every error ser_core raises on purpose (the CLI prints it as one line)."""

    exit_code = 1


class AudioError(SerError):
    """An input file cannot be decoded into usable audio."""

    exit_code = 3

    def __init__(self, path: str | os.PathLike[str], cause: str) -> None:
        self.path = os.fspath(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # picklable across worker processes
        return type(self), (self.path, self.cause)


class ArtifactError(SerError):
    """A model artifact is missing, tampered with, or does not match what it is used with."""

    exit_code = 4


class ProfileError(SerError):
    """Unknown profile, or its backend is not installed."""

    exit_code = 5


class DatasetError(SerError):
    """A dataset path cannot be read as any supported corpus layout."""

    exit_code = 6


class OutputError(SerError):
    """An output path cannot be written."""

    exit_code = 7


class TranscriberError(SerError):
    """The transcriber is not installed, its model cannot be found, or a language is unknown."""

    exit_code = 8


class DiarizerError(SerError):
    """The diarizer is not installed or cannot load its model."""

    exit_code = 13


class ConsentError(SerError):
    """A restricted backend was asked for without the user's consent, or the consent store is unusable."""

    exit_code = 9


class EngineError(SerError):
    """A batch engine is not installed, or its cluster cannot be started or reached."""

    exit_code = 10


class AnalysisTimeout(AudioError):
    """The analysis of an input ran past its profile's time budget."""

    exit_code = 11

    def __init__(self, path: str | os.PathLike[str], seconds: float | None, cause: str = "") -> None:
        self.seconds = seconds
        super().__init__(path, cause or f"analysis timed out after {seconds:g} s")

    def __reduce__(self) -> tuple[type, tuple[str, float | None, str]]:  # type: ignore[override]
        return type(self), (self.path, self.seconds, self.cause)


class WorkerCrashed(AudioError):
    """The process analysing an input died (killed, out of memory, crashed): worth another try."""

    exit_code = 12
