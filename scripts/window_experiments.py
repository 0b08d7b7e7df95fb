"""Does training on utterances *plus* their sliding windows help the utterance model and the timeline?

Usage (from the repository root, with the project venv):

    .venv/bin/python scripts/window_experiments.py --extract   # once: vectors to /tmp/win_cache
    .venv/bin/python scripts/window_experiments.py             # evaluate every variant

* Features: the `fast` backend. Frames are computed once per file; the utterance vector is
  `pool(frames)` and window vectors come from `embed_windows(frames, window_spans(dur, L, 1.0))`
  (exactly what `ser_core.pipeline.analysis.analyze` does for the timeline), for L = 2.0 s and 1.5 s.
  Utterances no longer than L have no windows (their only "window" would be the utterance itself).
* Protocol: Emo-DB and EMOVO leave-one-speaker-out; RAVDESS actors 01-18 in six folds of three
  sorted, contiguous actors. No speaker normalisation. Metrics pooled over all test folds.
* Training variants (each window row carries its utterance's label):
    utt        utterance vectors only (the current baseline)
    utt+w2     utterances + 2 s windows (hop 1 s)
    utt+w1.5   utterances + 1.5 s windows (hop 1 s)
    utt*3+w2   utterance rows repeated 3 times + 2 s windows (windows weighted lower)
    w2only     2 s windows, plus the utterances that have no window
* Test views per trained model:
    utt    the utterance vector                                  -> UAR / WA / macro-F1
    fuse   mean log-posterior over [utterance vector + its windows] (the window length the
           model was trained with; 2 s for `utt`)               -> UAR / WA / macro-F1
    win    every 2 s window (hop 1 s) of test utterances >= 2.5 s, labelled with the utterance
           label (the timeline's view)                           -> window-level UAR / WA
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from multiprocessing import Pool
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np

CACHE = Path(os.environ.get("SER_WIN_CACHE", "/tmp/win_cache"))
CORPORA_ROOT = Path(os.environ.get("SER_CORPORA", "/work/shared/corpora"))
CORPORA = ("emodb", "emovo", "ravdess")
LENGTHS = {"w2": 2.0, "w1.5": 1.5}
HOP = 1.0
MIN_TEST_SECONDS = 2.5
KINDS = ("shrinkage_lda", "logistic")
VARIANTS = ("utt", "utt+w2", "utt+w1.5", "utt*3+w2", "w2only")


# --- extraction ---------------------------------------------------------------------------------


def _embed_file(path: str) -> dict[str, np.ndarray | float]:
    from ser_core.pipeline.analysis import window_spans
    from ser_core.pipeline.audio import duration_seconds, load_audio
    from ser_core.plugins.lookup import get_backend

    backend = get_backend("fast")
    signal = load_audio(path)
    duration = duration_seconds(signal)
    frames = backend.frames(signal)
    out: dict[str, np.ndarray | float] = {"dur": duration, "utt": backend.pool(frames).astype(np.float32)}
    for name, length in LENGTHS.items():
        if duration > length:
            out[name] = backend.embed_windows(frames, window_spans(duration, length, HOP))
        else:
            out[name] = np.empty((0, backend.dim), np.float32)
    return out


def extract(jobs: int) -> None:
    from ser_core.training.datasets import load_dataset

    CACHE.mkdir(parents=True, exist_ok=True)
    for corpus in CORPORA:
        start = time.time()
        items = load_dataset(str(CORPORA_ROOT / corpus))
        with Pool(jobs) as pool:
            rows = pool.map(_embed_file, [str(item.path) for item in items], chunksize=8)
        arrays: dict[str, np.ndarray] = {
            "U": np.stack([r["utt"] for r in rows]),
            "dur": np.array([r["dur"] for r in rows]),
            "y": np.array([item.label for item in items]),
            "s": np.array([item.speaker for item in items]),
        }
        for name in LENGTHS:
            arrays[f"W_{name}"] = np.concatenate([r[name] for r in rows])
            arrays[f"o_{name}"] = np.concatenate([np.full(len(r[name]), i) for i, r in enumerate(rows)])
        np.savez(CACHE / f"{corpus}.npz", **arrays)
        print(
            f"{corpus}: {len(items)} files, "
            + ", ".join(f"{n} {len(arrays[f'W_{n}'])} windows" for n in LENGTHS)
            + f", {time.time() - start:.0f}s",
            flush=True,
        )


# --- evaluation ---------------------------------------------------------------------------------


def load(corpus: str) -> dict[str, np.ndarray]:
    data = dict(np.load(CACHE / f"{corpus}.npz"))
    speakers = data["s"]
    if corpus == "ravdess":
        order = sorted(np.unique(speakers))
        data["g"] = np.array([f"fold{order.index(s) // 3}" for s in speakers])
    else:
        data["g"] = speakers
    return data


def _train_set(data: dict[str, np.ndarray], train: np.ndarray, variant: str) -> tuple[np.ndarray, np.ndarray]:
    u, y = data["U"][train], data["y"][train]
    if variant == "utt":
        return u, y
    wname = "w1.5" if variant == "utt+w1.5" else "w2"
    owners = data[f"o_{wname}"]
    keep = np.isin(owners, train)
    w, wy = data[f"W_{wname}"][keep], data["y"][owners[keep]]
    if variant == "w2only":
        no_window = np.setdiff1d(train, owners)
        return np.concatenate([w, data["U"][no_window]]), np.concatenate([wy, data["y"][no_window]])
    repeat = 3 if variant.startswith("utt*3") else 1
    return np.concatenate([np.repeat(u, repeat, 0), w]), np.concatenate([np.repeat(y, repeat), wy])


def _log(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, 1e-12, None))


def run(task: tuple[str, str]) -> dict:
    corpus, kind = task
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from ser_core.plugins.lookup import make_classifier

    data = load(corpus)
    groups = data["g"]
    n = len(groups)
    preds = {v: {"utt": np.empty(n, object), "fuse": np.empty(n, object)} for v in VARIANTS}
    win_true: list[str] = []
    fold_of_win: list[str] = []
    win_pred: dict[str, list[str]] = {v: [] for v in VARIANTS}
    start = time.time()
    for group in sorted(np.unique(groups)):
        test = np.flatnonzero(groups == group)
        train = np.flatnonzero(groups != group)
        for variant in VARIANTS:
            x, y = _train_set(data, train, variant)
            model = make_classifier(kind).fit(x.astype(np.float64), [str(v) for v in y])
            labels = np.array(model.labels)
            lu = _log(model.predict_proba(data["U"][test]))
            preds[variant]["utt"][test] = labels[lu.argmax(1)]
            wname = "w1.5" if variant == "utt+w1.5" else "w2"
            owners = data[f"o_{wname}"]
            keep = np.isin(owners, test)
            lw = _log(model.predict_proba(data[f"W_{wname}"][keep]))
            sums = lu.copy()
            counts = np.ones(len(test))
            pos = np.searchsorted(test, owners[keep])
            np.add.at(sums, pos, lw)
            np.add.at(counts, pos, 1)
            preds[variant]["fuse"][test] = labels[(sums / counts[:, None]).argmax(1)]
            # timeline view: 2 s windows of test utterances >= 2.5 s
            o2 = data["o_w2"]
            long_test = test[data["dur"][test] >= MIN_TEST_SECONDS]
            sel = np.isin(o2, long_test)
            pw = model.predict_proba(data["W_w2"][sel])
            win_pred[variant].extend(labels[pw.argmax(1)].tolist())
            if variant == VARIANTS[0]:
                win_true.extend(data["y"][o2[sel]].tolist())
                fold_of_win.extend([str(group)] * int(sel.sum()))
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    # per-fold window scores: a speaker may lack some classes among its long utterances
    warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")

    def scores(true, pred) -> dict[str, float]:
        true, pred = np.asarray(true, str), np.asarray(pred, str)
        if len(true) == 0:  # e.g. Emo-DB here: every file is exactly 2.0 s, so no 2 s windows
            return {"uar": float("nan"), "wa": float("nan"), "f1": float("nan")}
        return {
            "uar": balanced_accuracy_score(true, pred),
            "wa": accuracy_score(true, pred),
            "f1": f1_score(true, pred, average="macro"),
        }

    out = {"corpus": corpus, "kind": kind, "n": n, "n_windows_test": len(win_true), "results": {}}
    for variant in VARIANTS:
        out["results"][variant] = {
            "utt": scores(data["y"], preds[variant]["utt"]),
            "fuse": scores(data["y"], preds[variant]["fuse"]),
            "win": scores(win_true, win_pred[variant]),
        }
    # per-fold paired comparison against the baseline: in how many folds does each variant win?
    folds = sorted(np.unique(groups))
    fold_arr, wt = np.asarray(fold_of_win), np.asarray(win_true, str)
    out["folds_better"] = {}
    for variant in VARIANTS[1:]:
        counts = {}
        for view in ("utt", "win"):
            diffs = []
            for group in folds:
                if view == "utt":
                    m = groups == group
                    t, a, b = data["y"][m], preds["utt"]["utt"][m], preds[variant]["utt"][m]
                else:
                    m = fold_arr == group
                    if not m.any():
                        continue
                    t, a, b = wt[m], np.asarray(win_pred["utt"])[m], np.asarray(win_pred[variant])[m]
                diffs.append(scores(t, b)["uar"] - scores(t, a)["uar"])
            d = np.asarray(diffs)
            counts[view] = f"{int((d > 1e-9).sum())}+/{int((d < -1e-9).sum())}-/{len(d)}"
        out["folds_better"][variant] = counts
    out["seconds"] = time.time() - start
    print(f"done {corpus} {kind} in {out['seconds']:.0f}s", flush=True)
    return out


def table(results: list[dict]) -> str:
    lines = []
    for kind in KINDS:
        lines.append(f"\n## {kind}")
        lines.append(
            "| corpus | variant | utt UAR | utt WA | utt F1 | fuse UAR | fuse WA | fuse F1 | win UAR | win WA | folds +/-: utt, win |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for res in results:
            if res["kind"] != kind:
                continue
            for variant, r in res["results"].items():
                lines.append(
                    f"| {res['corpus']} | {variant} | "
                    + " | ".join(f"{r[view][m]:.3f}" for view in ("utt", "fuse") for m in ("uar", "wa", "f1"))
                    + f" | {r['win']['uar']:.3f} | {r['win']['wa']:.3f} | "
                    + " ".join(res["folds_better"].get(variant, {}).values())
                    + " |"
                )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extract", action="store_true", help="compute and cache vectors")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--corpora", nargs="*", default=list(CORPORA))
    parser.add_argument("--kinds", nargs="*", default=list(KINDS))
    args = parser.parse_args()
    if args.extract:
        extract(args.jobs)
        return
    tasks = [(c, k) for k in args.kinds for c in args.corpora]
    with Pool(args.jobs) as pool:
        results = pool.map(run, tasks, chunksize=1)
    order = {c: i for i, c in enumerate(CORPORA)}
    results.sort(key=lambda r: (r["kind"], order[r["corpus"]]))
    (CACHE / "results.json").write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
