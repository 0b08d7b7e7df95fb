"""How much speech the emotion models need: speaker-independent UAR against seconds of speech seen.

    python scripts/benchmark_short.py [--profile fast] [--jobs 1] [--every 1] [--corpora emodb,emovo,ravdess]

Evidence for the minimum speech duration below which a label is flagged `too_short`.

Protocol (deterministic; no randomness except the seeded bootstrap):
* Corpora: Emo-DB, EMOVO, RAVDESS actors 01-18 (`../shared/corpora` or `SER_CORPORA`), on the six
  labels the shipped models use: neutral, happy, sad, angry, fearful, disgust (chance UAR 1/6).
  `--every N` keeps every N-th clip of each corpus (all speakers stay), `--corpora` a subset: used
  for the slow accurate profile; the report says which subset.
* Training exactly as `ser train` fits a model: utterance vectors of the full clips
  (`features_of`, feature cache, pooled over the speech extent) and `_fit` with the default
  classifier (shrinkage LDA 0.6).
* View 1, speaker folds: the 34 speakers sorted by id and dealt round-robin into 5 folds (speaker i
  to fold i mod 5), so every fold holds speakers of all three corpora and no speaker is in both the
  training and the test part. View 2, leave-one-corpus-out: train on two corpora, test on the
  third (new language, speakers and microphone).
* Test: each held-out clip's speech starts where silero VAD (`speech_regions(signal, "silero")`,
  the analysis defaults: 0.1 s padding, pauses under `vad_merge_gap` bridged) puts the start of
  its first region. The clip is cropped to [start, start + d] (capped at the end of its last
  region; so a crop of d seconds is a d-second VAD region, padding included, as analysis would
  measure it), for d in 0.25, 0.5, 0.75, 1.0, 1.5, 2.0 s. The crop is analysed as a short input
  is: `backend.frames(crop)` and `backend.embed_utterance(crop, frames)` (through `embed_many`,
  which is the same per signal), then classified with the fold's model. "full" is the whole clip,
  embedded as in training. Clips without any silero region start at the speech extent
  (`speech_extent`, 40 dB) instead; they are counted in the report.
* Per d: UAR (balanced accuracy), accuracy, mean top probability (confidence) and confidence
  minus accuracy (where confidence outruns accuracy), overall and per corpus; the mean crop length
  and the share of clips whose speech ran out before d (their crop is shorter than d). For the
  speaker folds also a 95 % interval of UAR(d) - UAR(full) from 2000 bootstrap resamples of
  speakers (paired: the same clips at every d).
* Recommendation rule (printed, stored): the shortest d whose UAR keeps at least 75 % of the
  full-clip UAR's margin over chance, (UAR(d) - 1/6) / (UAR(full) - 1/6) >= 0.75, in the speaker
  folds.

Writes reports/short-speech.json atomically; a profile's entry replaces only that profile's entry.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from corpora import ROOT, corpora_dir

import ser_core
from ser_core.atomic_files import atomic_write_text
from ser_core.contract.signals import speech_extent
from ser_core.models.classifiers import DEFAULT_KIND
from ser_core.pipeline.audio import SAMPLE_RATE, load_audio
from ser_core.pipeline.vad import speech_regions
from ser_core.plugins.lookup import get_backend
from ser_core.settings import get_settings
from ser_core.training.api import _fit, features_of
from ser_core.training.datasets import load_dataset
from ser_core.training.metrics import classification_report

LABELS = ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
CORPORA = ("emodb", "emovo", "ravdess")
DURATIONS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
FOLDS = 5
CHANCE = 1 / len(LABELS)
KEEP = 0.75  # share of the full-clip margin over chance the recommended minimum keeps
OUT = ROOT / "reports" / "short-speech.json"


def speech_span(signal: np.ndarray, merge_gap: float) -> tuple[float, float, bool]:
    """Start of the first and end of the last silero region; the 40 dB extent when silero finds none."""
    regions = speech_regions(signal, "silero", merge_gap=merge_gap)
    if len(regions):
        return float(regions[0, 0]), float(regions[-1, 1]), True
    start, end = speech_extent(signal)
    return float(start), float(end), False


def crop_vectors(backend, paths: list[Path], durations: tuple[float, ...], merge_gap: float, chunk: int = 32):
    """(n_clips, n_durations, dim) vectors of the crops, (n_clips, n_durations) crop seconds, the
    clips' speech seconds and whether silero found speech."""
    n = len(paths)
    vectors = np.zeros((n, len(durations), backend.dim), np.float32)
    seconds = np.zeros((n, len(durations)))
    speech = np.zeros(n)
    found = np.zeros(n, bool)
    started = time.perf_counter()
    for first in range(0, n, chunk):
        block = range(first, min(n, first + chunk))
        signals, spans = [], []
        for i in block:
            signal = load_audio(paths[i])
            start, end, found[i] = speech_span(signal, merge_gap)
            signals.append(signal)
            spans.append((start, end))
            speech[i] = end - start
        for k, d in enumerate(durations):
            crops = []
            for signal, (start, end) in zip(signals, spans, strict=True):
                a = round(start * SAMPLE_RATE)
                b = round(min(start + d, end) * SAMPLE_RATE)
                crops.append(signal[a : max(b, a + 1)])
            for i, crop, vector in zip(block, crops, backend.embed_many(crops), strict=True):
                vectors[i, k] = vector
                seconds[i, k] = len(crop) / SAMPLE_RATE
        done = block[-1] + 1
        if done % (chunk * 8) == 0 or done == n:
            print(f"  crops {done}/{n} ({time.perf_counter() - started:.0f} s)", flush=True)
    return vectors, seconds, speech, found


def scores(truth: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict:
    predicted = [labels[i] for i in probs.argmax(axis=1)]
    report = classification_report(list(truth), predicted, LABELS)
    confidence = float(probs.max(axis=1).mean())
    return {
        "uar": round(report["uar"], 4),
        "accuracy": round(report["wa"], 4),
        "confidence": round(confidence, 4),
        "overconfidence": round(confidence - report["wa"], 4),
        "macro_f1": round(report["macro_f1"], 4),
        "recall": {k: round(v["recall"], 3) for k, v in report["per_class"].items()},
        "n": len(truth),
    }


def uar_of(truth_idx: np.ndarray, pred_idx: np.ndarray, weights: np.ndarray) -> float:
    """UAR with per-clip weights (bootstrap multiplicities)."""
    recalls = []
    for c in range(len(LABELS)):
        mask = truth_idx == c
        total = weights[mask].sum()
        if total > 0:
            recalls.append(weights[mask & (pred_idx == c)].sum() / total)
    return float(np.mean(recalls))


def bootstrap_drop(truth, predicted_by_d, speakers, seed: int, rounds: int = 2000) -> list[list[float]]:
    """95 % intervals of UAR(d) - UAR(full) over speaker resamples; the last column is full."""
    rng = np.random.default_rng(seed)
    unique, inverse = np.unique(speakers, return_inverse=True)
    truth_idx = np.array([LABELS.index(t) for t in truth])
    diffs = np.zeros((rounds, predicted_by_d.shape[0]))
    for r in range(rounds):
        counts = np.bincount(rng.integers(0, len(unique), len(unique)), minlength=len(unique))
        weights = counts[inverse].astype(float)
        full = uar_of(truth_idx, predicted_by_d[-1], weights)
        diffs[r] = [uar_of(truth_idx, p, weights) - full for p in predicted_by_d]
    low, high = np.percentile(diffs, [2.5, 97.5], axis=0)
    return [[round(float(a), 4), round(float(b), 4)] for a, b in zip(low, high, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--every", type=int, default=1, help="keep every N-th clip of each corpus")
    parser.add_argument("--corpora", default=",".join(CORPORA))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    wall = time.perf_counter()
    corpora = [c for c in args.corpora.split(",") if c]
    root = corpora_dir()
    backend = get_backend(args.profile)
    merge_gap = get_settings().vad_merge_gap
    items = [item for c in corpora for item in load_dataset(root / c, LABELS)[:: args.every]]
    print(f"{args.profile}: {len(items)} clips of {', '.join(corpora)}; full-clip features", flush=True)
    data = features_of(items, backend, jobs=args.jobs)
    items = data.items
    labels = np.array(data.labels)
    speakers = np.array(data.speakers)
    corpus_of = np.array([item.corpus for item in items])
    print(f"  {len(items)} vectors ({data.cache_hits} from the cache); crops", flush=True)
    crops, crop_seconds, speech_seconds, found = crop_vectors(
        backend, [item.path for item in items], DURATIONS, merge_gap
    )
    names = [str(d) for d in DURATIONS] + ["full"]
    # (n_clips, n_durations + 1, dim): the crops, then the full clip as in training.
    tests = np.concatenate([crops, data.vectors[:, None, :]], axis=1)

    def run_view(groups: list[np.ndarray]) -> np.ndarray:
        """Probabilities (n_durations + 1, n_clips, n_labels), every clip predicted by the model
        fit without its group."""
        probs = np.zeros((len(names), len(items), len(LABELS)))
        for test in groups:
            fitted = _fit(data.vectors[~test], list(labels[~test]), DEFAULT_KIND, {})
            order = [fitted.labels.index(label) for label in LABELS]
            for k in range(len(names)):
                probs[k, test] = fitted.predict_proba(tests[test, k])[:, order]
        return probs

    unique = sorted(set(speakers))
    fold_of = {s: i % FOLDS for i, s in enumerate(unique)}
    views = {
        "speaker_folds": [np.array([fold_of[s] == f for s in speakers]) for f in range(FOLDS)],
    }
    if len(corpora) > 1:
        views["leave_one_corpus_out"] = [corpus_of == c for c in corpora]
    results = {}
    for view, groups in views.items():
        probs = run_view(groups)
        rows = {}
        for k, name in enumerate(names):
            row = scores(labels, probs[k], LABELS)
            row["corpora"] = {
                c: {
                    key: scores(labels[corpus_of == c], probs[k][corpus_of == c], LABELS)[key]
                    for key in ("uar", "accuracy", "confidence")
                }
                for c in corpora
            }
            if k < len(DURATIONS):
                row["mean_crop_seconds"] = round(float(crop_seconds[:, k].mean()), 3)
                row["share_speech_shorter_than_d"] = round(
                    float((speech_seconds < DURATIONS[k] - 1e-6).mean()), 4
                )
            row["kept_margin_over_chance"] = None
            rows[name] = row
        full = rows["full"]["uar"]
        for row in rows.values():
            row["kept_margin_over_chance"] = round((row["uar"] - CHANCE) / (full - CHANCE), 3)
        if view == "speaker_folds":
            predicted = probs.argmax(axis=2)
            intervals = bootstrap_drop(labels, predicted, speakers, args.seed)
            for name, interval in zip(names, intervals, strict=True):
                rows[name]["uar_minus_full_95ci"] = interval
        results[view] = rows

    folds = results["speaker_folds"]
    minimum = next((d for d in DURATIONS if folds[str(d)]["kept_margin_over_chance"] >= KEEP), None)
    seconds = round(time.perf_counter() - wall, 1)
    entry = {
        "subset": {
            "corpora": corpora,
            "every_nth_clip": args.every,
            "n_clips": len(items),
            "n_speakers": len(unique),
        },
        "durations": names,
        "clips_without_silero_speech": int((~found).sum()),
        "median_speech_seconds": round(float(np.median(speech_seconds)), 3),
        "views": results,
        "recommended_minimum_seconds": minimum,
        "rule": f"shortest d with (UAR(d) - 1/6) / (UAR(full) - 1/6) >= {KEEP} in the speaker folds",
        "classifier": DEFAULT_KIND,
        "backend_model_id": backend.model_id,
        "wall_seconds": seconds,
        "command": "python scripts/benchmark_short.py " + " ".join(sys.argv[1:]),
    }
    for view, rows in results.items():
        print(f"\n{args.profile} / {view} (chance UAR {CHANCE:.3f})")
        head = f"{'d (s)':>6s} {'UAR':>6s} {'acc':>6s} {'conf':>6s} {'conf-acc':>8s} {'kept':>5s}"
        head += "".join(f" {c[:6]:>6s}" for c in corpora)
        head += "  UAR-full 95% CI" if view == "speaker_folds" else ""
        print(head)
        for name, row in rows.items():
            line = (
                f"{name:>6s} {row['uar']:6.3f} {row['accuracy']:6.3f} {row['confidence']:6.3f} "
                f"{row['overconfidence']:+8.3f} {row['kept_margin_over_chance']:5.2f}"
            )
            line += "".join(f" {row['corpora'][c]['uar']:6.3f}" for c in corpora)
            if "uar_minus_full_95ci" in row:
                low, high = row["uar_minus_full_95ci"]
                line += f"  [{low:+.3f}, {high:+.3f}]"
            print(line)
    print(f"\nrecommended minimum: {minimum} s ({entry['rule']}); wall {seconds} s")
    report = json.loads(OUT.read_text()) if OUT.is_file() else {}
    report.update({"version": ser_core.__version__, "labels": LABELS, "chance_uar": round(CHANCE, 4)})
    report.setdefault("profiles", {})[args.profile] = entry
    atomic_write_text(OUT, json.dumps(report, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
