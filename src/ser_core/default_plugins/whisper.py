"""Built-in transcriber: faster-whisper's `BatchedInferencePipeline` with word timestamps.

faster-whisper is imported when the transcriber is first used, so the core works without it.
The pipeline packs the speech found by its VAD into 30 s windows and decodes several at once.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from ser_core.errors import TranscriberError
from ser_core.hookspecs import hookimpl
from ser_core.model_packs import missing_model_message, resolve_model
from ser_core.results import Word
from ser_core.transcriber import Transcriber, Transcript

log = logging.getLogger(__name__)
INSTALL = "pip install 'ser-core[transcribe]'"


def language_codes() -> set[str]:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return set(_LANGUAGE_CODES)


class FasterWhisperTranscriber(Transcriber):
    name = "faster-whisper"

    def __init__(self, settings: Any, model: str) -> None:
        try:
            from faster_whisper import BatchedInferencePipeline, WhisperModel
        except ImportError as exc:
            raise TranscriberError(
                f"transcriber faster-whisper is not installed ({exc}): {INSTALL}"
            ) from None
        from faster_whisper.utils import download_model

        resolved = resolve_model(model, settings.cache_dir)
        path = resolved.path
        if resolved.source == "hub":
            try:
                path = download_model(model)
            except Exception:  # offline, unknown name, hub error: all end the same way
                raise TranscriberError(missing_model_message(model)) from None
        self.model_id = f"{model} ({resolved.source}: {path})" if resolved.source != "hub" else model
        self.settings = settings
        threads = settings.whisper_threads or os.cpu_count() or 1
        try:
            self.model = WhisperModel(
                path,
                device=settings.whisper_device,
                compute_type=settings.whisper_compute_type,
                cpu_threads=threads,
            )
        except (RuntimeError, ValueError) as exc:
            raise TranscriberError(f"whisper model {model!r} ({path}) cannot be loaded: {exc}") from None
        self.pipeline = BatchedInferencePipeline(self.model)
        self.multilingual = bool(self.model.model.is_multilingual)

    def check_language(self, language: str) -> str | None:
        """The code to pass to faster-whisper (None: detect), or a one-line error."""
        if language == "auto":
            return None if self.multilingual else "en"
        if language not in language_codes():
            raise TranscriberError(f"unknown language code {language!r} (use e.g. en, de, it, or auto)")
        if not self.multilingual and language != "en":
            raise TranscriberError(
                f"whisper model {self.model_id!r} is English-only; --language {language} needs a "
                "multilingual model (e.g. --whisper-model base)"
            )
        return language

    def transcribe(self, signal: np.ndarray, language: str, speech: np.ndarray) -> Transcript:
        code = self.check_language(language)
        if len(speech) == 0:
            return Transcript(language=code or "unknown")
        # The pipeline runs its own silero pass (about 0.003 x real time) because it packs the
        # speech of many regions, silences removed, into each 30 s window: one encoder pass per
        # 30 s of speech. Handing it our regions as `clip_timestamps` would cost one padded 30 s
        # pass per region (4x slower on short utterances).
        segments, info = self.pipeline.transcribe(
            np.asarray(signal, dtype=np.float32),
            language=code,
            word_timestamps=True,
            vad_filter=True,
            beam_size=self.settings.whisper_beam_size,
            batch_size=self.settings.whisper_batch_size,
        )
        words = [
            Word(
                start=round(w.start, 3),
                end=round(w.end, 3),
                text=w.word.strip(),
                probability=round(w.probability, 4),
            )
            for segment in segments
            for w in segment.words or []
            if w.word.strip()
        ]
        return Transcript(language=info.language, words=words)


@hookimpl
def ser_register_transcribers(register):
    register("faster-whisper", FasterWhisperTranscriber, requires="faster-whisper")
