"""Timeline accuracy: long recordings composed from labelled clips, with a known reference timeline.

    python scripts/benchmark_timeline.py [--profile fast] [--seed 0] [--pause 0.5] [--min-seconds 60]

Protocol (speaker-independent, deterministic from the seed):
* Corpora: Emo-DB, EMOVO, RAVDESS 01-18, on the six labels they share (the shipped model's set).
* Leave one speaker out over all 34 speakers: the classifier is trained on every other speaker of
  all three corpora, exactly as `ser train` fits it (same backend features, same classifier).
* The held-out speaker's clips are shuffled and concatenated with `--pause` seconds of silence
  into recordings of at least `--min-seconds` (all clips used, each once). Reference: each clip's
  speech (silero VAD run on the clip alone) carries the clip's label.
* `ser_core.analyze(recording, transcript=False)` gives the emotion segments (VAD, windows,
  smoothing, hysteresis, minimum duration: the defaults users get).
* Frame accuracy: share of reference speech frames (10 ms) whose segment label is the reference
  label (frames outside every segment count as wrong); frame UAR likewise, per class.
* Utterance accuracy on the same clips: each clip classified alone by the same fold's model
  (accuracy and UAR), the number the frame accuracy is compared with.
* Boundary error: for each change of label between consecutive clips, the distance between the
  pause separating them and the nearest predicted change of label (the stretch between two
  segments with different labels); 0 when they overlap. The median is reported.
Writes reports/timeline-<profile>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
from corpora import ROOT, corpora_dir

import ser_core
from ser_core.atomic_files import atomic_write_text
from ser_core.models.artifacts import Model, ModelMeta
from ser_core.models.classifiers import DEFAULT_KIND
from ser_core.pipeline.audio import SAMPLE_RATE, load_audio
from ser_core.pipeline.vad import speech_regions
from ser_core.plugins.lookup import get_backend
from ser_core.training.api import _fit, features_of
from ser_core.training.datasets import load_dataset
from ser_core.training.metrics import classification_report

LABELS = ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
CORPORA = ("emodb", "emovo", "ravdess")
HOP = 0.01


def speech_spans(signal: np.ndarray) -> list[tuple[float, float]]:
    """The clip's speech by silero VAD on the clip alone (an energy threshold counts breath and
    room noise as speech on some RAVDESS actors)."""
    return [(float(a), float(b)) for a, b in speech_regions(signal, "silero", merge_gap=0.3)]


def compose(
    clips: list[tuple[np.ndarray, str]], pause: float
) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """The recording, and its reference: (start, end, label) of each clip's speech, in order."""
    silence = np.zeros(int(pause * SAMPLE_RATE), np.float32)
    parts, reference, t = [], [], 0.0
    for signal, label in clips:
        reference += [(t + a, t + b, label) for a, b in speech_spans(signal)]
        parts += [signal, silence]
        t += (len(signal) + len(silence)) / SAMPLE_RATE
    return np.concatenate(parts), reference


def recordings(n_clips: int, durations: list[float], min_seconds: float) -> list[list[int]]:
    """Consecutive groups of clip indices, each at least `min_seconds` long (the remainder joins the last)."""
    groups, current, total = [], [], 0.0
    for i in range(n_clips):
        current.append(i)
        total += durations[i]
        if total >= min_seconds:
            groups.append(current)
            current, total = [], 0.0
    if current:
        if groups:
            groups[-1] += current
        else:
            groups.append(current)
    return groups


def label_at(times: np.ndarray, segments: list) -> np.ndarray:
    out = np.full(len(times), None, dtype=object)
    for s in segments:
        out[(times >= s.start) & (times < s.end)] = s.label
    return out


def changes(segments: list) -> np.ndarray:
    """(n, 2) intervals where the predicted label changes: [end of one segment, start of the next]."""
    return np.array([(a.end, b.start) for a, b in pairwise(segments) if a.label != b.label]).reshape(-1, 2)


def interval_distance(intervals: np.ndarray, start: float, end: float) -> float:
    """Distance from [start, end] to the nearest interval (0 when they overlap); inf when none."""
    if len(intervals) == 0:
        return float("inf")
    return float(np.maximum(0.0, np.maximum(intervals[:, 0] - end, start - intervals[:, 1])).min())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pause", type=float, default=0.5)
    parser.add_argument("--min-seconds", type=float, default=60.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--classifier", default=DEFAULT_KIND)
    args = parser.parse_args()
    root = corpora_dir()
    backend = get_backend(args.profile)
    items = [item for corpus in CORPORA for item in load_dataset(root / corpus, LABELS)]
    data = features_of(items, backend, jobs=args.jobs)
    speakers = np.array(data.speakers)
    labels = np.array(data.labels)
    rng = np.random.default_rng(args.seed)
    frame_truth, frame_pred, clip_truth, clip_pred, boundary_errors = [], [], [], [], []
    per_corpus: dict[str, dict[str, list]] = {}
    audio_seconds = analyze_seconds = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for speaker in sorted(set(speakers)):
            test = speakers == speaker
            fitted = _fit(data.vectors[~test], list(labels[~test]), args.classifier, {})
            model_path = Path(tmp) / "fold.npz"
            Model(ModelMeta.for_backend(args.profile, backend, fitted.labels), fitted).save(model_path)
            # Utterance level: each clip alone.
            probs = fitted.predict_proba(data.vectors[test])
            predicted = [fitted.labels[i] for i in probs.argmax(axis=1)]
            order = rng.permutation(np.flatnonzero(test))
            clips = [(load_audio(data.items[i].path), data.items[i].label) for i in order]
            corpus = per_corpus.setdefault(
                data.items[order[0]].corpus, {k: [] for k in ("ft", "fp", "ct", "cp", "be")}
            )
            clip_truth += list(labels[test])
            clip_pred += predicted
            corpus["ct"] += list(labels[test])
            corpus["cp"] += predicted
            durations = [len(s) / SAMPLE_RATE + args.pause for s, _ in clips]
            for group in recordings(len(clips), durations, args.min_seconds):
                signal, reference = compose([clips[i] for i in group], args.pause)
                path = Path(tmp) / "recording.wav"
                sf.write(path, signal, SAMPLE_RATE)
                start = time.perf_counter()
                result = ser_core.analyze(path, profile=args.profile, model=model_path, transcript=False)
                analyze_seconds += time.perf_counter() - start
                audio_seconds += len(signal) / SAMPLE_RATE
                for a, b, label in reference:
                    times = np.arange(a, b, HOP)
                    got = label_at(times, result.segments)
                    frame_truth += [label] * len(times)
                    frame_pred += [g or "none" for g in got]
                    corpus["ft"] += [label] * len(times)
                    corpus["fp"] += [g or "none" for g in got]
                predicted_changes = changes(result.segments)
                for (_, end, first), (start2, _, second) in pairwise(reference):
                    if first != second:  # the true change happens somewhere in the pause [end, start2]
                        error = interval_distance(predicted_changes, end, start2)
                        boundary_errors.append(error)
                        corpus["be"].append(error)
            print(f"{speaker:14s} clips {test.sum():3d}", flush=True)

    def summary(ft, fp, ct, cp, be) -> dict:
        frames = classification_report(ft, fp, [*LABELS, "none"])  # "none": outside every segment
        utter = classification_report(ct, cp, LABELS)
        finite = np.array(be)
        return {
            "frame_accuracy": round(frames["wa"], 4),
            "frame_uar": round(frames["uar"], 4),
            "utterance_accuracy": round(utter["wa"], 4),
            "utterance_uar": round(utter["uar"], 4),
            "gap_points": round(100 * (utter["wa"] - frames["wa"]), 2),
            "median_boundary_error_s": round(float(np.median(finite)), 3) if len(finite) else None,
            "boundaries_within_1s": round(float((finite <= 1.0).mean()), 4) if len(finite) else None,
            "boundary_error_p75_s": round(float(np.percentile(finite, 75)), 3) if len(finite) else None,
            "boundaries_missed": round(float(np.isinf(finite).mean()), 4) if len(finite) else None,
            "n_boundaries": len(finite),
            "n_clips": len(ct),
        }

    report = {
        "profile": args.profile,
        "seed": args.seed,
        "pause_seconds": args.pause,
        "min_recording_seconds": args.min_seconds,
        "overall": summary(frame_truth, frame_pred, clip_truth, clip_pred, boundary_errors),
        "corpora": {name: summary(**c) for name, c in per_corpus.items()},
        "analyze_rtf": round(analyze_seconds / audio_seconds, 4),
        "audio_minutes": round(audio_seconds / 60, 1),
        "version": ser_core.__version__,
    }
    for name, row in [("overall", report["overall"]), *report["corpora"].items()]:
        print(
            f"{name:8s} frame acc {row['frame_accuracy']:.3f} (UAR {row['frame_uar']:.3f})  utterance acc "
            f"{row['utterance_accuracy']:.3f} (UAR {row['utterance_uar']:.3f})  gap {row['gap_points']:+.1f} pts  "
            f"median boundary error {row['median_boundary_error_s']} s  within 1 s {row['boundaries_within_1s']}"
        )
    out = ROOT / "reports" / f"timeline-{args.profile}.json"
    atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
