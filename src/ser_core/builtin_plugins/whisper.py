"""Built-in transcriber: faster-whisper's `BatchedInferencePipeline` with word timestamps.

faster-whisper is imported when the transcriber is first used, so the core works without it.
The pipeline packs the speech found by its VAD into 30 s windows and decodes several at once;
what packing breaks is repaired against our VAD's speech regions (see `transcribe`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import numpy as np

from ser_core.contract.hookspecs import hookimpl
from ser_core.contract.results import Word
from ser_core.contract.transcriber import Transcriber, Transcript
from ser_core.errors import TranscriberError
from ser_core.pipeline.alignment import SENTENCE_END
from ser_core.pipeline.audio import SAMPLE_RATE
from ser_core.pipeline.model_packs import missing_model_message, resolve_model

log = logging.getLogger(__name__)
INSTALL = "pip install 'ser-core[transcribe]'"
#: Seconds of silence in a word that mark it as timed across a splice (`resplice`), and the
#: shortest word it is then given.
STRETCH = 0.3
MIN_WORD = 0.05
#: A longer "word" shows that Whisper skipped some of its region (`unheard`).
LONG_WORD = 1.0
#: A word ending with one of these ends a phrase: one stretched over a pause runs on, it is not
#: the first word of the next region.
PHRASE_END = (*SENTENCE_END, ",", ";", ":")
#: Regions decoded again share a clip when they fit in `GROUP` seconds; seconds added around a
#: clip; the longest clip Whisper takes.
GROUP = 10.0
CLIP_PAD = 0.1
MAX_CLIP = 30.0
#: Whisper pads every window to 30 s; a window holding less speech is encoded at this length (in
#: 10 ms frames) or its speech's, in whole seconds: on 128 RAVDESS clips 15 s gave the words of
#: 30 s at 1.4x the speed, while 10 s let the decoder repeat the sentence (docs/performance.md).
MIN_WINDOW_FRAMES = 1500
FULL_WINDOW_FRAMES = 3000
#: A decoded window whose text gzip shrinks more than this (Whisper's own fallback threshold) and
#: that holds more words a second than anyone speaks is a loop: after a shortened window, the call
#: is decoded again with full windows. RAVDESS loops ran at 9-21 words/s; a recording of its
#: sentences, repetitive but real, at 1.3-1.7.
LOOP_COMPRESSION = 2.4
LOOP_WORDS_PER_SECOND = 6.0
_windows = threading.local()  # this thread's shortest window and whether one was shortened


def trimmed(features: np.ndarray) -> np.ndarray:
    """Log-mel windows (batch, mels, 3000) without the zero padding past `MIN_WINDOW_FRAMES` or
    past the longest window's last non-zero frame rounded up to a second (the word aligner asks
    for whole seconds). faster-whisper pads the log-mel with exact zeros, which no frame of audio
    (digital silence included) gives; without such zeros nothing is trimmed."""
    features = np.asarray(features)
    batch = features if features.ndim == 3 else features[None]
    used = np.flatnonzero(np.any(batch != 0, axis=(0, 1)))
    last = int(used[-1]) + 1 if len(used) else 0
    keep = max(getattr(_windows, "frames", MIN_WINDOW_FRAMES), -(-last // 100) * 100)
    if keep >= features.shape[-1]:
        return features
    _windows.shortened = True
    return np.ascontiguousarray(features[..., :keep])


@contextlib.contextmanager
def full_windows() -> Iterator[None]:
    """Whisper's own 30 s windows for the decoding in this block, in this thread."""
    _windows.frames = FULL_WINDOW_FRAMES
    try:
        yield
    finally:
        del _windows.frames


def _short_window_model() -> type:
    """faster-whisper's `WhisperModel` encoding `trimmed` windows (CTranslate2 takes any length)."""
    from faster_whisper import WhisperModel

    class ShortWindowModel(WhisperModel):
        def encode(self, features: np.ndarray) -> Any:
            return super().encode(trimmed(features))

    return ShortWindowModel


def language_codes() -> set[str]:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return set(_LANGUAGE_CODES)


class FasterWhisperTranscriber(Transcriber):
    name = "faster-whisper"

    def __init__(self, settings: Any, model: str) -> None:
        try:
            from faster_whisper import BatchedInferencePipeline
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
        # The model and where it came from, not where it sits on this machine: results travel
        # (a server's answers, shared HTML pages).
        self.model_id = f"{model} ({resolved.source})" if resolved.source != "hub" else model
        self.settings = settings
        threads = settings.whisper_threads or os.cpu_count() or 1
        try:
            self.model = _short_window_model()(
                path,
                device=settings.whisper_device,
                compute_type=settings.whisper_compute_type,
                cpu_threads=threads,
            )
        except (RuntimeError, ValueError) as exc:
            raise TranscriberError(f"whisper model {model!r} ({path}) cannot be loaded: {exc}") from None
        self.pipeline = BatchedInferencePipeline(self.model)
        self.multilingual = bool(self.model.model.is_multilingual)
        #: Speech regions seen and decoded a second time, and calls decoded again with full windows,
        #: over this instance's life (benchmarks).
        self.regions = self.regions_redone = self.looped = 0

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
        audio = np.asarray(signal, dtype=np.float32)
        options = {
            "word_timestamps": True,
            "beam_size": self.settings.whisper_beam_size,
            "patience": self.settings.whisper_patience,
            "batch_size": self.settings.whisper_batch_size,
        }
        speech = np.asarray(speech, dtype=float).reshape(-1, 2)
        _windows.shortened = False
        segments, info = self.pipeline.transcribe(audio, language=code, vad_filter=True, **options)
        segments = list(segments)  # decoded here, lazily
        if _windows.shortened and any(map(_loops, segments)):
            with full_windows():  # a shortened window let the decoder loop: as Whisper pads it
                segments, info = self.pipeline.transcribe(audio, language=code, vad_filter=True, **options)
                segments = list(segments)
            self.looped += 1
        words = resplice(_words(segments), speech)
        silent = unheard(words, speech)
        if silent:
            # A window of many short utterances decoded without timestamps may end after its first
            # few sentences and drop the rest: the regions left without a word are decoded again,
            # on their own or a few neighbours together (one padded 30 s pass each, so only those).
            clips = _clips(speech[silent], len(audio) / SAMPLE_RATE)
            again, _ = self.pipeline.transcribe(
                audio, language=info.language, clip_timestamps=clips, **options
            )
            words = replaced(words, _words(again, checked=True), speech, silent)
            log.debug("transcribed %d of %d speech regions again", len(silent), len(speech))
        self.regions += len(speech)
        self.regions_redone += len(silent)
        # Zero-length and repeated words are dropped by the core (`alignment.clamp_to_speech`).
        return Transcript(language=info.language, words=words)


def _loops(segment: Any) -> bool:
    """A decoded window that repeats itself faster than speech (see `LOOP_COMPRESSION`)."""
    rate = len(segment.words or []) / max(segment.end - segment.start, 0.5)
    return segment.compression_ratio > LOOP_COMPRESSION and rate > LOOP_WORDS_PER_SECOND


def _words(segments: Any, checked: bool = False) -> list[Word]:
    """Words of faster-whisper segments; `checked`: without segments Whisper itself would call
    silence (no-speech probability over 0.6 and mean log-probability under -1, its own rule)."""
    return [
        Word(
            start=round(w.start, 3),
            end=round(w.end, 3),
            text=w.word.strip(),
            probability=round(w.probability, 4),
        )
        for segment in segments
        if not (checked and segment.no_speech_prob > 0.6 and segment.avg_logprob < -1.0)
        for w in segment.words or []
        if w.word.strip()
    ]


def _overlaps(word: Word, speech: np.ndarray) -> np.ndarray:
    """Seconds of the word inside each speech region (negative: the gap to it)."""
    return np.minimum(word.end, speech[:, 1]) - np.maximum(word.start, speech[:, 0])


def _owner(word: Word, speech: np.ndarray) -> int:
    """The speech region a word overlaps most, else the one nearest to its middle."""
    overlaps = _overlaps(word, speech)
    if overlaps.max() > 0:
        return int(overlaps.argmax())
    middle = (word.start + word.end) / 2
    return int(np.abs(speech - middle).min(axis=1).argmin())


def unheard(words: list[Word], speech: np.ndarray) -> list[int]:
    """Indices of the speech regions that own no word of positive length, or a "word" longer than
    `LONG_WORD` seconds: the aligner stretches a word over speech Whisper skipped (seen in a
    window of near-identical sentences, where Whisper merged two of them into one)."""
    if len(speech) == 0:
        return []
    heard = {_owner(w, speech) for w in words if w.end > w.start}
    heard -= {_owner(w, speech) for w in words if w.end - w.start > LONG_WORD}
    return [i for i in range(len(speech)) if i not in heard]


def resplice(words: list[Word], speech: np.ndarray) -> list[Word]:
    """Words timed across a splice moved to where they are spoken.

    The pipeline joins the speech of many regions into one window; decoded without punctuation
    ("... by the door Kids are ..."), the first word after a splice is often timed from the end of
    the word before it over the silence, and lands in the previous region. A word mostly in
    silence (at least `STRETCH` seconds of it), not ending a phrase, whose next word is spoken in
    a region that starts after it, is moved to that region's start."""
    speech = np.asarray(speech, dtype=float).reshape(-1, 2)
    out = list(words)
    if len(speech) == 0:
        return out
    for k, (word, following) in enumerate(pairwise(words)):
        length = word.end - word.start
        inside = np.clip(_overlaps(word, speech), 0, None).sum()
        if length - inside < max(STRETCH, length / 2) or word.text.endswith(PHRASE_END):
            continue
        start = speech[_owner(following, speech), 0]
        if word.start < start:
            end = max(following.start, start + MIN_WORD)
            out[k] = word.model_copy(update={"start": round(float(start), 3), "end": round(float(end), 3)})
    return out


def _clips(regions: np.ndarray, duration: float) -> list[dict[str, float]]:
    """`clip_timestamps` for regions decoded again: neighbours within `GROUP` seconds share a clip
    (one padded pass for a few short utterances, not one each), padded a little; anything longer
    than `MAX_CLIP` seconds is cut into equal parts."""
    groups: list[list[float]] = []
    for start, end in regions:
        if groups and end - groups[-1][0] <= GROUP:
            groups[-1][1] = end
        else:
            groups.append([start, end])
    clips = []
    for start, end in groups:
        start, end = max(0.0, start - CLIP_PAD), min(duration, end + CLIP_PAD)
        parts = int(np.ceil((end - start) / MAX_CLIP))
        edges = np.linspace(start, end, parts + 1)
        clips += [{"start": float(a), "end": float(b)} for a, b in pairwise(edges)]
    return clips


def replaced(words: list[Word], again: list[Word], speech: np.ndarray, redo: list[int]) -> list[Word]:
    """`words` with those of each region in `redo` replaced by its words in `again`, where the
    second decoding found any (else the first decoding's words stay), in time order."""
    speech = np.asarray(speech, dtype=float).reshape(-1, 2)
    fresh: dict[int, list[Word]] = {}
    for word in again:
        fresh.setdefault(_owner(word, speech), []).append(word)
    renewed = {i for i in fresh if i in redo}
    keep = [w for w in words if _owner(w, speech) not in renewed]
    return sorted(keep + [w for i in renewed for w in fresh[i]], key=lambda w: (w.start, w.end))


@hookimpl
def ser_register_transcribers(register):
    register("faster-whisper", FasterWhisperTranscriber, requires="faster-whisper")
