"""The library API: `analyze`, `train`, `evaluate`, `evaluate_model`."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ser_core import __version__
from ser_core.alignment import clamp_to_speech, join_text, label_words, split_sentences
from ser_core.artifacts import Model, ModelMeta, load_model
from ser_core.audio import LOUDNESS_STEP, SAMPLE_RATE, block_db, loudness, stream_audio
from ser_core.backend import EmbeddingBackend, get_backend
from ser_core.classifier import DEFAULT_KIND, Classifier, make_classifier
from ser_core.datasets import Item, load_dataset, summary
from ser_core.errors import AnalysisTimeout, ArtifactError, AudioError, DatasetError
from ser_core.extract import extract
from ser_core.io import atomic_write_text, check_writable
from ser_core.labels import ordered
from ser_core.metrics import classification_report
from ser_core.pieces import pieces
from ser_core.plugins import get_plugin_manager, registry
from ser_core.results import AnalysisResult, Segment, Sentence, Word
from ser_core.settings import Settings, get_settings
from ser_core.transcriber import Transcriber, get_transcriber
from ser_core.vad import speech_regions

log = logging.getLogger(__name__)
Progress = Callable[[str, int], Callable[[int], None]]


# --- models -------------------------------------------------------------------------------------


def model_path_for(profile: str, model: str | os.PathLike[str] | None = None) -> Path:
    """Which artifact a profile uses: an explicit path, else `<models_dir>/<profile>.npz` from
    `ser train`, else the model a plugin ships for the profile."""
    if model is not None and str(model) != "default":
        return Path(model)
    trained = get_settings().models_dir / f"{profile}.npz"
    if model is None and trained.is_file():
        return trained
    shipped = registry("ser_default_models").get(profile)
    if shipped is None:
        raise ArtifactError(
            f"no model for profile {profile!r}: train one with `ser train --profile {profile}`"
        )
    return Path(shipped.value)


@lru_cache(maxsize=8)
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
) -> AnalysisResult:
    """The emotion of a recording (utterance label and probabilities, segments over its speech)
    and, with `transcript` (default: the `transcript` setting), what was said in which emotion:
    words, sentences and the merged timeline.

    The audio is decoded as a stream and analysed in pieces of at most `piece_seconds` (cut at
    quiet moments), so memory does not grow with the recording's length. A recording of several
    pieces gets as utterance probabilities the mean of its pieces', weighted by their speech.

    `timeout`: seconds the analysis may take once the models are loaded, checked between pieces
    (`AnalysisTimeout`); `ser_core.budget` adds retries and a hard kill in a worker process."""
    settings = settings or get_settings()
    profile, backend, fitted, transcriber, language = prepare(
        profile, model, settings, transcript, language, whisper_model
    )
    deadline = None if timeout is None else time.monotonic() + timeout
    found = _Found()
    for offset, piece in pieces(stream_audio(path), settings.piece_seconds):
        if deadline is not None and time.monotonic() > deadline:
            raise AnalysisTimeout(path, timeout)
        found.add_audio(piece)
        if float(np.max(np.abs(piece))) >= settings.silence_peak:
            part = _analyze_piece(piece, backend, fitted, transcriber, found.language or language, settings)
            found.add(part, offset / SAMPLE_RATE)
    if found.peak < settings.silence_peak:
        raise AudioError(path, f"audio is silent (peak below {settings.silence_peak:g})")
    utterance = found.utterance()
    words = found.words if transcriber is not None else None
    timeline = get_plugin_manager().hook.ser_build_timeline(
        words=words, segments=found.segments, settings=settings
    )
    best = int(utterance.argmax())
    loudness_values, loudness_rate = loudness(np.concatenate(found.loudness_db))
    return AnalysisResult(
        path=str(path),
        profile=profile,
        backend_id=backend.backend_id,
        backend_model_id=backend.model_id,
        model=str(fitted.path),
        duration=round(found.samples / SAMPLE_RATE, 3),
        label=fitted.labels[best],
        confidence=round(float(utterance[best]), 4),
        probabilities=_rounded(fitted.labels, utterance),
        speech=found.speech,
        segments=found.segments,
        transcriber=None if transcriber is None else f"{transcriber.name} {transcriber.model_id}",
        language=found.language,
        words=found.words,
        sentences=found.sentences,
        timeline=timeline,
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

    utterance: np.ndarray
    speech: np.ndarray
    segments: list[Segment]
    words: list[Word]
    sentences: list[Sentence]
    language: str | None


@dataclass
class _Found:
    """What the pieces of a recording found so far, in seconds from the recording's start."""

    samples: int = 0
    peak: float = 0.0
    loudness_db: list[np.ndarray] = field(default_factory=list)
    utterances: list[np.ndarray] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    speech: list[tuple[float, float]] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    sentences: list[Sentence] = field(default_factory=list)
    language: str | None = None

    def add_audio(self, piece: np.ndarray) -> None:
        self.samples += len(piece)
        self.peak = max(self.peak, float(np.max(np.abs(piece))))
        self.loudness_db.append(block_db(piece, LOUDNESS_STEP))

    def add(self, part: _Part, start: float) -> None:
        self.utterances.append(part.utterance)
        self.weights.append(float(np.sum(part.speech[:, 1] - part.speech[:, 0])))
        self.speech += [(round(float(a + start), 3), round(float(b + start), 3)) for a, b in part.speech]
        self.segments += _shifted(part.segments, start)
        self.words += _shifted(part.words, start)
        self.sentences += _shifted(part.sentences, start)
        self.language = self.language or part.language

    def utterance(self) -> np.ndarray:
        """One piece: its probabilities; several: their mean weighted by seconds of speech."""
        if len(self.utterances) == 1:
            return self.utterances[0]
        weights = np.asarray(self.weights)
        weights = weights if weights.sum() > 0 else np.ones_like(weights)
        return np.average(np.stack(self.utterances), axis=0, weights=weights)


def _shifted(items: list[Any], seconds: float) -> list[Any]:
    """Copies of timed results (segments, words, sentences) moved `seconds` later."""
    if not seconds:
        return items
    return [
        item.model_copy(update={"start": round(item.start + seconds, 3), "end": round(item.end + seconds, 3)})
        for item in items
    ]


def _analyze_piece(
    signal: np.ndarray,
    backend: EmbeddingBackend,
    fitted: Model,
    transcriber: Transcriber | None,
    language: str,
    settings: Settings,
) -> _Part:
    speech = speech_regions(signal, settings.vad, settings.vad_merge_gap)
    frames = backend.frames(signal)
    utterance = fitted.predict_proba(backend.embed_utterance(signal, frames)[None, :])[0]
    segments = _segments(backend, fitted, frames, speech, settings)
    words: list[Word] = []
    sentences: list[Sentence] = []
    spoken = None
    if transcriber is not None:
        said = transcriber.transcribe(signal, language, speech)
        spoken = said.language if len(speech) else None
        words = label_words(clamp_to_speech(said.words, speech), segments)
        sentences = _sentences(backend, fitted, frames, split_sentences(words, settings.timeline_gap_seconds))
    return _Part(utterance, speech, segments, words, sentences, spoken)


def _rounded(labels: Sequence[str], probabilities: np.ndarray) -> dict[str, float]:
    return {label: round(float(p), 4) for label, p in zip(labels, probabilities, strict=True)}


def _segments(
    backend: EmbeddingBackend, fitted: Model, frames: np.ndarray, speech: np.ndarray, settings: Settings
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
    return segments


def _sentences(
    backend: EmbeddingBackend, fitted: Model, frames: np.ndarray, groups: list[list[Word]]
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
                probabilities=_rounded(fitted.labels, probs),
            )
        )
    return out


# --- data ---------------------------------------------------------------------------------------


@dataclass
class Features:
    """Utterance vectors of dataset items that decoded; `failures` lists those that did not."""

    items: list[Item]
    vectors: np.ndarray
    failures: list[dict[str, str]] = field(default_factory=list)
    cache_hits: int = 0

    @property
    def labels(self) -> list[str]:
        return [item.label for item in self.items]

    @property
    def speakers(self) -> list[str]:
        return [item.speaker or f"file:{item.path}" for item in self.items]


def load_features(
    datasets: Sequence[str | os.PathLike[str]],
    backend: EmbeddingBackend,
    labels: Sequence[str] | None = None,
    jobs: int = 1,
    progress: Progress | None = None,
) -> Features:
    """Utterance vectors of every readable file of the datasets (optionally a label subset)."""
    return features_of(_items(datasets, labels), backend, jobs, progress)


def _items(datasets: Sequence[str | os.PathLike[str]], labels: Sequence[str] | None = None) -> list[Item]:
    return [item for spec in datasets for item in load_dataset(spec, labels)]


def features_of(
    items: list[Item], backend: EmbeddingBackend, jobs: int = 1, progress: Progress | None = None
) -> Features:
    """Utterance vectors of dataset items; unreadable files are logged and listed in `failures`."""
    tick = progress("extracting features", len(items)) if progress else None
    out = extract([item.path for item in items], backend, jobs=jobs, progress=tick)
    failures = [{"path": str(items[i].path), "error": error} for i, error in sorted(out.failures.items())]
    for failure in failures:
        log.warning("skipped %s", failure["error"])
    kept = [item for item, ok in zip(items, out.ok, strict=True) if ok]
    if not kept:
        raise DatasetError("no file of the dataset(s) could be read")
    return Features(kept, out.vectors[out.ok], failures, out.cache_hits)


def _speaker_folds(speakers: Sequence[str], folds: int | None) -> list[list[str]]:
    """Groups of speakers, each a test fold: one per speaker, or `folds` contiguous groups."""
    unique = sorted(set(speakers))
    if len(unique) < 2:
        raise DatasetError("speaker-independent evaluation needs at least two speakers")
    if folds is None or folds >= len(unique):
        return [[speaker] for speaker in unique]
    if folds < 2:
        raise DatasetError("--folds must be at least 2")
    return [list(chunk) for chunk in np.array_split(np.array(unique, dtype=object), folds)]


def _fit(features: np.ndarray, labels: list[str], classifier: str, params: dict[str, Any]) -> Classifier:
    return make_classifier(classifier, **params).fit(features, labels)


# --- evaluation ---------------------------------------------------------------------------------


def cross_validate(
    data: Features,
    folds: int | None = None,
    classifier: str = DEFAULT_KIND,
    classifier_params: dict[str, Any] | None = None,
    progress: Progress | None = None,
    on_fold: Callable[[list[str], Classifier, np.ndarray], None] | None = None,
) -> dict[str, Any]:
    """Speaker-independent cross-validation: every speaker is in the test part of exactly one fold.
    `on_fold(test_speakers, fitted, test_mask)` is called with each fold's model."""
    params = classifier_params or {}
    labels_all = data.labels
    speakers = np.array(data.speakers, dtype=object)
    label_set = ordered(labels_all)
    predicted = np.empty(len(labels_all), dtype=object)
    fold_reports = []
    groups = _speaker_folds(data.speakers, folds)
    tick = progress("cross-validating", len(groups)) if progress else None
    for group in groups:
        test = np.isin(speakers, group)
        train_labels = [lab for lab, t in zip(labels_all, test, strict=True) if not t]
        model = _fit(data.vectors[~test], train_labels, classifier, params)
        if on_fold is not None:
            on_fold(group, model, test)
        probs = model.predict_proba(data.vectors[test])
        predicted[test] = [model.labels[i] for i in probs.argmax(axis=1)]
        truth = [lab for lab, t in zip(labels_all, test, strict=True) if t]
        fold = classification_report(truth, list(predicted[test]), label_set)
        fold_reports.append(
            {"test_speakers": group, "n_files": int(test.sum()), "uar": fold["uar"], "wa": fold["wa"]}
        )
        if tick:
            tick(1)
    report = classification_report(labels_all, list(predicted), label_set)
    report["folds"] = fold_reports
    report["cv"] = "leave-one-speaker-out" if folds is None else f"speaker-grouped {len(groups)} folds"
    return report


def evaluate(
    datasets: Sequence[str | os.PathLike[str]],
    profile: str = "fast",
    folds: int | None = None,
    labels: Sequence[str] | None = None,
    jobs: int = 1,
    classifier: str = DEFAULT_KIND,
    classifier_params: dict[str, Any] | None = None,
    report: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Speaker-independent cross-validation of a profile on datasets; optionally writes a JSON report."""
    if report is not None:
        check_writable(report)  # fail now, not after the work
    backend = get_backend(profile)
    data = load_features(datasets, backend, labels, jobs=jobs, progress=progress)
    result = cross_validate(data, folds, classifier, classifier_params, progress)
    extra = {"profile": profile, "backend_id": backend.backend_id, "backend_model_id": backend.model_id}
    return _finish_report(result, datasets, data, report, **extra)


def _finish_report(
    result: dict[str, Any],
    datasets: Sequence[str | os.PathLike[str]],
    data: Features,
    report: str | os.PathLike[str] | None,
    **extra: Any,
) -> dict[str, Any]:
    """Add what was evaluated on to a metrics dict, and write it as JSON when asked."""
    result.update(
        extra,
        datasets=[str(d) for d in datasets],
        data=summary(data.items),
        failures=data.failures,
        ser_core_version=__version__,
    )
    if report is not None:
        write_json(report, result)
    return result


def evaluate_model(
    model: str | os.PathLike[str],
    datasets: Sequence[str | os.PathLike[str]],
    profile: str | None = None,
    jobs: int = 1,
    report: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Score a trained model on other data (cross-corpus), over the labels both share.

    Files whose label the model does not know are left out, and the model's choice is restricted
    to the labels present in the data (its probabilities renormalised over them).
    """
    if report is not None:
        check_writable(report)  # fail now, not after the work
    path = model_path_for(profile or get_settings().default_profile, model)
    fitted = load_model(path)
    backend = get_backend(fitted.meta.profile)
    fitted.check_backend(backend, profile)
    items = _items(datasets)
    dataset_labels = {item.label for item in items}
    shared = [label for label in fitted.labels if label in dataset_labels]
    if not shared:
        raise DatasetError(f"the dataset(s) share no label with the model ({', '.join(fitted.labels)})")
    data = features_of([item for item in items if item.label in shared], backend, jobs, progress)
    columns = [fitted.labels.index(label) for label in shared]
    probs = fitted.predict_proba(data.vectors)[:, columns]
    predicted = [shared[i] for i in probs.argmax(axis=1)]
    result = classification_report(data.labels, predicted, shared)
    extra = {"model": str(path), "model_labels": fitted.labels, "shared_labels": shared}
    return _finish_report(result, datasets, data, report, profile=fitted.meta.profile, **extra)


# --- training -----------------------------------------------------------------------------------


def heldout_speakers(speakers: Sequence[str], fraction: float, seed: int) -> set[str]:
    """A deterministic speaker-disjoint held-out set: about `fraction` of each corpus's speakers."""
    by_corpus: dict[str, list[str]] = {}
    for speaker in sorted(set(speakers)):
        by_corpus.setdefault(speaker.split(":", 1)[0], []).append(speaker)
    rng = np.random.default_rng(seed)
    chosen: set[str] = set()
    for group in by_corpus.values():
        if len(group) < 2:
            continue
        count = min(len(group) - 1, max(1, round(fraction * len(group))))
        chosen.update(rng.choice(group, size=count, replace=False).tolist())
    return chosen


@dataclass
class TrainResult:
    model: Model
    path: Path
    report: dict[str, Any]
    report_path: Path


def train(
    datasets: Sequence[str | os.PathLike[str]],
    profile: str = "fast",
    labels: Sequence[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    jobs: int = 1,
    holdout: float = 0.2,
    seed: int = 0,
    classifier: str = DEFAULT_KIND,
    classifier_params: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train a profile's classifier; report it on held-out speakers, then refit on all and save.

    The artifact goes to `out` (default `<models_dir>/<profile>.npz`), the report beside it
    (`<name>.report.json`).
    """
    params = classifier_params or {}
    target = Path(out) if out is not None else get_settings().models_dir / f"{profile}.npz"
    check_writable(target)  # fail now, not after the work
    backend = get_backend(profile)
    data = load_features(datasets, backend, labels, jobs=jobs, progress=progress)
    label_set = ordered(data.labels)
    if len(label_set) < 2:
        raise DatasetError("training needs at least two labels")
    heldout = heldout_speakers(data.speakers, holdout, seed) if holdout > 0 else set()
    test = np.array([speaker in heldout for speaker in data.speakers])
    metrics: dict[str, Any] = {}
    if test.any() and (~test).any():
        train_labels = [lab for lab, t in zip(data.labels, test, strict=True) if not t]
        probe = _fit(data.vectors[~test], train_labels, classifier, params)
        probs = probe.predict_proba(data.vectors[test])
        truth = [lab for lab, t in zip(data.labels, test, strict=True) if t]
        metrics = classification_report(truth, [probe.labels[i] for i in probs.argmax(axis=1)], label_set)
        metrics["heldout_speakers"] = sorted(heldout)
    fitted = _fit(data.vectors, data.labels, classifier, params)
    info = summary(data.items)
    info.update(datasets=[str(d) for d in datasets], n_failures=len(data.failures))
    meta = ModelMeta.for_backend(profile, backend, fitted.labels, training=info, metrics=metrics)
    model = Model(meta, fitted)
    model.save(target)
    report = {
        "model": str(target),
        "profile": profile,
        "labels": fitted.labels,
        "heldout": metrics,
        "note": "heldout metrics come from a model fit without the held-out speakers; "
        "the saved model is refit on all speakers",
        "training": info,
        "failures": data.failures,
        "sha256": model.meta.sha256,
        "ser_core_version": __version__,
    }
    report_path = target.with_name(target.name.removesuffix(".npz") + ".report.json")
    write_json(report_path, report)
    return TrainResult(model, target, report, report_path)


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    import json

    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")
