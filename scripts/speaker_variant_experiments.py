"""Two more speaker-vector variants against the shipped LDA projection, on the benchmark's own
conversations and protocol (`benchmark_speakers.py`: leave one corpus out, 6 conversations each of
1-4 speakers per corpus, seed 0):

- `region`: one vector per speech region (the unit mean of its projected windows), clustered, and
  each window given its region's speaker (a region rarely holds two voices);
- `mlp`: the hidden layer (128 ReLU units) of a scikit-learn MLP trained to tell the training
  corpora's speakers apart from GE2E window vectors, clustered by cosine distance.

    python scripts/speaker_variant_experiments.py

Prints mean DER and the share of conversations whose speaker count is right, per number of speakers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from benchmark_speakers import compose, score
from corpora import corpora_dir
from fit_speaker_projection import CORPORA, clip_windows, fit

from ser_core.builtin_plugins import speakers as ge2e
from ser_core.pipeline.vad import speech_regions
from ser_core.settings import get_settings
from ser_core.training.datasets import load_dataset


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-9)


def clusters(vectors: np.ndarray, count: int | None, threshold: float) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    if len(vectors) < 2 or count == 1:
        return np.zeros(len(vectors), int)
    return AgglomerativeClustering(
        n_clusters=count, distance_threshold=None if count else threshold, metric="cosine", linkage="average"
    ).fit_predict(vectors)


def main() -> None:
    from sklearn.neural_network import MLPClassifier

    settings = get_settings()
    diarizer = ge2e.GE2E(settings)
    rng = np.random.default_rng(0)
    found: dict[int, list[dict]] = {}
    for corpus in CORPORA:
        others = [c for c in CORPORA if c != corpus]
        diarizer.projection = fit(others)
        parts = [clip_windows(c) for c in others]
        x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        mean = x.mean(axis=0)
        mlp = MLPClassifier((128,), alpha=1e-2, max_iter=300, random_state=0, early_stopping=True).fit(x - mean, y)
        clips: dict[str, list] = {}
        for item in load_dataset(corpora_dir() / corpus):
            clips.setdefault(str(item.speaker), []).append(item.path)
        for n in (1, 2, 3, 4):
            for _ in range(6):
                signal, reference = compose(clips, n, rng)
                regions = speech_regions(signal, settings.vad, settings.vad_merge_gap)
                spans, vectors = diarizer.embed(signal, regions)
                projected = diarizer.projection.apply(vectors)
                centres = spans.mean(axis=1)
                region = np.array([np.argmin(np.maximum(regions[:, 0] - c, 0) + np.maximum(c - regions[:, 1], 0)) for c in centres])
                ids = np.unique(region)
                means = unit(np.stack([projected[region == r].mean(axis=0) for r in ids]))
                hidden = unit(np.maximum((vectors - mean) @ mlp.coefs_[0] + mlp.intercepts_[0], 0))
                row = {}
                for name, count in (("true N", n), ("estimated", None)):
                    row[f"lda, {name}"] = score(reference, regions, spans, diarizer.assign(vectors, count))
                    by_region = clusters(means, count, ge2e.THRESHOLD)[np.searchsorted(ids, region)]
                    row[f"region, {name}"] = score(reference, regions, spans, by_region)
                    row[f"mlp, {name}"] = score(reference, regions, spans, clusters(hidden, count, 0.2))
                found.setdefault(n, []).append(row)
        print(corpus, "done", flush=True)
    for n, rows in found.items():
        print(n, {k: (round(float(np.mean([r[k]["der"] for r in rows])), 3), round(float(np.mean([r[k]["count"] == n for r in rows])), 2)) for k in rows[0]})


if __name__ == "__main__":
    main()
