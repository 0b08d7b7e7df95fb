"""Speaker-independent evaluation of the handcrafted `fast` features on Emo-DB, EMOVO and RAVDESS.

Usage (from the repository root, with the project venv):

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
        .venv/bin/python scripts/feature_experiments.py [--module PATH] [--c 0.03 0.1] [--rtf]

* Audio is decoded once and cached in /tmp/ser_feature_cache (float32, 16 kHz mono).
* Pooled utterance vectors are cached there too, keyed by a hash of the features module's source, so
  editing the module invalidates the cache automatically.
* Protocol: Emo-DB and EMOVO leave-one-speaker-out, RAVDESS six actor-grouped folds (1-3, ..., 16-18).
  No speaker normalisation: the only statistics are those of StandardScaler fitted on the training fold.
* Classifier: StandardScaler + multinomial LogisticRegression (lbfgs, balanced class weights, as in
  ser_core.models.classifiers.LogisticClassifier); `--c` sweeps its C.
* Metrics: UAR (balanced accuracy), WA (accuracy), macro-F1, pooled over all test folds' predictions
  (each file is predicted exactly once).
* `--rtf` times frames+pool per file on one thread (decoding excluded) and reports wall/audio seconds
  per corpus (the budget is <= 0.003 on every corpus).
* `--set NAME=VALUE` (repeatable) evaluates a variant of the module with a module-level constant
  replaced (the line `NAME = ...` is rewritten), e.g. `--set MOD_EDGES_HZ="(2, 4, 8, 16, 32)"`;
  the variant is written to the cache folder, so ablations need no edits of the real module.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import sys
import time
from itertools import pairwise
from pathlib import Path
from types import ModuleType

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
CORPORA = Path(os.environ.get("SER_CORPORA", ROOT.parent / "shared" / "corpora"))
if not CORPORA.exists():
    CORPORA = Path("/work/shared/corpora")
CACHE = Path("/tmp/ser_feature_cache")
DEFAULT_MODULE = ROOT / "plugins/ser_backend_handcrafted/src/ser_backend_handcrafted/features.py"
CHOSEN_C = 0.01  # one common C: best mean UAR over the three corpora (swept 0.005-0.1)


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"features_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _label_speaker(corpus: str, path: Path) -> tuple[str, str]:
    name = path.stem
    if corpus == "emodb":
        return name[5], name[:2]
    if corpus == "emovo":
        emotion, speaker, _ = name.split("-")
        return emotion, speaker
    fields = name.split("-")
    actor = int(fields[6])
    return fields[2], f"fold{(actor - 1) // 3}"


def load_corpus(corpus: str) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Decoded signals, labels and speaker (or fold) groups; cached as one flat float32 array."""
    CACHE.mkdir(parents=True, exist_ok=True)
    cache = CACHE / f"audio_{corpus}.npz"
    if not cache.exists():
        import soundfile as sf

        files = sorted((CORPORA / corpus).rglob("*.flac"))
        signals, labels, groups = [], [], []
        for path in files:
            audio, sr = sf.read(path, dtype="float32", always_2d=True)
            assert sr == 16000
            signals.append(audio.mean(axis=1))
            label, group = _label_speaker(corpus, path)
            labels.append(label)
            groups.append(group)
        offsets = np.cumsum([0] + [len(s) for s in signals])
        np.savez(cache, audio=np.concatenate(signals), offsets=offsets, labels=labels, groups=groups)
    data = np.load(cache)
    audio, offsets = data["audio"], data["offsets"]
    signals = [audio[a:b] for a, b in pairwise(offsets)]
    return signals, data["labels"], data["groups"]


def variant(module_path: Path, settings: list[str]) -> Path:
    """A copy of the module with module-level constants rewritten (`NAME=VALUE` each)."""
    if not settings:
        return module_path
    lines = module_path.read_text().splitlines()
    for setting in settings:
        name, value = setting.split("=", 1)
        hits = [
            i for i, line in enumerate(lines) if line.startswith(f"{name} = ") or line.startswith(f"{name}: ")
        ]
        if len(hits) != 1:
            raise SystemExit(f"--set {name}: expected one module-level assignment, found {len(hits)}")
        lines[hits[0]] = f"{name} = {value}"
    text = "\n".join(lines) + "\n"
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"variant_{hashlib.sha1(text.encode()).hexdigest()[:12]}.py"
    path.write_text(text)
    return path


def extract(module_path: Path, corpus: str) -> np.ndarray:
    digest = hashlib.sha1(module_path.read_bytes()).hexdigest()[:12]
    cache = CACHE / f"x_{corpus}_{digest}.npy"
    if cache.exists():
        return np.load(cache)
    features = load_module(module_path).HandcraftedFeatures()
    signals, _, _ = load_corpus(corpus)
    x = np.stack([features.pool(features.frames(s)) for s in signals])
    assert x.shape[1] == features.dim == len(features.names)
    np.save(cache, x)
    return x


def evaluate(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, c: float, classifier: str = "lr"
) -> dict[str, float]:
    from joblib import Parallel, delayed
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    def fold(test_group: str) -> tuple[np.ndarray, np.ndarray]:
        test = groups == test_group
        if classifier == "svm":
            model = LinearSVC(C=c, max_iter=20000, class_weight="balanced")
        else:
            model = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
        pipeline = make_pipeline(StandardScaler(), model)
        pipeline.fit(x[~test], y[~test])
        return np.flatnonzero(test), pipeline.predict(x[test])

    predicted = np.empty_like(y)
    for index, labels in Parallel(n_jobs=2)(delayed(fold)(g) for g in np.unique(groups)):
        predicted[index] = labels
    return {
        "uar": balanced_accuracy_score(y, predicted),
        "wa": accuracy_score(y, predicted),
        "f1": f1_score(y, predicted, average="macro"),
    }


def measure_rtf(module_path: Path, corpus: str) -> float:
    features = load_module(module_path).HandcraftedFeatures()
    signals, _, _ = load_corpus(corpus)
    features.pool(features.frames(signals[0]))  # warm the cached tables
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        for signal in signals:
            features.pool(features.frames(signal))
        best = min(best, time.perf_counter() - start)
    seconds = sum(len(s) for s in signals) / 16000
    return best / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", type=Path, default=DEFAULT_MODULE)
    parser.add_argument("--c", type=float, nargs="+", default=[CHOSEN_C])
    parser.add_argument("--classifier", choices=["lr", "svm"], default="lr")
    parser.add_argument("--corpora", nargs="+", default=["emodb", "emovo", "ravdess"])
    parser.add_argument("--rtf", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args()
    args.module = variant(args.module, args.set)

    data = {}
    for corpus in args.corpora:
        start = time.perf_counter()
        _, y, groups = load_corpus(corpus)
        x = extract(args.module, corpus)
        data[corpus] = (x, y, groups)
        print(
            f"{corpus}: {x.shape[0]} files, {x.shape[1]} dims ({time.perf_counter() - start:.1f}s)",
            flush=True,
        )
    for c in args.c:
        row, uars = [], []
        for corpus, (x, y, groups) in data.items():
            scores = evaluate(x, y, groups, c, args.classifier)
            uars.append(scores["uar"])
            row.append(f"{corpus} UAR {scores['uar']:.3f} WA {scores['wa']:.3f} F1 {scores['f1']:.3f}")
        print(f"C={c:<7g} " + " | ".join(row) + f" | mean UAR {np.mean(uars):.3f}", flush=True)
    if args.rtf:
        rtfs = "  ".join(f"{corpus} {measure_rtf(args.module, corpus):.5f}" for corpus in args.corpora)
        print(f"RTF (frames+pool, one thread): {rtfs}")


if __name__ == "__main__":
    main()
