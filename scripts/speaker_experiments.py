"""Speaker diarization experiments for issue 14: GE2E embeddings made less emotion-dependent.

    OMP_NUM_THREADS=1 python scripts/speaker_experiments.py [--per 6] [--window 1.6]

Builds on scripts/speaker_prototypes.py (GE2E, compose, hypothesis, spectral, at_level). What is
new here:

- projections learned on the corpora's clips with speaker labels (every 1.6 s window inside each
  clip's speech extent, one centred window for a shorter clip): LDA (scikit-learn, speaker as class),
  WCCN, NAP (the top-k directions of within-speaker scatter removed), a global-mean control;
- per-conversation centring;
- counts from an agglomerative distance threshold (tuned on dev conversations, reported on test
  ones) or from the eigengap; 1-speaker "conversations" (one speaker, mixed emotions, 60-180 s).

Protocols, never scoring a speaker the projection was fit on:
  loco:     for each corpus C, fit on the clips of the other three, score conversations composed
            only of C's speakers;
  disjoint: the speakers of every corpus split in two halves (alternating in sorted order); fit on
            one half, score conversations of the other half (both ways).
Within each protocol, the even-numbered conversations are dev (threshold chosen there), the odd
ones test (reported). Also `bench`: the benchmark's own 36 conversations (seed 0), scored without a
projection (a check that this script reproduces the benchmark) and with the all-corpora projection
(in-sample: not an honest figure, only for reference).

Writes reports/speaker-experiments.json and, for the
chosen recipe, /tmp/ge2e_projection.npz (mean (256,), matrix (256, k): projected = (x - mean) @ matrix,
then L2-normalised).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zlib
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from corpora import ROOT, corpora_dir
from speaker_prototypes import CORPORA, GE2E, STEP, annotation, at_level, compose, spectral

from ser_core.contract.signals import SAMPLE_RATE, speech_extent
from ser_core.pipeline.audio import load_audio
from ser_core.pipeline.vad import speech_regions
from ser_core.settings import get_settings
from ser_core.training.datasets import load_dataset

HOP = 0.4


def windows(regions: np.ndarray, duration: float, window: float) -> np.ndarray:
    """As benchmark_speakers.windows, with the window length a parameter."""
    out = []
    for start, end in regions:
        if end - start <= window:
            middle = (start + end) / 2
            out.append((max(0.0, middle - window / 2), min(duration, middle + window / 2)))
            continue
        out += [(s, s + window) for s in np.arange(start, end - window + 1e-9, HOP)]
    return np.array(out).reshape(-1, 2)


def embed_spans(encoder: GE2E, signal: np.ndarray, spans: np.ndarray, window: float, level: bool) -> np.ndarray:
    size = int(window * SAMPLE_RATE)
    cut = [signal[int(a * SAMPLE_RATE) : int(a * SAMPLE_RATE) + size] for a, _ in spans]
    cut = [np.pad(p, (0, size - len(p))) for p in cut]
    if level:
        cut = [at_level(p) for p in cut]
    out = []
    for i in range(0, len(cut), 256):
        out.append(encoder.embed(np.stack([encoder.mel(p) for p in cut[i : i + 256]])))
    return np.concatenate(out)


# ----------------------------------------------------------------------------- training clips


def clip_embeddings(encoder: GE2E, pool: dict, window: float) -> dict:
    """Every clip's windows embedded, plain and at -30 dBFS; with speaker, corpus, clip index."""
    rows = {"plain": [], "level": [], "speaker": [], "corpus": [], "clip": []}
    began = time.time()
    index = 0
    for corpus in CORPORA:
        for speaker, file in pool[corpus]:
            signal = load_audio(file)
            start, end = speech_extent(signal, pad=0.0)
            spans = windows(np.array([[start, end]]), len(signal) / SAMPLE_RATE, window)
            for key, level in (("plain", False), ("level", True)):
                rows[key].append(embed_spans(encoder, signal, spans, window, level))
            rows["speaker"] += [speaker] * len(spans)
            rows["corpus"] += [corpus] * len(spans)
            rows["clip"] += [index] * len(spans)
            index += 1
        print("clips", corpus, index, round(time.time() - began), flush=True)
    out = {k: (np.concatenate(v) if k in ("plain", "level") else np.array(v)) for k, v in rows.items()}
    return out


# ----------------------------------------------------------------------------- conversations


def compose_one(pool: dict, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """One speaker's clips (mixed emotions) with pauses, 60-180 s."""
    everyone = sorted({s for c in CORPORA for s, _ in pool[c]})
    speaker = rng.choice(everyone)
    clips = [p for c in CORPORA for s, p in pool[c] if s == speaker]
    target = rng.uniform(60.0, 180.0)
    parts, reference, now = [], [], 0.0
    while now < target:
        path = clips[int(rng.integers(len(clips)))]
        pause = np.zeros(int(rng.uniform(0.2, 1.0) * SAMPLE_RATE), np.float32)
        clip = load_audio(path)
        start, end = speech_extent(clip, pad=0.0)
        reference.append((now + len(pause) / SAMPLE_RATE + start, now + len(pause) / SAMPLE_RATE + end, speaker))
        parts += [pause, clip]
        now += (len(pause) + len(clip)) / SAMPLE_RATE
    return np.concatenate(parts), reference


def restricted(pool: dict, keep: set) -> dict:
    return {c: [(s, p) for s, p in pool[c] if s in keep] for c in CORPORA}


def halves(pool: dict) -> list[set]:
    out = [set(), set()]
    for c in CORPORA:
        for i, s in enumerate(sorted({s for s, _ in pool[c]})):
            out[i % 2].add(s)
    return out


def conversation(encoder: GE2E, settings, signal: np.ndarray, reference: list, window: float) -> dict:
    began = time.perf_counter()
    regions = speech_regions(signal, settings.vad, settings.vad_merge_gap)
    spans = windows(regions, len(signal) / SAMPLE_RATE, window)
    level = embed_spans(encoder, signal, spans, window, True)
    cost = time.perf_counter() - began  # VAD + windows + mel + encoder, level variant
    plain = embed_spans(encoder, signal, spans, window, False)
    return {
        "regions": regions,
        "spans": spans,
        "level": level,
        "plain": plain,
        "reference": reference,
        "speakers": len({s for _, _, s in reference}),
        "names": sorted({s for _, _, s in reference}),
        "seconds": len(signal) / SAMPLE_RATE,
        "cost": cost,
    }


def conversation_set(encoder, settings, name: str, pool: dict, per: int, window: float, seed: int = 1) -> list[dict]:
    out = []
    for n in (1, 2, 3, 4):
        rng = np.random.default_rng([seed, zlib.crc32(name.encode()), n])
        for k in range(per):
            signal, reference = compose_one(pool, rng) if n == 1 else compose(pool, n, rng)
            row = conversation(encoder, settings, signal, reference, window)
            row.update(set=name, k=k, dev=k % 2 == 0)
            out.append(row)
        print("conversations", name, n, flush=True)
    return out


def bench_set(encoder, settings, pool: dict, window: float) -> list[dict]:
    """The benchmark's 36 conversations (12 each of 2, 3, 4 speakers, seed 0), same draws."""
    rng = np.random.default_rng(0)
    out = []
    for n in (2, 3, 4):
        for k in range(12):
            signal, reference = compose(pool, n, rng)
            row = conversation(encoder, settings, signal, reference, window)
            row.update(set="bench", k=k, dev=k % 2 == 0)
            out.append(row)
        print("conversations bench", n, flush=True)
    return out


# ----------------------------------------------------------------------------- projections


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True).clip(1e-9)


def fit_projection(kind: str, x: np.ndarray, speakers: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean, matrix) with projected = (x - mean) @ matrix; None for no projection."""
    if kind == "none":
        return None
    mean = x.mean(axis=0)
    if kind == "centre":
        return mean, np.eye(x.shape[1])
    classes = np.unique(speakers)
    if kind.startswith("lda"):
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        k = min(int(kind.split("-")[1]), len(classes) - 1)
        lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(x, speakers)
        return mean, lda.scalings_[:, :k]  # eigen solver: transform is x @ scalings_ (centring only shifts)
    within = np.zeros((x.shape[1], x.shape[1]))
    for c in classes:
        d = x[speakers == c] - x[speakers == c].mean(axis=0)
        within += d.T @ d
    within /= len(x)
    if kind == "wccn":
        from scipy.linalg import cholesky

        w = within + 1e-3 * np.trace(within) / len(within) * np.eye(len(within))
        return mean, cholesky(np.linalg.inv(w), lower=True)
    if kind.startswith("nap"):
        k = int(kind.split("-")[1])
        _, vectors = np.linalg.eigh(within)  # ascending
        return mean, vectors[:, : x.shape[1] - k]  # the complement of the top-k nuisance directions
    raise ValueError(kind)


def project(x: np.ndarray, proj) -> np.ndarray:
    return unit(x if proj is None else (x - proj[0]) @ proj[1])


def local_mean(vectors: np.ndarray, spans: np.ndarray, width: int) -> np.ndarray:
    """Each (projected, unit) window vector replaced by the renormalised mean of the `width` windows
    around it, within its run of overlapping windows (one speech region)."""
    if width <= 1:
        return vectors
    out = vectors.copy()
    breaks = np.flatnonzero(spans[1:, 0] >= spans[:-1, 1]) + 1
    for run in np.split(np.arange(len(vectors)), breaks):
        for i, index in enumerate(run):
            out[index] = vectors[run[max(0, i - width // 2) : i + width // 2 + 1]].mean(axis=0)
    return unit(out)


# ----------------------------------------------------------------------------- scoring


THRESHOLDS = [round(t, 2) for t in np.arange(0.2, 1.46, 0.05)]


def steps(row: dict) -> tuple:
    """benchmark_speakers.hypothesis, its window lookup done once per conversation: the 0.1 s steps
    of every speech region and the window centred nearest to each."""
    if "_steps" not in row:
        centres = row["spans"].mean(axis=1)
        out = [(t, min(t + STEP, end)) for start, end in row["regions"] for t in np.arange(start, end, STEP)]
        mids = np.array([a + STEP / 2 for a, _ in out])
        nearest = np.abs(centres[None, :] - mids[:, None]).argmin(axis=1) if len(out) else np.zeros(0, int)
        row["_steps"] = (out, nearest)
        row["_truth"] = annotation(row["reference"])
    return row["_steps"]


def fast_hypothesis(row: dict, labels: np.ndarray) -> list:
    spans, nearest = steps(row)
    out: list = []
    for (t, end), index in zip(spans, nearest, strict=True):
        label = f"S{labels[index] + 1}"
        if out and out[-1][2] == label and abs(out[-1][1] - t) < 1e-6:
            out[-1] = (out[-1][0], end, label)
        else:
            out.append((t, end, label))
    return out


def der(row: dict, labels: np.ndarray, memo: dict) -> float:
    key = tuple(labels.tolist())
    if key not in memo:
        from pyannote.metrics.diarization import DiarizationErrorRate

        steps(row)
        metric = DiarizationErrorRate(collar=0.25, skip_overlap=True)
        d = metric(row["_truth"], annotation(fast_hypothesis(row, labels)), detailed=True)
        memo[key] = (float(d["diarization error rate"]), float(d["confusion"] / max(d["total"], 1e-9)))
    return memo[key]


def score(row: dict, vectors: np.ndarray, centre: bool) -> dict:
    """DER and count: oracle N, every threshold, eigengap; plus clustering time."""
    from scipy.cluster.hierarchy import fcluster, linkage

    began = time.perf_counter()
    if centre:
        vectors = unit(vectors - vectors.mean(axis=0))
    n = row["speakers"]
    memo: dict = {}
    out = {}
    if len(vectors) < 2:
        zero = np.zeros(len(vectors), int)
        for name in ["oracle", "eigengap"] + [f"t{t}" for t in THRESHOLDS]:
            out[name] = (der(row, zero, memo)[0], 1, der(row, zero, memo)[1])
        return out
    tree = linkage(vectors, method="average", metric="cosine")
    labels = fcluster(tree, n, criterion="maxclust") - 1
    out["cluster_s"] = time.perf_counter() - began
    out["oracle"] = (der(row, labels, memo)[0], len(set(labels)), der(row, labels, memo)[1])
    for t in THRESHOLDS:
        labels = fcluster(tree, t, criterion="distance") - 1
        out[f"t{t}"] = (der(row, labels, memo)[0], len(set(labels)), der(row, labels, memo)[1])
    labels = spectral(vectors, None)
    out["eigengap"] = (der(row, labels, memo)[0], len(set(labels)), der(row, labels, memo)[1])
    return out


def summarise(results: list[tuple[dict, dict]]) -> dict:
    """results: (conversation, scores). Threshold chosen on dev (mean DER, all N incl. 1), reported on test."""
    dev = [s for r, s in results if r["dev"]]
    best = min(THRESHOLDS, key=lambda t: np.mean([s[f"t{t}"][0] for s in dev]))
    out: dict = {"threshold": best}
    for n in (1, 2, 3, 4):
        every = [s for r, s in results if r["speakers"] == n]
        test = [s for r, s in results if r["speakers"] == n and not r["dev"]]
        if not every:
            continue
        out[str(n)] = {
            "der_oracle_all": round(float(np.mean([s["oracle"][0] for s in every])), 4),
            "der_oracle_test": round(float(np.mean([s["oracle"][0] for s in test])), 4),
            "der_auto_test": round(float(np.mean([s[f"t{best}"][0] for s in test])), 4),
            "confusion_oracle_test": round(float(np.mean([s["oracle"][2] for s in test])), 4),
            "confusion_auto_test": round(float(np.mean([s[f"t{best}"][2] for s in test])), 4),
            "count_right_auto_test": round(float(np.mean([s[f"t{best}"][1] == n for s in test])), 3),
            "der_eigengap_test": round(float(np.mean([s["eigengap"][0] for s in test])), 4),
            "count_right_eigengap_test": round(float(np.mean([s["eigengap"][1] == n for s in test])), 3),
            "n_test": len(test),
        }
    test = [s for r, s in results if not r["dev"]]
    out["count_right_auto_test_all"] = round(float(np.mean([s[f"t{best}"][1] == r["speakers"] for r, s in results if not r["dev"]])), 3)
    out["count_right_eigengap_test_all"] = round(
        float(np.mean([s["eigengap"][1] == r["speakers"] for r, s in results if not r["dev"]])), 3
    )
    out["n_test"] = len(test)
    return out


def main() -> None:
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser()
    parser.add_argument("--per", type=int, default=6, help="conversations per N per set")
    parser.add_argument("--window", type=float, default=1.6)
    parser.add_argument("--variants", default="")
    parser.add_argument("--audio", default="level", help="level,plain: window audio at -30 dBFS or as is")
    parser.add_argument("--smooth", type=int, default=0, help="mean of this many neighbouring windows")
    parser.add_argument("--centre", default="0", help="0,1: without / with per-conversation centring")
    parser.add_argument("--no-bench", action="store_true")
    parser.add_argument("--save", default="", help="projection kind to fit on all corpora and save")
    parser.add_argument("--out", default=str(ROOT / "reports" / "speaker-experiments.json"))
    args = parser.parse_args()
    root, settings, encoder = corpora_dir(), get_settings(), GE2E()
    pool = {c: [(str(i.speaker), i.path) for i in load_dataset(root / c)] for c in CORPORA}
    clips = clip_embeddings(encoder, pool, args.window)
    sets = {}
    for c in CORPORA:
        sets[f"loco:{c}"] = conversation_set(encoder, settings, f"loco-{c}", restricted(pool, {s for s, _ in pool[c]}), args.per, args.window)
    half = halves(pool)
    for h in (0, 1):
        sets[f"disjoint:{h}"] = conversation_set(encoder, settings, f"half{h}", restricted(pool, half[h]), args.per, args.window)
    bench = [] if args.no_bench else bench_set(encoder, settings, pool, args.window)

    def train_mask(set_name: str) -> np.ndarray:
        kind, which = set_name.split(":")
        if kind == "loco":
            return clips["corpus"] != which
        return ~np.isin(clips["speaker"], sorted(half[int(which)]))

    kinds = args.variants.split(",") if args.variants else [
        "lda-32", "lda-64", "lda-128", "none", "lda-16", "wccn", "nap-64", "centre",
    ]
    audios = args.audio.split(",")
    variants = [(kind, audio, centre) for kind in kinds for audio in audios for centre in [c == "1" for c in args.centre.split(",")]]
    report: dict = {"window": args.window, "hop": HOP, "smooth": args.smooth, "thresholds": THRESHOLDS, "variants": {}}
    for kind, audio, centre in variants:
        name = f"{kind}|{audio}|{'conv-centred' if centre else 'raw'}"
        entry: dict = {}
        for protocol in ("loco", "disjoint"):
            results = []
            for set_name, rows in sets.items():
                if not set_name.startswith(protocol):
                    continue
                mask = train_mask(set_name)
                proj = fit_projection(kind, clips[audio][mask], clips["speaker"][mask])
                for row in rows:
                    results.append((row, score(row, local_mean(project(row[audio], proj), row["spans"], args.smooth), centre)))
            entry[protocol] = summarise(results)
        if bench:
            proj = fit_projection(kind, clips[audio], clips["speaker"])
            results = [(row, score(row, local_mean(project(row[audio], proj), row["spans"], args.smooth), centre)) for row in bench]
            entry["bench_in_sample" if kind not in ("none",) else "bench"] = summarise(results)
            entry["cluster_rtf"] = float(np.mean([s.get("cluster_s", 0) / r["seconds"] for r, s in results]))
        report["variants"][name] = entry
        brief = {p: {k: (v["der_oracle_test"], v["der_auto_test"], v["confusion_oracle_test"], v["confusion_auto_test"], v["count_right_auto_test"], v["count_right_eigengap_test"]) for k, v in entry[p].items() if isinstance(v, dict)} for p in ("loco", "disjoint")}
        print(name, json.dumps(brief), "thr", entry["loco"]["threshold"], entry["disjoint"]["threshold"], flush=True)
    every = [r for rows in sets.values() for r in rows] + bench
    report["embed_rtf_level_1core"] = float(np.mean([r["cost"] / r["seconds"] for r in every]))
    report["conversations"] = {k: len(v) for k, v in sets.items()} | {"bench": len(bench)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    if args.save:
        kind, audio = args.save.split("|")
        mean, matrix = fit_projection(kind, clips[audio], clips["speaker"])
        np.savez("/tmp/ge2e_projection.npz", mean=mean.astype(np.float32), matrix=matrix.astype(np.float32))
        print("saved", kind, audio, matrix.shape)


if __name__ == "__main__":
    main()
