"""Adapting the emotion model to the user's recordings: leave-one-corpus-out (four corpora, six
labels, all clips, clean, no copies) with the features of each corpus standardised by its own
statistics, and what happens when the test side is standardised by a batch that is small or not
balanced over emotions (a folder of calls is mostly neutral).

    python scripts/adaptation_experiments.py [--profile fast|accurate] [--shift-only]

Modes of the test side, the training side always per corpus (or pooled for `pooled`):
- pooled: trained on pooled raw features, tested raw (how models are trained now);
- single: trained per corpus, a test clip standardised by the pooled training statistics (what a
  single recording gets);
- align / align-typical: trained pooled, the test corpus standardised by its own statistics and
  mapped onto the pooled (typical) training corpus's;
- single-typical: trained per corpus, a test clip standardised by a typical training corpus's
  statistics (mean of the corpus means, RMS of their scales: what the shipped models do);
- corpus: the test corpus standardised by its own statistics (a big balanced batch);
- batch-N: random batches of N clips, each by its own statistics;
- skew-P: batches of 60 clips of which a share P is neutral (the rest balanced), UAR over all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from benchmark_robustness import CORPORA, LABELS, fit, probs_for, uar
from corpora import corpora_dir

from ser_core.plugins.lookup import get_backend
from ser_core.training.api import load_features


def standardised(x: np.ndarray, ref: np.ndarray | None = None, shift_only: bool = False) -> np.ndarray:
    ref = x if ref is None else ref
    out = x - ref.mean(axis=0)
    return out if shift_only else out / (ref.std(axis=0) + 1e-9)


def batches(labels: np.ndarray, size: int, neutral_share: float | None, rng: np.random.Generator) -> list[np.ndarray]:
    """Index batches covering the corpus once (random), or skewed batches drawn with replacement."""
    if neutral_share is None:
        order = rng.permutation(len(labels))
        return [order[k : k + size] for k in range(0, len(order), size)]
    neutral = np.flatnonzero(labels == "neutral")
    rest = np.flatnonzero(labels != "neutral")
    n_neutral = round(size * neutral_share)
    return [
        np.concatenate([rng.choice(neutral, n_neutral), rng.choice(rest, size - n_neutral, replace=False)])
        for _ in range(40)
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--shift-only", action="store_true", help="subtract the mean, keep the scale")
    args = parser.parse_args()
    root, backend = corpora_dir(), get_backend(args.profile)
    data = {}
    for corpus in CORPORA:
        f = load_features([root / corpus], backend, LABELS)
        data[corpus] = (np.asarray(f.vectors, np.float64), np.array(f.labels), np.array(f.speakers))
    std = lambda x, ref=None: standardised(x, ref, args.shift_only)  # noqa: E731
    rows: dict[str, list[float]] = {}
    for held in CORPORA:
        train = [c for c in CORPORA if c != held]
        x_test, y_test, _ = data[held]
        pooled_x = np.concatenate([data[c][0] for c in train])
        y_train = [lab for c in train for lab in data[c][1]]
        pooled = fit(pooled_x, y_train)
        adapted = fit(np.concatenate([std(data[c][0]) for c in train]), y_train)
        score = lambda model, x, truth=y_test.tolist(): uar(truth, probs_for(model, x))  # noqa: E731
        rows.setdefault("pooled", []).append(score(pooled, x_test))
        rows.setdefault("single", []).append(score(adapted, std(x_test, pooled_x)))
        rows.setdefault("corpus", []).append(score(adapted, std(x_test)))
        aligned = std(x_test) * (1 if args.shift_only else pooled_x.std(axis=0)) + pooled_x.mean(axis=0)
        rows.setdefault("align", []).append(score(pooled, aligned))
        typical_mean = np.mean([data[c][0].mean(axis=0) for c in train], axis=0)
        typical_std = np.sqrt(np.mean([data[c][0].var(axis=0) for c in train], axis=0))
        rows.setdefault("align-typical", []).append(score(pooled, std(x_test) * typical_std + typical_mean))
        rows.setdefault("single-typical", []).append(score(adapted, (x_test - typical_mean) / typical_std))
        rng = np.random.default_rng(0)
        for size in (10, 30, 100):
            probs = np.zeros((len(x_test), len(LABELS)))
            for b in batches(y_test, size, None, rng):
                probs[b] = probs_for(adapted, std(x_test[b]))
            rows.setdefault(f"batch-{size}", []).append(uar(y_test.tolist(), probs))
        for share in (0.5, 0.8):
            truth, adapted_p, pooled_p = [], [], []
            for b in batches(y_test, 60, share, rng):
                truth += y_test[b].tolist()
                adapted_p.append(probs_for(adapted, std(x_test[b])))
                pooled_p.append(probs_for(pooled, x_test[b]))
            rows.setdefault(f"skew-{share} pooled", []).append(uar(truth, np.concatenate(pooled_p)))
            rows.setdefault(f"skew-{share}", []).append(uar(truth, np.concatenate(adapted_p)))
    for corpus in CORPORA:  # within the corpus, speaker-independent (5 speaker folds), raw features
        x, y, s = data[corpus]
        groups = np.array_split(np.array(sorted(set(s)), dtype=object), 5)
        probs = np.zeros((len(x), len(LABELS)))
        for group in groups:
            test = np.isin(s, group)
            probs[test] = probs_for(fit(x[~test], y[~test].tolist()), x[test])
        rows.setdefault("within pooled", []).append(uar(y.tolist(), probs))
    print(f"{args.profile} ({backend.model_id}) shift_only={args.shift_only}")
    for name, scores in rows.items():
        cells = " ".join(f"{c} {s:.3f}" for c, s in zip(CORPORA, scores, strict=True))
        print(f"  {name:18s} {cells} mean {np.mean(scores):.3f}", flush=True)


if __name__ == "__main__":
    main()
