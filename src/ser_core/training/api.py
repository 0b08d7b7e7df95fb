"""The library API for data: `train`, `evaluate`, `evaluate_model` (and `analyze`, from
`ser_core.pipeline.analysis`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ser_core import __version__
from ser_core.atomic_files import atomic_write_text, check_writable
from ser_core.contract.backend import EmbeddingBackend
from ser_core.contract.classifier import Classifier
from ser_core.errors import DatasetError
from ser_core.models.adaptation import MIN_FILES, Normalised, SourceStats
from ser_core.models.artifacts import Model, ModelMeta, load_model
from ser_core.models.classifiers import DEFAULT_KIND
from ser_core.pipeline.analysis import model_path_for
from ser_core.plugins.lookup import get_backend, make_classifier
from ser_core.settings import get_settings
from ser_core.training.datasets import Item, load_datasets, summary
from ser_core.training.extract import Copy, extract
from ser_core.training.labels import ordered
from ser_core.training.metrics import classification_report

log = logging.getLogger(__name__)
Progress = Callable[[str, int], Callable[[int], None]]


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
    return features_of(load_datasets(datasets, labels), backend, jobs, progress)


def features_of(
    items: list[Item],
    backend: EmbeddingBackend,
    jobs: int = 1,
    progress: Progress | None = None,
    copy: Copy = Copy(),
) -> Features:
    """Utterance vectors of dataset items (or of their `copy`); unreadable files are logged and
    listed in `failures`."""
    what = f"extracting features ({copy.kind} copy {copy.index})" if copy.index else "extracting features"
    tick = progress(what, len(items)) if progress else None
    out = extract([item.path for item in items], backend, jobs=jobs, progress=tick, copy=copy)
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
    profile: str | None = None,
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
    profile = profile or get_settings().default_profile
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
    """Add what was evaluated on to a metrics dict, and write it as JSON when asked. The model file
    (if any) and the profile come first: they are the report's header."""
    result.update(extra)
    header = {key: result.pop(key) for key in ("model", "profile") if key in result}
    result = {**header, **result}
    result.update(
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
    items = load_datasets(datasets)
    dataset_labels = {item.label for item in items}
    shared = [label for label in fitted.labels if label in dataset_labels]
    if not shared:
        raise DatasetError(f"the dataset(s) share no label with the model ({', '.join(fitted.labels)})")
    data = features_of([item for item in items if item.label in shared], backend, jobs, progress)
    columns = [fitted.labels.index(label) for label in shared]
    probs = fitted.predict_proba(data.vectors)[:, columns]
    predicted = [shared[i] for i in probs.argmax(axis=1)]
    result = classification_report(data.labels, predicted, shared)
    extra = {
        "model": str(path),
        "profile": fitted.meta.profile,
        "model_labels": fitted.labels,
        "shared_labels": shared,
        "training_overlap": training_overlap(fitted.meta, data.items),
    }
    return _finish_report(result, datasets, data, report, **extra)


def training_overlap(meta: ModelMeta, items: Sequence[Item]) -> dict[str, Any]:
    """How much of the scored data comes from speakers the model was trained on: such scores are
    neither cross-corpus nor speaker-independent. Unknown when the model does not record its
    training speakers. Files without a speaker id (on either side) cannot be matched: counted apart."""
    if meta.training_speakers is None:
        return {"known": False, "note": "the model does not record its training speakers"}
    known = set(meta.training_speakers)
    overlap = [item for item in items if item.speaker is not None and item.speaker in known]
    trained = meta.training
    return {
        "known": True,
        "speakers": len({item.speaker for item in overlap}),
        "files": len(overlap),
        "share": len(overlap) / len(items) if items else 0.0,
        "speaker_ids": sorted({str(item.speaker) for item in overlap}),
        "files_without_speaker": sum(item.speaker is None for item in items),
        "training_files_without_speaker": int(
            trained.get("n_files", 0) - sum(trained.get("speakers", {}).values())
        ),
    }


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
    profile: str | None = None,
    labels: Sequence[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    jobs: int = 1,
    holdout: float = 0.2,
    seed: int = 0,
    classifier: str = DEFAULT_KIND,
    classifier_params: dict[str, Any] | None = None,
    progress: Progress | None = None,
    augment: int = 0,
    balance_corpora: bool = False,
    crops: int = 0,
    corpus_norm: bool = True,
) -> TrainResult:
    """Train a profile's classifier; report it on held-out speakers, then refit on all and save.

    `augment`: training copies per clip sent through random recording channels (codecs, noise,
    rooms, levels; `ser_core.training.channels.training_copies`), for models that hold up on telephone,
    compressed and noisy audio. `crops`: copies of random 1-2 s of each clip's speech, for short
    utterances. `balance_corpora`: each corpus weighs the same in the fit, so a large corpus does
    not drown the others' speakers and microphones. `corpus_norm`: each corpus's features
    standardised by its own statistics, so a user's recordings can be standardised by theirs
    (`ser_core.models.adaptation`; a single recording by a typical training corpus's). The probabilities are calibrated with a
    temperature (`calibrate`) stored in the artifact.

    The artifact goes to `out` (default `<models_dir>/<profile>.npz`), the report beside it
    (`<name>.report.json`).
    """
    params = classifier_params or {}
    profile = profile or get_settings().default_profile
    target = Path(out) if out is not None else get_settings().models_dir / f"{profile}.npz"
    check_writable(target)  # fail now, not after the work
    backend = get_backend(profile)
    data = load_features(datasets, backend, labels, jobs=jobs, progress=progress)
    label_set = ordered(data.labels)
    if len(label_set) < 2:
        raise DatasetError("training needs at least two labels")
    copies = copy_vectors(data, backend, augment, jobs, seed, progress)
    copies += copy_vectors(data, backend, crops, jobs, seed, progress, kind="crop")
    trainer = Trainer(data, copies, classifier, params, balance_corpora, corpus_norm)
    heldout = heldout_speakers(data.speakers, holdout, seed) if holdout > 0 else set()
    test = np.array([speaker in heldout for speaker in data.speakers])
    fitted = trainer.fit(np.ones(len(data.items), bool))
    metrics: dict[str, Any] = {}
    heldout_probs = heldout_adapted = None
    if test.any() and (~test).any():
        probe = trainer.fit(~test)
        heldout_probs = _heldout_probs(probe, data, test, fitted.labels)
        truth = [lab for lab, t in zip(data.labels, test, strict=True) if t]
        metrics = classification_report(truth, [fitted.labels[i] for i in heldout_probs.argmax(axis=1)], label_set)
        metrics["heldout_speakers"] = sorted(heldout)
        if corpus_norm:
            heldout_adapted = _heldout_probs(probe, data, test, fitted.labels, adapt=True)
    loco = leave_one_corpus_out(trainer, fitted.labels)
    calibration = calibrate(data, fitted.labels, (test, heldout_probs), loco)
    adapted = leave_one_corpus_out(trainer, fitted.labels, adapt=True) if corpus_norm else None
    if calibration is not None and corpus_norm:
        calibration["adapted"] = calibrate(data, fitted.labels, (test, heldout_adapted), adapted)
    info = summary(data.items)
    info.update(
        datasets=[str(d) for d in datasets],
        n_failures=len(data.failures),
        training_copies=augment,
        training_crops=crops,
        balance_corpora=balance_corpora,
        corpus_norm=corpus_norm,
    )
    source_norm = None
    if fitted.adapted is not None:
        source_norm = {"training": "per-corpus", "corpora": sorted({item.corpus for item in data.items})}
    speakers = sorted({item.speaker for item in data.items if item.speaker is not None})
    meta = ModelMeta.for_backend(
        profile,
        backend,
        fitted.labels,
        training=info,
        training_speakers=speakers,
        metrics=metrics,
        calibration=calibration,
        source_norm=source_norm,
    )
    model = Model(meta, fitted.classifier, adapted=fitted.adapted)
    model.save(target)
    report = {
        "model": str(target),
        "profile": profile,
        "labels": fitted.labels,
        "heldout": metrics,
        "calibration": calibration,
        "leave_one_corpus_out": {} if loco is None else _per_corpus(data, loco, fitted.labels),
        # the held-out corpus standardised by its own statistics (`ser analyze --adapt`), ECE with
        # the stored temperature
        "leave_one_corpus_out_adapted": {}
        if adapted is None
        else _per_corpus(data, adapted, fitted.labels, (calibration or {}).get("adapted")),
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


def copy_vectors(
    data: Features,
    backend: EmbeddingBackend,
    count: int,
    jobs: int,
    seed: int,
    progress: Progress | None,
    kind: str = "channel",
) -> list[np.ndarray]:
    """Vectors of `count` training copies of every clip (same order as `data.items`): through
    random channels, or ("crop") random 1-2 s of speech. Babble noise is made from 12 clips of the
    training data drawn with `seed`."""
    if count <= 0:
        return []
    rng = np.random.default_rng(seed)
    paths = [str(item.path) for item in data.items]
    talkers = tuple(rng.choice(paths, size=min(12, len(paths)), replace=False).tolist()) if kind == "channel" else ()
    out = []
    for index in range(1, count + 1):
        extracted = features_of(data.items, backend, jobs, progress, copy=Copy(index, talkers, kind))
        if len(extracted.items) != len(data.items):
            raise DatasetError("a training copy could not be made of every clip")
        out.append(extracted.vectors)
    return out


@dataclass
class Trainer:
    """Fits the classifier on a subset of the clips, their training copies included; with
    `balance_corpora`, every corpus weighs the same in the fit whatever its size; with `corpus_norm`,
    a second head is fit on each corpus's vectors (its copies too) standardised by the statistics of
    its clean clips (`ser_core.models.adaptation`)."""

    data: Features
    copies: list[np.ndarray]
    classifier: str = DEFAULT_KIND
    params: dict[str, Any] = field(default_factory=dict)
    balance_corpora: bool = False
    corpus_norm: bool = False

    def fit(self, keep: np.ndarray) -> Normalised:
        labels = [lab for lab, k in zip(self.data.labels, keep, strict=True) if k]
        corpora = np.array([item.corpus for item, k in zip(self.data.items, keep, strict=True) if k])
        parts = [self.data.vectors[keep], *(c[keep] for c in self.copies)]
        rows = labels * len(parts)
        weighted = {}  # classifiers from plugins need not take weights unless they are asked to
        if self.balance_corpora:
            names, sizes = np.unique(corpora, return_counts=True)
            weighted["sample_weight"] = np.tile((1.0 / sizes)[np.searchsorted(names, corpora)], len(parts))
        plain = make_classifier(self.classifier, **self.params).fit(np.concatenate(parts), rows, **weighted)
        if not self.corpus_norm:
            return Normalised(plain)
        standardised = [part.astype(np.float64) for part in parts]
        for name in np.unique(corpora):
            stats = SourceStats.of(parts[0][corpora == name])
            for part in standardised:
                part[corpora == name] = stats.standardise(part[corpora == name])
        adapted = make_classifier(self.classifier, **self.params).fit(np.concatenate(standardised), rows, **weighted)
        return Normalised(plain, adapted)


def _heldout_probs(
    probe: Normalised, data: Features, test: np.ndarray, labels: list[str], adapt: bool = False
) -> np.ndarray | None:
    """The held-out clips' probabilities, columns in `labels` order (the probe may lack a label).
    `adapt`: each corpus's held-out clips standardised by their own statistics (None when a corpus
    has too few of them for statistics)."""
    x = data.vectors[test]
    out = np.zeros((len(x), len(labels)))
    columns = [labels.index(label) for label in probe.labels]
    if not adapt:
        out[:, columns] = probe.predict_proba(x)
        return out
    corpora = np.array([item.corpus for item, t in zip(data.items, test, strict=True) if t])
    for name in np.unique(corpora):
        rows = corpora == name
        if rows.sum() < MIN_FILES:
            return None
        out[np.ix_(rows, columns)] = probe.predict_proba(x[rows], SourceStats.of(x[rows]))
    return out


def leave_one_corpus_out(trainer: Trainer, labels: list[str], adapt: bool = False) -> np.ndarray | None:
    """Probabilities (columns in `labels` order) of every clip from a model fit without its corpus,
    the honest estimate for a new language, speaker and microphone; None with one corpus. `adapt`:
    the held-out corpus standardised by its own statistics (`ser analyze --adapt`)."""
    data = trainer.data
    corpora = np.array([item.corpus for item in data.items])
    if len(set(corpora)) < 2:
        return None
    index = {label: i for i, label in enumerate(labels)}
    probs = np.zeros((len(data.items), len(labels)))
    for name in sorted(set(corpora)):
        test = corpora == name
        model = trainer.fit(~test)
        source = SourceStats.of(data.vectors[test]) if adapt else None
        columns = [index[lab] for lab in model.labels]
        probs[np.ix_(test, columns)] = model.predict_proba(data.vectors[test], source)
    return probs


def _per_corpus(
    data: Features, probs: np.ndarray, labels: list[str], calibration: dict[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """UAR, WA and macro-F1 of leave-one-corpus-out predictions, per held-out corpus (and the ECE
    with `calibration`'s temperature, given one)."""
    corpora = np.array([item.corpus for item in data.items])
    truth = np.array(data.labels)
    predicted = np.array(labels)[probs.argmax(axis=1)]
    out = {}
    for name in sorted(set(corpora)):
        test = corpora == name
        report = classification_report(truth[test].tolist(), predicted[test].tolist(), ordered(data.labels))
        out[str(name)] = {key: report[key] for key in ("uar", "wa", "macro_f1", "n_files")}
        if calibration is not None:
            from ser_core.models.calibration import scale
            from ser_core.training.metrics import calibration_report

            index = np.array([labels.index(label) for label in truth[test]])
            scaled = scale(probs[test], calibration["temperature"])
            out[str(name)]["ece"] = round(calibration_report(scaled, index)["ece"], 4)
    return out


def calibrate(
    data: Features,
    labels: list[str],
    heldout: tuple[np.ndarray, np.ndarray | None],
    loco: np.ndarray | None = None,
) -> dict[str, Any] | None:
    """The temperature that makes the model's confidence match how often it is right on audio it
    was not fit on (None when nothing was held out), from the held-out speakers' probabilities
    and the leave-one-corpus-out ones (`leave_one_corpus_out`), both in `labels` order.

    Two estimates bracket what a user's recording needs. Held-out speakers of the training corpora
    (a new speaker, a known language and microphone) give a temperature too low for audio from
    elsewhere; leave-one-corpus-out over the training corpora (a new corpus) gives one too high,
    because those models have a corpus fewer and are both weaker and sharper than the one shipped.
    The temperature is their geometric mean (one of them alone when only it is available). On
    `nox -s robustness` (nested: the temperature from the three training corpora, ECE on the fourth)
    that gives the lowest calibration error of the three for both shipped models (docs/performance.md,
    calibration)."""
    from ser_core.models.calibration import fit_temperature, scale
    from ser_core.training.metrics import calibration_report

    index = {label: i for i, label in enumerate(labels)}
    views: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if heldout[1] is not None:
        truth = np.array([index[lab] for lab, t in zip(data.labels, heldout[0], strict=True) if t])
        views["held-out speakers"] = (heldout[1], truth)
    if loco is not None:
        names = ", ".join(sorted({item.corpus for item in data.items}))
        views[f"leave-one-corpus-out over {names}"] = (loco, np.array([index[lab] for lab in data.labels]))
    if not views:
        return None
    fitted = {name: fit_temperature(*view) for name, view in views.items()}
    temperature = float(np.exp(np.mean(np.log(list(fitted.values())))))
    return {
        "method": "temperature",
        "temperature": round(temperature, 4),
        "fit_on": " and ".join(views) + (" (geometric mean)" if len(views) > 1 else ""),
        # per view: its own temperature, and the calibration error there before and after scaling
        # with the shipped one (held-out speakers: under-confident; other corpora: over-confident)
        "views": {
            name: {
                "n_files": len(truth),
                "temperature": round(fitted[name], 4),
                "ece_raw": round(calibration_report(probs, truth)["ece"], 4),
                "ece_scaled": round(calibration_report(scale(probs, temperature), truth)["ece"], 4),
            }
            for name, (probs, truth) in views.items()
        },
    }


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    import json

    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")
