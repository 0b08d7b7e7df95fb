"""Leave-one-corpus-out (four corpora, six labels) of the fast features with and without
normalisation: the input level set to -25 dBFS (speech frames), and features standardised per
corpus (each corpus by its own mean and standard deviation, the test corpus included: what a
two-pass analysis of a batch of recordings from one source could do).

    python scripts/normalisation_experiments.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from benchmark_robustness import CORPORA, LABELS, fit, probs_for, uar
from corpora import corpora_dir

from ser_core import channels
from ser_core.audio import load_audio
from ser_core.backend import get_backend
from ser_core.datasets import load_dataset


def standardised(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-9)


def main() -> None:
    root, backend = corpora_dir(), get_backend("fast")
    data = {}
    for corpus in CORPORA:
        items = load_dataset(root / corpus, LABELS)
        signals = [load_audio(item.path) for item in items]
        raw = np.array(backend.embed_many(signals))
        levelled = np.array(backend.embed_many([channels.at_level(x, -25.0) for x in signals]))
        data[corpus] = {"raw": raw, "level": levelled, "labels": [item.label for item in items]}
    variants = {
        "as extracted": lambda c, kind: data[c][kind],
        "per-corpus standardised": lambda c, kind: standardised(data[c][kind]),
    }
    for name, view in variants.items():
        for kind in ("raw", "level"):
            scores = []
            for held in CORPORA:
                train = [c for c in CORPORA if c != held]
                model = fit(np.concatenate([view(c, kind) for c in train]), [lab for c in train for lab in data[c]["labels"]])
                scores.append(uar(data[held]["labels"], probs_for(model, view(held, kind))))
            cells = " ".join(f"{c} {s:.3f}" for c, s in zip(CORPORA, scores, strict=True))
            print(f"{name:24s} {'level -25 dBFS' if kind == 'level' else 'input level':14s} {cells} mean {np.mean(scores):.3f}")


if __name__ == "__main__":
    main()
