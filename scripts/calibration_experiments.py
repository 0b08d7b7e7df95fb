"""Which temperature calibrates a model on a corpus it never saw? Nested over all clips of the four
corpora (the benchmark uses 40 per label): for each held-out corpus, the model is trained on the
other three (training copies, corpora balanced, as shipped) and its temperature is fit without
the held-out corpus, by leave-one-corpus-out inside the three ("new corpus"), on 20 % held-out
speakers of the three ("new speaker"), or as their geometric mean (what `ser_core.training.api.calibrate`
ships); "oracle" is fit on the held-out corpus itself. Prints each and the ECE over all four.

    python scripts/calibration_experiments.py [--profile fast|accurate]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from benchmark_robustness import CORPORA, LABELS, Vectors, fit, probs_for, stable_seed
from corpora import corpora_dir

from ser_core.models.calibration import fit_temperature, scale
from ser_core.plugins.lookup import get_backend
from ser_core.training.api import heldout_speakers
from ser_core.training.datasets import load_dataset
from ser_core.training.metrics import calibration_report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="fast")
    args = parser.parse_args()
    root = corpora_dir()
    vec = Vectors(get_backend(args.profile), root)
    data = {}
    for corpus in CORPORA:
        items = load_dataset(root / corpus, LABELS)
        paths = [Path(item.path) for item in items]
        talkers = list(np.random.default_rng(stable_seed("talkers", corpus)).choice(np.array(paths, dtype=object), 30, replace=False))
        data[corpus] = {
            "clean": vec.clean(paths),
            "copy": vec.transformed("training-copy", paths, talkers, corpus),  # the benchmark's cache
            "labels": np.array([item.label for item in items]),
            "speakers": np.array([str(item.speaker) for item in items]),
        }

    def train(corpora: list[str], keep: dict[str, np.ndarray] | None = None):
        xs, ys, ws = [], [], []
        for c in corpora:
            k = keep[c] if keep else np.ones(len(data[c]["labels"]), bool)
            xs += [data[c]["clean"][k], data[c]["copy"][k]]
            ys += data[c]["labels"][k].tolist() * 2
            ws.append(np.full(2 * int(k.sum()), 1.0 / k.sum()))
        return fit(np.concatenate(xs), ys, np.concatenate(ws))

    def truth(corpus: str, keep: np.ndarray | None = None) -> np.ndarray:
        labels = data[corpus]["labels"] if keep is None else data[corpus]["labels"][keep]
        return np.array([LABELS.index(label) for label in labels])

    scaled: dict[str, list[np.ndarray]] = {"new corpus": [], "new speaker": [], "geometric mean": [], "oracle": []}
    answers = []
    for held in CORPORA:
        outer = [c for c in CORPORA if c != held]
        inner = [(probs_for(train([c for c in outer if c != i]), data[i]["clean"]), truth(i)) for i in outer]
        t_corpus = fit_temperature(np.concatenate([p for p, _ in inner]), np.concatenate([t for _, t in inner]))
        chosen = heldout_speakers([s for c in outer for s in data[c]["speakers"]], 0.2, 0)
        out = {c: np.isin(data[c]["speakers"], list(chosen)) for c in outer}
        probe = train(outer, {c: ~out[c] for c in outer})
        t_speaker = fit_temperature(
            np.concatenate([probs_for(probe, data[c]["clean"][out[c]]) for c in outer]),
            np.concatenate([truth(c, out[c]) for c in outer]),
        )
        probs = probs_for(train(outer), data[held]["clean"])
        t_oracle = fit_temperature(probs, truth(held))
        temperatures = {"new corpus": t_corpus, "new speaker": t_speaker,
                        "geometric mean": float(np.sqrt(t_corpus * t_speaker)), "oracle": t_oracle}
        print(held, " ".join(f"{k} {v:.2f}" for k, v in temperatures.items()), flush=True)
        for kind, t in temperatures.items():
            scaled[kind].append(scale(probs, t))
        answers.append(truth(held))
    for kind, parts in scaled.items():
        report = calibration_report(np.concatenate(parts), np.concatenate(answers))
        print(f"ECE {kind}: {report['ece']:.3f} (mean confidence {report['mean_confidence']:.3f}, accuracy {report['accuracy']:.3f})")


if __name__ == "__main__":
    main()
