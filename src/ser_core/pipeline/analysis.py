"""Analysing a recording: the model a profile uses, `analyze` in pieces (emotion segments,
transcript, sentences, timeline) and what it is made of."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ser_core import __version__
from ser_core.contract.backend import EmbeddingBackend
from ser_core.contract.diarizer import Diarizer
from ser_core.contract.results import AnalysisResult, Segment, Sentence, Turn, Word
from ser_core.contract.transcriber import Request, Transcriber, Transcript
from ser_core.errors import AnalysisTimeout, ArtifactError
from ser_core.models.adaptation import SourceStats
from ser_core.models.artifacts import Model, load_model
from ser_core.pipeline.alignment import clamp_to_speech, join_text, label_words, split_sentences
from ser_core.pipeline.audio import LOUDNESS_STEP, SAMPLE_RATE, block_db, loudness, stream_audio
from ser_core.pipeline.bandwidth import BandStats
from ser_core.pipeline.pieces import pieces
from ser_core.pipeline.speakers import (
    find_turns,
    overall,
    parse_speakers,
    rounded,
    split_segments,
    with_speakers,
)
from ser_core.pipeline.speakers import summaries as speaker_summaries
from ser_core.pipeline.vad import speech_regions
from ser_core.plugins import registries
from ser_core.plugins.lookup import get_backend, get_diarizer, get_profile, get_transcriber
from ser_core.plugins.manager import get_plugin_manager
from ser_core.settings import Settings, get_settings

# --- models -------------------------------------------------------------------------------------


def model_path_for(profile: str, model: str | os.PathLike[str] | None = None) -> Path:
    """Which artifact a profile uses: an explicit path, else `<models_dir>/<profile>.npz` from
    `ser train`, else the model a plugin ships for the profile."""
    if model is not None and str(model) != "default":
        return Path(model)
    trained = get_settings().models_dir / f"{profile}.npz"
    if model is None and trained.is_file():
        return trained
    shipped = registries.default_models().get(profile)
    if shipped is None:
        raise ArtifactError(
            f"no model for profile {profile!r}: train one with `ser train --profile {profile}`"
        )
    return Path(shipped.value)


@registries.cached(maxsize=8)
def _cached_model(path: str, mtime_ns: int) -> Model:
    return load_model(path)


def get_model(profile: str, model: str | os.PathLike[str] | None = None) -> Model:
    path = model_path_for(profile, model)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read model ({exc.strerror or exc})") from None
    return _cached_model(str(path), mtime)


# --- analysis -----------------------------------------------------------------------------------


def window_spans(duration: float, window: float, hop: float) -> np.ndarray:
    """(n, 2) start/end seconds of sliding windows covering [0, duration]."""
    if duration <= window:
        return np.array([[0.0, duration]])
    starts = np.arange(0.0, duration - window + 1e-9, hop)
    if starts[-1] + window < duration - 1e-9:
        starts = np.r_[starts, duration - window]
    return np.column_stack([starts, starts + window])


#: An analysis in steps (`analysis`): it yields what it needs transcribed, by which transcriber,
#: is sent the transcript back, and returns the result.
Steps = Generator[tuple[Transcriber, Request], Transcript, AnalysisResult]


def analyze(
    path: str | os.PathLike[str],
    profile: str | None = None,
    model: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    *,
    transcript: bool | None = None,
    language: str | None = None,
    whisper_model: str | None = None,
    timeout: float | None = None,
    source: SourceStats | None = None,
    speakers: int | str | None = None,
    progress: Callable[[int], None] | None = None,
) -> AnalysisResult:
    """The emotion of a recording (overall label and probabilities, segments over its speech)
    and, with `transcript` (default: the `transcript` setting), what was said in which emotion:
    words, sentences and the merged timeline.

    The overall result is read off the segments, so it never contradicts the timeline: the label
    is the emotion of the largest share of speech time, the probabilities are the segments'
    averaged over their duration (`overall`). Without speech (silence, noise, a tone) there is no
    label (status "no_speech"); with less than `min_speech_seconds` of speech the label is
    flagged "too_short".

    The audio is decoded as a stream and analysed in pieces of at most `piece_seconds` (cut at
    quiet moments), so memory does not grow with the recording's length.

    `timeout`: seconds the analysis may take once the models are loaded, checked between pieces
    (`AnalysisTimeout`); `ser_core.runs.budget` adds retries and a hard kill in a worker process.

    `source`: the statistics of a batch of recordings from the same source as this one
    (`ser_core.training.extract.source_of`) to standardise the features by, instead of a typical
    training corpus's; the result's `adapted_to` says from how many recordings.

    `speakers` (default: the `speakers` setting): "off", "auto" or a number of speakers. When on,
    every segment, word, sentence and timeline row gets its speaker, and `turns` and `speakers`
    (each speaker's summary) are filled; the diarizer clusters the whole file's speaker vectors,
    so ids hold across pieces.

    `progress(n)` is called after each piece with the number of pieces done (a server reports it)."""
    return answered(
        analysis(
            path,
            profile,
            model,
            settings,
            transcript=transcript,
            language=language,
            whisper_model=whisper_model,
            timeout=timeout,
            source=source,
            speakers=speakers,
            progress=progress,
        )
    )


def answered(steps: Steps) -> AnalysisResult:
    """Run an analysis to its end, each transcription request answered on its own."""
    with contextlib.closing(steps):
        try:
            transcriber, request = next(steps)
            while True:
                said = transcriber.transcribe(request.signal, request.language, request.speech)
                transcriber, request = steps.send(said)
        except StopIteration as end:
            return end.value


def analysis(
    path: str | os.PathLike[str],
    profile: str | None = None,
    model: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    *,
    transcript: bool | None = None,
    language: str | None = None,
    whisper_model: str | None = None,
    timeout: float | None = None,
    source: SourceStats | None = None,
    speakers: int | str | None = None,
    progress: Callable[[int], None] | None = None,
) -> Steps:
    """`analyze` in steps, so that a batch can transcribe several recordings together
    (`ser_core.pipeline.grouped`): the generator yields (transcriber, `Request`) whenever it needs
    words, is sent the `Transcript`, and returns the result. Nothing runs before the first step."""
    settings = settings or get_settings()
    profile, backend, fitted, transcriber, language = prepare(
        profile, model, settings, transcript, language, whisper_model
    )
    diarize, count = parse_speakers(settings.speakers if speakers is None else speakers)
    diarizer = get_diarizer(settings) if diarize else None
    if source is not None:
        fitted.check_source(source)
    deadline = None if timeout is None else time.monotonic() + timeout
    found = _Found()
    for done, (offset, piece) in enumerate(pieces(stream_audio(path), settings.piece_seconds), 1):
        if deadline is not None and time.monotonic() > deadline:
            raise AnalysisTimeout(path, timeout)
        if found.add_audio(piece) >= settings.silence_peak:
            part = yield from _analyze_piece(
                piece, backend, _Adapted(fitted, source), transcriber, found.language or language, settings
            )
            found.add(part, offset / SAMPLE_RATE)
            if diarizer is not None:
                found.add_voices(*diarizer.embed(piece, part.speech), offset / SAMPLE_RATE)
        if progress is not None:
            progress(done)
    turns, summaries = [], []
    if diarizer is not None:
        turns = found.assign_speakers(diarizer, count)
        summaries = speaker_summaries(turns, found.segments, fitted.labels, settings.uncertain_below)
    words = found.words if transcriber is not None else None
    timeline = get_plugin_manager().hook.ser_build_timeline(
        words=words, segments=found.segments, settings=settings
    )
    timeline = flag_uncertain(timeline, settings.uncertain_below)
    label, probabilities, shares = overall(found.segments, fitted.labels)
    speech_seconds = round(sum(end - start for start, end in found.speech), 3)
    if label is None:
        status = "no_speech"
    else:
        status = "too_short" if speech_seconds < settings.min_speech_seconds else "ok"
    confidence = None if label is None else probabilities[label]
    loudness_values, loudness_rate = loudness(np.concatenate(found.loudness_db))
    return AnalysisResult(
        path=str(path),
        profile=profile,
        backend_id=backend.backend_id,
        backend_model_id=backend.model_id,
        model=str(fitted.path),
        duration=round(found.samples / SAMPLE_RATE, 3),
        status=status,
        label=label,
        confidence=confidence,
        uncertain=confidence is not None and confidence < settings.uncertain_below,
        probabilities=probabilities,
        shares=shares,
        speech_seconds=speech_seconds,
        warnings=found.bands.warnings(get_profile(profile).narrowband_alternative or None) if label else [],
        adapted_to=None if source is None else source.n_files,
        speech=found.speech,
        segments=found.segments,
        transcriber=None if transcriber is None else f"{transcriber.name} {transcriber.model_id}",
        language=found.language,
        words=found.words,
        sentences=found.sentences,
        timeline=timeline,
        diarizer=None if diarizer is None else f"{diarizer.name} {diarizer.model_id}",
        turns=turns,
        speakers=summaries,
        ser_core_version=__version__,
        envelope=[round(float(v), 3) for v in loudness_values],
        envelope_rate=loudness_rate,
    )


def prepare(
    profile: str | None = None,
    model: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    transcript: bool | None = None,
    language: str | None = None,
    whisper_model: str | None = None,
) -> tuple[str, EmbeddingBackend, Model, Transcriber | None, str]:
    """Load what `analyze` needs (cached per process): profile name, backend, model, transcriber
    (None without transcript) and language; fails before any audio is read."""
    settings = settings or get_settings()
    profile = profile or settings.default_profile
    backend = get_backend(profile)
    fitted = get_model(profile, model)
    fitted.check_backend(backend, profile)
    transcribe = settings.transcript if transcript is None else transcript
    language = language or settings.language
    transcriber = get_transcriber(whisper_model, settings) if transcribe else None
    if transcriber is not None:
        transcriber.check_language(language)
    return profile, backend, fitted, transcriber, language


@dataclass
class _Part:
    """What the analysis of one piece found, in seconds from the piece's start."""

    speech: np.ndarray
    segments: list[Segment]
    words: list[Word]
    sentences: list[Sentence]
    language: str | None


@dataclass
class _Found:
    """What the pieces of a recording found so far, in seconds from the recording's start."""

    samples: int = 0
    loudness_db: list[np.ndarray] = field(default_factory=list)
    bands: BandStats = field(default_factory=BandStats)
    speech: list[tuple[float, float]] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    sentences: list[Sentence] = field(default_factory=list)
    language: str | None = None
    voice_spans: list[np.ndarray] = field(default_factory=list)
    voices: list[np.ndarray] = field(default_factory=list)

    def add_audio(self, piece: np.ndarray) -> float:
        """Count a piece's samples and loudness; returns its peak magnitude."""
        self.samples += len(piece)
        self.loudness_db.append(block_db(piece, LOUDNESS_STEP))
        self.bands.add(piece)
        return float(np.max(np.abs(piece)))

    def add(self, part: _Part, start: float) -> None:
        self.speech += [(round(float(a + start), 3), round(float(b + start), 3)) for a, b in part.speech]
        self.segments += _shifted(part.segments, start)
        self.words += _shifted(part.words, start)
        self.sentences += _shifted(part.sentences, start)
        self.language = self.language or part.language

    def add_voices(self, spans: np.ndarray, vectors: np.ndarray, start: float) -> None:
        """A piece's speaker vectors (a few kB a minute: the whole file's are clustered at once)."""
        self.voice_spans.append(np.asarray(spans, dtype=float).reshape(-1, 2) + start)
        self.voices.append(np.asarray(vectors, dtype=np.float32))

    def assign_speakers(self, diarizer: Diarizer, count: int | None) -> list[Turn]:
        """Cluster every piece's vectors, find the turns, and give each result its speaker."""
        if not self.voices or not self.speech:
            return []
        vectors = np.concatenate(self.voices)
        turns = find_turns(self.speech, np.concatenate(self.voice_spans), diarizer.assign(vectors, count))
        self.segments = split_segments(self.segments, turns)
        self.words = with_speakers(self.words, turns)
        self.sentences = with_speakers(self.sentences, turns)
        return turns


def _shifted(items: list[Any], seconds: float) -> list[Any]:
    """Copies of timed results (segments, words, sentences) moved `seconds` later."""
    if not seconds:
        return items
    return [
        item.model_copy(update={"start": round(item.start + seconds, 3), "end": round(item.end + seconds, 3)})
        for item in items
    ]


@dataclass(frozen=True)
class _Adapted:
    """A model whose features are standardised by a given source (None: its default)."""

    model: Model
    source: SourceStats | None

    @property
    def labels(self) -> list[str]:
        return self.model.labels

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(features, self.source)


def _analyze_piece(
    signal: np.ndarray,
    backend: EmbeddingBackend,
    fitted: _Adapted,
    transcriber: Transcriber | None,
    language: str,
    settings: Settings,
) -> Generator[tuple[Transcriber, Request], Transcript, _Part]:
    speech = speech_regions(signal, settings.vad, settings.vad_merge_gap)
    frames = backend.frames(signal)
    segments = _segments(backend, fitted, frames, speech, settings)
    words: list[Word] = []
    sentences: list[Sentence] = []
    spoken = None
    if transcriber is not None:
        said = yield transcriber, Request(signal, language, speech)
        spoken = said.language if len(speech) else None
        words = label_words(clamp_to_speech(said.words, speech), segments)
        sentences = _sentences(backend, fitted, frames, split_sentences(words, settings.timeline_gap_seconds, speech))
        sentences = flag_uncertain(sentences, settings.uncertain_below)
    return _Part(speech, segments, words, sentences, spoken)


def _segments(
    backend: EmbeddingBackend, fitted: _Adapted, frames: np.ndarray, speech: np.ndarray, settings: Settings
) -> list[Segment]:
    """Emotion segments inside each speech region (windows never straddle a pause)."""
    spans = [
        window_spans(end - start, settings.window_seconds, settings.hop_seconds) + start
        for start, end in speech
    ]
    if not spans:
        return []
    pooled = np.concatenate(spans) + np.array([-settings.window_context, settings.window_context])
    pooled = np.clip(pooled, 0.0, len(frames) / backend.frame_rate)
    probabilities = fitted.predict_proba(backend.embed_windows(frames, pooled))
    hook = get_plugin_manager().hook.ser_build_segments
    segments: list[Segment] = []
    offset = 0
    for region in spans:
        segments += hook(
            times=region,
            probabilities=probabilities[offset : offset + len(region)],
            labels=fitted.labels,
            settings=settings,
        )
        offset += len(region)
    return flag_uncertain(segments, settings.uncertain_below)


def flag_uncertain(items: list[Any], below: float) -> list[Any]:
    """Segments, sentences or timeline rows with `uncertain` set where the confidence is under `below`."""
    return [
        item.model_copy(update={"uncertain": item.confidence is not None and item.confidence < below})
        for item in items
    ]


def _sentences(
    backend: EmbeddingBackend, fitted: _Adapted, frames: np.ndarray, groups: list[list[Word]]
) -> list[Sentence]:
    """Each sentence's emotion, predicted from the audio it spans."""
    if not groups:
        return []
    spans = np.array([[group[0].start, group[-1].end] for group in groups])
    probabilities = fitted.predict_proba(backend.embed_windows(frames, spans))
    out = []
    for group, probs in zip(groups, probabilities, strict=True):
        best = int(probs.argmax())
        out.append(
            Sentence(
                start=group[0].start,
                end=group[-1].end,
                text=join_text(group),
                emotion=fitted.labels[best],
                confidence=round(float(probs[best]), 4),
                probabilities=rounded(fitted.labels, probs),
            )
        )
    return out
