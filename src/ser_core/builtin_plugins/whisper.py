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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from ser_core.contract.hookspecs import hookimpl
from ser_core.contract.results import Word
from ser_core.contract.transcriber import Request, Transcriber, Transcript
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
#: Seconds around a recording's speech in its clip (`transcribe_many`): faster-whisper's own VAD
#: pads speech by 0.4 s. On 270 RAVDESS files WER was 0.036 / 0.030 / 0.028 / 0.027 / 0.030 with
#: 0.1 / 0.2 / 0.3 / 0.4 / 0.5 s (0.026 for the packed path): with less, Whisper often doubles
#: the last word ("... by the door door").
SPEECH_PAD = 0.4
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
#: A word of a clip (`transcribe_many`) starting this many seconds after the clip's audio ends
#: shows the same: the decoder ran on past the speech, repeating it.
RUN_ON = 0.1
FRAME = SAMPLE_RATE // 100  # samples in Whisper's 10 ms frame
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
            features = trimmed(features)
            if features.ndim < 3 or len(features) < 2 or self.model.device != "cpu":
                return super().encode(features)
            # On a CPU a batch of windows encodes slower than the same windows one at a time
            # (0.46 against 0.27 s a 15 s window, Whisper base int8, 2 cores); the decoder still
            # takes them as one batch.
            import ctranslate2

            alone = [np.asarray(super(ShortWindowModel, self).encode(window[None])) for window in features]
            return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.concatenate(alone)))

        def add_word_timestamps(
            self,
            segments: list[Any],
            tokenizer: Any,
            encoder_output: Any,
            num_frames: list[int],
            prepend_punctuations: str,
            append_punctuations: str,
            last_speech_timestamp: float,
        ) -> float:
            """Each window of a batch aligned alone, as if it came first: its word times and
            probabilities then do not depend on the windows batched with it. (Batched,
            CTranslate2 pads the windows' tokens, and faster-whisper trims a window's first word
            by the end of the previous window's last one, which may be another file's.)"""
            if self.model.device != "cpu" or not isinstance(num_frames, list):
                return super().add_word_timestamps(
                    segments, tokenizer, encoder_output, num_frames,
                    prepend_punctuations, append_punctuations, last_speech_timestamp,
                )  # fmt: skip
            import ctranslate2

            states = np.asarray(encoder_output)
            for k, segment in enumerate(segments):
                if segment:
                    own = ctranslate2.StorageView.from_array(np.ascontiguousarray(states[k : k + 1]))
                    last_speech_timestamp = super().add_word_timestamps(
                        [segment], tokenizer, own, [num_frames[k]],
                        prepend_punctuations, append_punctuations, segment[0]["seek"] / self.frames_per_second,
                    )  # fmt: skip
            return last_speech_timestamp

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

    def _options(self, batch: int | None = None) -> dict[str, Any]:
        return {
            "word_timestamps": True,
            "beam_size": self.settings.whisper_beam_size,
            "patience": self.settings.whisper_patience,
            "batch_size": batch or self.settings.whisper_batch_size,
        }

    def transcribe(self, signal: np.ndarray, language: str, speech: np.ndarray) -> Transcript:
        return self.transcribe_many([Request(signal, language, speech)])[0]

    def _packed(self, audio: np.ndarray, code: str | None, speech: np.ndarray) -> Transcript:
        """A long recording: the pipeline runs its own silero pass (about 0.003 x real time) and
        packs the speech of many regions, silences removed, into each 30 s window: one encoder pass
        per 30 s of speech. Handing it our regions as `clip_timestamps` would cost one pass per
        region (4x slower on short utterances)."""
        options = self._options()
        _windows.shortened = False
        segments, info = self.pipeline.transcribe(audio, language=code, vad_filter=True, **options)
        segments = list(segments)  # decoded here, lazily
        if _windows.shortened and any(map(_loops, segments)):
            with full_windows():  # a shortened window let the decoder loop: as Whisper pads it
                segments, info = self.pipeline.transcribe(audio, language=code, vad_filter=True, **options)
                segments = list(segments)
            self.looped += 1
        return self._checked(audio, _words(segments), speech, info.language)

    def transcribe_many(self, requests: Sequence[Request]) -> list[Transcript]:
        """A recording whose speech spans at most `MAX_CLIP` seconds (with `SPEECH_PAD`) is one window
        (`clip_timestamps`) of a batched decoding shared with the other requests: one beam search
        for a batch of files instead of one each, and the same words whether a recording comes
        alone or in a batch. Its words come back in its own clock. A longer one is `_packed`.
        "auto" language is detected per recording, from its own window."""
        out: list[Transcript | None] = [None] * len(requests)
        clips: list[_Clip] = []
        for index, request in enumerate(requests):
            code = self.check_language(request.language)
            speech = np.asarray(request.speech, dtype=float).reshape(-1, 2)
            audio = np.asarray(request.signal, dtype=np.float32)
            if len(speech) == 0:
                out[index] = Transcript(language=code or "unknown")
                continue
            start = max(0.0, float(speech[0, 0]) - SPEECH_PAD)
            end = min(len(audio) / SAMPLE_RATE, float(speech[-1, 1]) + SPEECH_PAD)
            if end - start > MAX_CLIP:
                out[index] = self._packed(audio, code, speech)
            else:
                clips.append(_Clip(index, audio, speech, code, start, end))
        if any(clip.language is None for clip in clips):
            self._detect([clip for clip in clips if clip.language is None])
        for language in sorted({str(clip.language) for clip in clips}):
            same = [clip for clip in clips if clip.language == language]
            for clip, (words, looped) in zip(same, self._decode(same, language), strict=True):
                if looped:  # a shortened window let the decoder loop: as Whisper pads it
                    with full_windows():
                        [(words, _)] = self._decode([clip], language)
                    self.looped += 1
                out[clip.index] = self._checked(clip.audio, words, clip.speech, language)
        return [transcript for transcript in out if transcript is not None]

    def _detect(self, clips: list[_Clip]) -> None:
        """Each clip's language, as Whisper detects it from the encoding of its window."""
        from faster_whisper.audio import pad_or_trim

        batch = self.settings.whisper_batch_size
        for first in range(0, len(clips), batch):
            part = clips[first : first + batch]
            features = np.stack(
                [pad_or_trim(self.model.feature_extractor(c.piece())[..., :-1]) for c in part]
            )
            found = self.model.model.detect_language(self.model.encode(features))
            for clip, ranked in zip(part, found, strict=True):
                clip.language = ranked[0][0][2:-2]  # "<|de|>"

    def _decode(self, clips: list[_Clip], language: str) -> list[tuple[list[Word], bool]]:
        """Each clip's words (in its recording's clock) and whether its window looped, the clips
        decoded as the windows of one joined signal, a batch at a time."""
        # Each clip starts one sample past a whole 10 ms frame of the joined signal: faster-whisper
        # times its words from the frame (`seek`) and rounds them to 10 ms there, so a clip's
        # words come out the same wherever it sits, first or tenth, alone or not.
        pieces = [clip.piece() for clip in clips]
        frames = np.cumsum([0] + [-(-(len(piece) + 1) // FRAME) for piece in pieces])
        joined = np.zeros(frames[-1] * FRAME, dtype=np.float32)
        spans = []
        for piece, at in zip(pieces, frames[:-1] * FRAME + 1, strict=True):
            joined[at : at + len(piece)] = piece
            spans.append({"start": at / SAMPLE_RATE, "end": (at + len(piece)) / SAMPLE_RATE})
        _windows.shortened = False
        segments, _ = self.pipeline.transcribe(
            joined, language=language, clip_timestamps=spans, **self._options(len(clips))
        )
        found: list[list[Any]] = [[] for _ in clips]
        for segment in segments:
            found[int(np.abs(frames[:-1] - segment.seek).argmin())].append(segment)
        out = []
        for clip, frame, own in zip(clips, frames, found, strict=False):
            shift = clip.start - frame * FRAME / SAMPLE_RATE
            words = _words(own)
            # Words timed after the clip's audio ends: the decoder ran on, repeating the clip.
            ran_on = any(word.start + shift > clip.end + RUN_ON for word in words)
            looped = _windows.shortened and (ran_on or any(map(_loops, own)))
            out.append(([clip.moved(word, shift) for word in words], bool(looped)))
        return out

    def _checked(self, audio: np.ndarray, words: list[Word], speech: np.ndarray, language: str) -> Transcript:
        """Words re-spliced, and the speech regions left without words decoded again."""
        words = resplice(words, speech)
        silent = unheard(words, speech)
        if silent:
            # A window of many short utterances decoded without timestamps may end after its first
            # few sentences and drop the rest: the regions left without a word are decoded again,
            # on their own or a few neighbours together (one padded 30 s pass each, so only those).
            clips = _clips(speech[silent], len(audio) / SAMPLE_RATE)
            again, _ = self.pipeline.transcribe(
                audio, language=language, clip_timestamps=clips, **self._options()
            )
            words = replaced(words, _words(again, checked=True), speech, silent)
            log.debug("transcribed %d of %d speech regions again", len(silent), len(speech))
        self.regions += len(speech)
        self.regions_redone += len(silent)
        # Zero-length and repeated words are dropped by the core (`alignment.clamp_to_speech`).
        return Transcript(language=language, words=words)


@dataclass
class _Clip:
    """A recording decoded as one window of a shared batch (`transcribe_many`): its speech's span
    [start, end) in seconds and its language (None: to detect)."""

    index: int
    audio: np.ndarray
    speech: np.ndarray
    language: str | None
    start: float
    end: float

    def piece(self) -> np.ndarray:
        return self.audio[round(self.start * SAMPLE_RATE) : round(self.end * SAMPLE_RATE)]

    def moved(self, word: Word, shift: float) -> Word:
        """A word `shift` seconds later, kept inside the span."""
        start, end = (
            round(float(min(max(t + shift, self.start), self.end)), 3) for t in (word.start, word.end)
        )
        return word.model_copy(update={"start": start, "end": end})


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
