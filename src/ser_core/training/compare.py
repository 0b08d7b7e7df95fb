"""Profiles compared on the same speaker-independent folds, and the quality gate over them.

Every profile is cross-validated on the same files and folds. Besides UAR and macro-F1 (and
their deltas against the first profile), each fold's model analyses a long recording composed
from that fold's test clips (blocks of one label, 0.5 s pauses, the real `analyze` path without
transcript), giving the timeline statistics users see: segments (runs of one label) per minute and
their median length, next to the reference count on the true labels.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from ser_core import __version__
from ser_core.contract.classifier import Classifier
from ser_core.errors import DatasetError
from ser_core.models.artifacts import Model, ModelMeta
from ser_core.models.classifiers import DEFAULT_KIND
from ser_core.pipeline.analysis import analyze
from ser_core.pipeline.audio import SAMPLE_RATE, load_audio
from ser_core.plugins.lookup import get_backend
from ser_core.settings import Settings, get_settings
from ser_core.training.api import Features, Progress, cross_validate, features_of, write_json
from ser_core.training.datasets import load_datasets, summary

PAUSE_SECONDS = 0.5


@dataclass(frozen=True)
class Thresholds:
    """What `--require-pass` demands; defaults from the `gate_*` settings."""

    min_uar_delta: float
    min_macro_f1_delta: float
    max_segments_per_minute: float
    min_median_segment_seconds: float

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **override: float | None) -> Thresholds:
        settings = settings or get_settings()
        values = {name: getattr(settings, f"gate_{name}") for name in cls.__dataclass_fields__}
        values.update({k: v for k, v in override.items() if v is not None})
        return cls(**values)


def compare(
    datasets: Sequence[str | os.PathLike[str]],
    profiles: Sequence[str],
    folds: int | None = None,
    labels: Sequence[str] | None = None,
    jobs: int = 1,
    classifier: str = DEFAULT_KIND,
    thresholds: Thresholds | None = None,
    timeline_seconds: float = 120.0,
    seed: int = 0,
    report: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Per-profile metrics on the same folds, deltas against `profiles[0]`, timeline statistics,
    and the gate (`result["gate"]["passed"]`); optionally written as JSON to `report`."""
    if len(profiles) < 2:
        raise DatasetError("comparing needs at least two profiles")
    thresholds = thresholds or Thresholds.from_settings()
    items = load_datasets(datasets, labels)
    data = {name: features_of(items, get_backend(name), jobs, progress) for name in dict.fromkeys(profiles)}
    data = _same_files(data)
    rows = []
    for name in profiles:
        timeline = _TimelineStats(name, data[name], timeline_seconds, seed)
        result = cross_validate(data[name], folds, classifier, on_fold=timeline.fold, progress=progress)
        rows.append({"profile": name, **result, "timeline": timeline.summary()})
    base = rows[0]
    for row in rows[1:]:
        row["delta"] = {key: round(row[key] - base[key], 4) for key in ("uar", "macro_f1")}
    result = {
        "profiles": rows,
        "gate": _gate(rows, thresholds),
        "datasets": [str(d) for d in datasets],
        "data": summary(data[profiles[0]].items),
        "cv": rows[0]["cv"],
        "ser_core_version": __version__,
    }
    if report is not None:
        write_json(report, result)
    return result


def _same_files(data: dict[str, Features]) -> dict[str, Features]:
    """Each profile's features restricted to the files every profile could read, in one order."""
    common = set.intersection(*({str(item.path) for item in f.items} for f in data.values()))
    out = {}
    for name, features in data.items():
        keep = [i for i, item in enumerate(features.items) if str(item.path) in common]
        items = [features.items[i] for i in keep]
        out[name] = Features(items, features.vectors[keep], features.failures, features.cache_hits)
    return out


class _TimelineStats:
    """Emotion runs over each fold's long recording, analysed with that fold's model.

    The recording strings the fold's test clips together in blocks of up to `RUN_CLIPS` clips of
    one label (an emotion lasts a while, as in a conversation), 0.5 s pauses between clips. A
    segment here is what a reader of the timeline sees: a run of one label, across pauses. The
    reference is the same count on the true labels."""

    RUN_CLIPS = 4

    def __init__(self, profile: str, data: Features, seconds: float, seed: int) -> None:
        self.profile, self.data, self.seconds, self.seed = profile, data, seconds, seed
        self.minutes = 0.0
        self.durations: list[float] = []
        self.reference_runs = 0
        self.recordings = 0

    def _clips(self, indices: np.ndarray, rng: np.random.Generator) -> list[int]:
        by_label: dict[str, list[int]] = {}
        for i in rng.permutation(indices):
            by_label.setdefault(self.data.items[i].label, []).append(int(i))
        blocks = [clips[k : k + self.RUN_CLIPS] for clips in by_label.values() for k in range(0, len(clips), self.RUN_CLIPS)]
        return [i for b in rng.permutation(len(blocks)) for i in blocks[b]]

    def fold(self, speakers: list[str], fitted: Classifier, test: np.ndarray) -> None:
        rng = np.random.default_rng([self.seed, *(ord(c) for c in ",".join(speakers))])
        pause = np.zeros(int(PAUSE_SECONDS * SAMPLE_RATE), np.float32)
        parts: list[np.ndarray] = []
        labels: list[str] = []
        total = 0.0
        for i in self._clips(np.flatnonzero(test), rng):
            clip = load_audio(self.data.items[i].path)
            parts += [clip, pause]
            labels.append(self.data.items[i].label)
            total += (len(clip) + len(pause)) / SAMPLE_RATE
            if total >= self.seconds:
                break
        backend = get_backend(self.profile)
        meta = ModelMeta.for_backend(self.profile, backend, fitted.labels, training={"fold": speakers})
        with tempfile.TemporaryDirectory(prefix="ser-compare-") as tmp:
            recording, model = Path(tmp) / "recording.wav", Path(tmp) / "fold.npz"
            sf.write(recording, np.concatenate(parts), SAMPLE_RATE)
            Model(meta, fitted).save(model)
            result = analyze(recording, self.profile, model=model, transcript=False)
        self.recordings += 1
        self.minutes += result.duration / 60
        self.durations += _runs(result.segments)
        self.reference_runs += 1 + sum(a != b for a, b in pairwise(labels))

    def summary(self) -> dict[str, Any]:
        minutes = max(self.minutes, 1e-9)
        return {
            "recordings": self.recordings,
            "minutes": round(self.minutes, 2),
            "segments": len(self.durations),
            "segments_per_minute": round(len(self.durations) / minutes, 3),
            "median_segment_seconds": round(float(np.median(self.durations)), 3) if self.durations else 0.0,
            "reference_segments_per_minute": round(self.reference_runs / minutes, 3),
        }


def _runs(segments: Sequence[Any]) -> list[float]:
    """Lengths of the runs of one label: consecutive segments with the same label count as one,
    whatever silence lies between them (silence has no emotion, so the reader sees it go on)."""
    runs: list[list[Any]] = []
    for segment in segments:
        if runs and runs[-1][0] == segment.label:
            runs[-1][2] = segment.end
        else:
            runs.append([segment.label, segment.start, segment.end])
    return [end - start for _, start, end in runs]


def _gate(rows: list[dict[str, Any]], thresholds: Thresholds) -> dict[str, Any]:
    checks = []

    def check(profile: str, name: str, value: float, limit: float, at_least: bool) -> None:
        passed = value >= limit if at_least else value <= limit
        checks.append(
            {"profile": profile, "check": name, "value": value, "threshold": limit, "passed": passed}
        )

    for row in rows[1:]:
        check(row["profile"], "uar_delta", row["delta"]["uar"], thresholds.min_uar_delta, True)
        check(row["profile"], "macro_f1_delta", row["delta"]["macro_f1"], thresholds.min_macro_f1_delta, True)
    for row in rows:
        stats = row["timeline"]
        check(
            row["profile"], "segments_per_minute", stats["segments_per_minute"],
            thresholds.max_segments_per_minute, False,
        )
        check(
            row["profile"], "median_segment_seconds", stats["median_segment_seconds"],
            thresholds.min_median_segment_seconds, True,
        )
    return {"passed": all(c["passed"] for c in checks), "thresholds": asdict(thresholds), "checks": checks}
