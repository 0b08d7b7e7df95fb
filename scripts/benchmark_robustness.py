"""Robustness of a profile's emotion model to the audio people really have.

    python scripts/benchmark_robustness.py [--profile fast|accurate] [--per-label 40]

Conditions (`ser_core.training.channels.CONDITIONS`: telephone, GSM, mp3 32 kbit/s, babble at 10 dB,
white/pink noise at 15 dB, rooms with RT60 0.3-0.9 s, peak -25 dBFS, clipping, the first 1.0 s of
speech) are applied to the test side only, each clip with its own seed. The test side of each
corpus is a fixed stratified draw of `--per-label` clips per label (seed 0), the same for every
condition and profile; training always uses every clip of the training speakers.

Protocols, on the six labels the corpora share where present (ASED has no disgust):
- leave-one-corpus-out (LOCO) over Emo-DB, EMOVO, RAVDESS 01-18 and ASED: train on three, test
  on the fourth; babble talkers come from the training corpora;
- within each corpus, speaker-independent (leave-one-speaker-out on Emo-DB and EMOVO, 6 speaker
  folds on RAVDESS, 5 on ASED), the same test clips.

Variants of the training side: `baseline` (clean clips), `augmented` (each training clip once
more through `channels.training_copies`: random codecs, noise, rooms and levels with seeds and
talkers of their own), `balanced` (augmented, each training corpus weighing the same), `cropped`
(balanced, plus a copy of 1-2 s of each clip's speech) and `normalised` (cropped, each training
corpus standardised by its own statistics and a test clip by a typical training corpus's: how the
shipped models are trained; also reported "adapted", each test corpus and condition standardised
by its own statistics as `ser analyze --adapt` does). Calibration: ECE (15 bins) of the LOCO predictions on clean audio: raw;
with a temperature from leave-one-corpus-out inside the three training corpora (nested, "new
corpus"); and with the geometric mean of that and a temperature from 20 % held-out speakers of the
training corpora ("shipped", as `ser_core.training.api.calibrate` does); a reliability diagram
`docs/reliability-<profile>.png`.

Writes reports/robustness-<profile>.json. Vectors are cached under the user cache directory.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from corpora import ROOT, corpora_dir

from ser_core.atomic_files import atomic_write_bytes, atomic_write_text
from ser_core.models.adaptation import Normalised, SourceStats
from ser_core.models.calibration import fit_temperature, scale
from ser_core.models.classifiers import DEFAULT_KIND
from ser_core.pipeline.audio import load_audio
from ser_core.plugins.lookup import get_backend, make_classifier
from ser_core.settings import get_settings
from ser_core.training import channels
from ser_core.training.api import heldout_speakers
from ser_core.training.datasets import load_dataset
from ser_core.training.extract import backend_fingerprint, extract
from ser_core.training.metrics import calibration_report, classification_report

LABELS = ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
CORPORA = ("emodb", "emovo", "ravdess", "ased")
FOLDS = {"emodb": None, "emovo": None, "ravdess": 6, "ased": 5}


def stable_seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).encode()).digest()[:4], "little")


def test_draw(labels: list[str], per_label: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    chosen = []
    for label in sorted(set(labels)):
        members = [i for i, lab in enumerate(labels) if lab == label]
        chosen += rng.choice(members, size=min(per_label, len(members)), replace=False).tolist()
    return np.array(sorted(chosen))


class Vectors:
    """Backend vectors of (possibly transformed) clips, cached per batch under the user cache."""

    def __init__(self, backend, root: Path) -> None:
        self.backend = backend
        self.root = root
        self.fingerprint = backend_fingerprint(backend)
        self.dir = get_settings().cache_dir / "robustness" / self.fingerprint[:16]

    def clean(self, paths: list[Path]) -> np.ndarray:
        out = extract(paths, self.backend, jobs=1)
        if out.failures:
            raise SystemExit(f"unreadable corpus files: {list(out.failures.values())[:3]}")
        return out.vectors

    def transformed(self, kind: str, paths: list[Path], talkers: list[Path], name: str) -> np.ndarray:
        names = [p.relative_to(self.root).as_posix() for p in paths]
        key = hashlib.sha256(json.dumps([kind, names, [t.name for t in talkers]]).encode()).hexdigest()[:20]
        where = self.dir / f"{name}-{kind}-{key}.npy"
        if where.is_file():
            return np.load(where, allow_pickle=False)
        started = time.time()
        voices = [load_audio(t) for t in talkers]
        signals = [load_audio(p) for p in paths]
        seeds = [stable_seed(kind, n) for n in names]
        if kind == "training-copy":
            changed = channels.training_copies(signals, seeds, voices)
        elif kind == "training-crop":
            changed = [channels.speech_crop(x, np.random.default_rng(s)) for x, s in zip(signals, seeds, strict=True)]
        else:
            changed = channels.apply_many(kind, signals, seeds, voices)
        vectors = []
        size = max(1, self.backend.batch_size)
        for k in range(0, len(changed), size):
            vectors += self.backend.embed_many(changed[k : k + size])
        array = np.asarray(vectors, dtype=np.float32)
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        atomic_write_bytes(where, buffer.getvalue())
        print(f"  {name} {kind}: {len(paths)} clips in {time.time() - started:.0f} s", flush=True)
        return array


def fit(x: np.ndarray, y: list[str], weights: np.ndarray | None = None, standardised: np.ndarray | None = None):
    """The default classifier over `x`, and an adapted head over the same rows `standardised` per
    corpus when given (as `ser_core.training.api.Trainer` fits them)."""
    def head(vectors: np.ndarray):
        return make_classifier(DEFAULT_KIND).fit(vectors, y, sample_weight=weights)

    return Normalised(head(x), None if standardised is None else head(standardised))


def probs_for(model, x: np.ndarray, source: SourceStats | None = None) -> np.ndarray:
    """Probabilities over LABELS (columns of labels the model lacks stay 0); `source`: the adapted
    head's, the vectors standardised by these statistics."""
    out = np.zeros((len(x), len(LABELS)))
    out[:, [LABELS.index(lab) for lab in model.labels]] = model.predict_proba(x, source)
    return out


def uar(truth: list[str], probs: np.ndarray) -> float:
    predicted = [LABELS[i] for i in probs.argmax(axis=1)]
    return classification_report(truth, predicted, LABELS)["uar"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--per-label", type=int, default=40)
    parser.add_argument("--conditions", default=",".join(channels.CONDITIONS))
    parser.add_argument("--variants", default="baseline,augmented,balanced")
    parser.add_argument("--tag", default="", help="suffix of the report and picture names (experiments)")
    args = parser.parse_args()
    root = corpora_dir()
    backend = get_backend(args.profile)
    vec = Vectors(backend, root)
    conditions = args.conditions.split(",")
    variants = args.variants.split(",")
    data = {}
    for corpus in CORPORA:
        items = load_dataset(root / corpus, LABELS)
        paths = [Path(i.path) for i in items]
        labels = [i.label for i in items]
        speakers = [str(i.speaker) for i in items]
        draw = test_draw(labels, args.per_label)
        data[corpus] = {"paths": paths, "labels": np.array(labels), "speakers": np.array(speakers), "draw": draw}
        print(f"{corpus}: {len(items)} clips, test draw {len(draw)}", flush=True)
    started = time.time()
    for corpus in CORPORA:
        d = data[corpus]
        d["clean"] = vec.clean(d["paths"])
        others = [c for c in CORPORA if c != corpus]
        rng = np.random.default_rng(stable_seed("babble", corpus))
        pool = [p for c in others for p in rng.choice(np.array(data[c]["paths"], dtype=object), 10, replace=False)]
        test_paths = [d["paths"][i] for i in d["draw"]]
        d["test"] = {c: (d["clean"][d["draw"]] if c == "clean" else vec.transformed(c, test_paths, pool, corpus)) for c in conditions}
        if set(variants) - {"baseline"}:
            own = list(np.random.default_rng(stable_seed("talkers", corpus)).choice(np.array(d["paths"], dtype=object), 30, replace=False))
            d["copy"] = vec.transformed("training-copy", d["paths"], own, corpus)
        if {"cropped", "normalised"} & set(variants):
            d["crop"] = vec.transformed("training-crop", d["paths"], [], corpus)
    print(f"vectors ready in {time.time() - started:.0f} s", flush=True)

    report: dict = {"profile": args.profile, "backend_model_id": backend.model_id, "per_label": args.per_label,
                    "labels": LABELS, "conditions": conditions, "variants": {}}
    for variant in variants:
        def training(corpora: list[str], mask: dict[str, np.ndarray] | None = None, variant: str = variant):
            """Training vectors, labels, weights (each corpus alike with `balanced` and after) and,
            with `normalised`, the same vectors standardised per corpus (each by its clean clips)."""
            xs, ys, ws, zs = [], [], [], []
            for c in corpora:
                keep = mask[c] if mask else np.ones(len(data[c]["paths"]), bool)
                parts = [data[c]["clean"][keep]] + ([data[c]["copy"][keep]] if variant != "baseline" else [])
                parts += [data[c]["crop"][keep]] if variant in ("cropped", "normalised") else []
                xs += parts
                zs += [SourceStats.of(parts[0]).standardise(part) for part in parts] if variant == "normalised" else []
                ys += data[c]["labels"][keep].tolist() * len(parts)
                ws.append(np.full(len(parts) * int(keep.sum()), 1.0 / keep.sum()))
            weights = np.concatenate(ws) if variant != "baseline" and variant != "augmented" else None
            return np.concatenate(xs), ys, weights, (np.concatenate(zs) if zs else None)

        loco: dict = {}
        adapted: dict = {}  # normalised: each test corpus and condition by its own statistics
        pooled: dict[str, list[np.ndarray]] = {"raw": [], "new-corpus": [], "shipped": [], "adapted": []}
        pooled_truth: list[int] = []
        for held in CORPORA:
            train_corpora = [c for c in CORPORA if c != held]
            model = fit(*training(train_corpora))
            # the temperature as `ser_core.training.api.calibrate` fits it, from the training corpora only:
            # nested LOCO (new corpus) and held-out speakers (new speaker), and their geometric mean
            # (the adapted head's alike, each held-out corpus or speaker group by its own statistics)
            inner_p, inner_a, inner_t = [], [], []
            for inner in train_corpora:
                sub = fit(*training([c for c in train_corpora if c != inner]))
                inner_p.append(probs_for(sub, data[inner]["clean"]))
                if variant == "normalised":
                    inner_a.append(probs_for(sub, data[inner]["clean"], SourceStats.of(data[inner]["clean"])))
                inner_t += [LABELS.index(lab) for lab in data[inner]["labels"]]
            t_corpus = fit_temperature(np.concatenate(inner_p), np.array(inner_t))
            held_out = heldout_speakers([s for c in train_corpora for s in data[c]["speakers"]], 0.2, 0)
            masks = {c: ~np.isin(data[c]["speakers"], list(held_out)) for c in train_corpora}
            probe = fit(*training(train_corpora, masks))
            t_speaker = fit_temperature(
                np.concatenate([probs_for(probe, data[c]["clean"][~masks[c]]) for c in train_corpora]),
                np.array([LABELS.index(lab) for c in train_corpora for lab in data[c]["labels"][~masks[c]]]),
            )
            temperature = float(np.sqrt(t_corpus * t_speaker))
            if variant == "normalised":
                t_adapted = float(np.sqrt(
                    fit_temperature(np.concatenate(inner_a), np.array(inner_t))
                    * fit_temperature(
                        np.concatenate([probs_for(probe, x, SourceStats.of(x)) for x in (data[c]["clean"][~masks[c]] for c in train_corpora)]),
                        np.array([LABELS.index(lab) for c in train_corpora for lab in data[c]["labels"][~masks[c]]]),
                    )
                ))
            d = data[held]
            truth = d["labels"][d["draw"]].tolist()
            row = {"temperature": temperature, "temperature_new_corpus": t_corpus, "temperature_new_speaker": t_speaker}
            if variant == "normalised":
                row["temperature_adapted"] = t_adapted
            for c in conditions:
                p = probs_for(model, d["test"][c])
                row[c] = uar(truth, p)
                if c == "clean":
                    pooled["raw"].append(p)
                    pooled["new-corpus"].append(scale(p, t_corpus))
                    pooled["shipped"].append(scale(p, temperature))
                    pooled_truth += [LABELS.index(lab) for lab in truth]
                if variant == "normalised":
                    p = probs_for(model, d["test"][c], SourceStats.of(d["test"][c]))
                    adapted.setdefault(held, {})[c] = uar(truth, p)
                    if c == "clean":
                        pooled["adapted"].append(scale(p, t_adapted))
            loco[held] = row
        truth_index = np.array(pooled_truth)
        calibration = {kind: calibration_report(np.concatenate(p), truth_index) for kind, p in pooled.items() if p}
        calibration["uncertain"] = uncertain_stats(np.concatenate(pooled["shipped"]), truth_index, UNCERTAIN_BELOW)
        within: dict = {}
        for corpus in CORPORA:
            d = data[corpus]
            folds = sorted(set(d["speakers"]))
            if FOLDS[corpus] is None:
                groups = [[s] for s in folds]
            else:
                groups = [list(g) for g in np.array_split(np.array(folds, dtype=object), FOLDS[corpus])]
            probs = {c: np.zeros((len(d["draw"]), len(LABELS))) for c in conditions}
            test_speakers = d["speakers"][d["draw"]]
            for group in groups:
                train_mask = ~np.isin(d["speakers"], group)
                model = fit(*training([corpus], {corpus: train_mask}))
                rows = np.isin(test_speakers, group)
                for c in conditions:
                    probs[c][rows] = probs_for(model, d["test"][c][rows])
            truth = d["labels"][d["draw"]].tolist()
            within[corpus] = {c: uar(truth, probs[c]) for c in conditions}
        report["variants"][variant] = {"loco": loco, "within": within, "calibration": calibration}
        print_tables(variant, loco, within, calibration, conditions)
        if adapted:
            report["variants"][variant]["loco_adapted"] = adapted
            print_tables(f"{variant}, adapted (each test corpus and condition by its own statistics)",
                         adapted, within, calibration, conditions)
    name = args.profile + (f"-{args.tag}" if args.tag else "")
    out = ROOT / "reports" / f"robustness-{name}.json"
    atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    draw_reliability(report, ROOT / ("docs" if not args.tag else "reports") / f"reliability-{name}.png")
    print(f"wrote {out}")


UNCERTAIN_BELOW = 0.5  # the shipped `uncertain_below` setting


def uncertain_stats(probs: np.ndarray, truth: np.ndarray, below: float) -> dict:
    """How many calibrated LOCO predictions the `uncertain` mark flags, and how often each side is right."""
    confidence = probs.max(axis=1)
    right = probs.argmax(axis=1) == truth
    flagged = confidence < below
    return {
        "below": below,
        "share_flagged": float(flagged.mean()),
        "accuracy_flagged": float(right[flagged].mean()) if flagged.any() else None,
        "accuracy_rest": float(right[~flagged].mean()) if (~flagged).any() else None,
    }


def print_tables(variant: str, loco: dict, within: dict, calibration: dict, conditions: list[str]) -> None:
    print(f"\n## {variant}\n")
    print("| condition | " + " | ".join(f"LOCO {c}" for c in CORPORA) + " | LOCO mean | " + " | ".join(f"within {c}" for c in CORPORA) + " |")
    print("|---" * (2 * len(CORPORA) + 2) + "|")
    for c in conditions:
        cells = []
        for table in (loco, within):
            values = [table[k][c] for k in CORPORA]
            base = [table[k]["clean"] for k in CORPORA]
            cells += [f"{v:.3f}" if c == "clean" else f"{v:.3f} ({v - b:+.3f})" for v, b in zip(values, base, strict=True)]
            if table is loco:
                mean, bmean = float(np.mean(values)), float(np.mean(base))
                cells.append(f"{mean:.3f}" if c == "clean" else f"{mean:.3f} ({mean - bmean:+.3f})")
        print(f"| {c} | " + " | ".join(cells) + " |")
    for kind in ("raw", "new-corpus", "shipped", "adapted"):
        if kind not in calibration:
            continue
        cal = calibration[kind]
        print(f"ECE ({kind}): {cal['ece']:.3f}, mean confidence {cal['mean_confidence']:.3f}, accuracy {cal['accuracy']:.3f}")
    u = calibration["uncertain"]
    print(f"uncertain (< {u['below']}): {u['share_flagged']:.0%} of results, right {u['accuracy_flagged'] or 0:.3f} vs {u['accuracy_rest'] or 0:.3f} for the rest")
    if "temperature" not in loco[CORPORA[0]]:
        return
    print("temperatures (new speaker, new corpus, shipped): " + ", ".join(
        f"{k} {loco[k]['temperature_new_speaker']:.2f} {loco[k]['temperature_new_corpus']:.2f} {loco[k]['temperature']:.2f}"
        for k in CORPORA
    ), flush=True)


def draw_reliability(report: dict, where: Path) -> None:
    """Reliability diagram of the LOCO predictions per variant, raw and temperature-scaled."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no reliability diagram")
        return
    variants = report["variants"]
    fig, axes = plt.subplots(1, len(variants), figsize=(4.2 * len(variants), 4.2), squeeze=False)
    for ax, (name, v) in zip(axes[0], variants.items(), strict=True):
        ax.plot([0, 1], [0, 1], color="#999", lw=1, ls="--")
        for kind, color in (("raw", "#d62728"), ("new-corpus", "#ff7f0e"), ("shipped", "#1f77b4")):
            cal = v["calibration"][kind]
            bins = cal["bins"]
            ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", color=color,
                    label=f"{kind} (ECE {cal['ece']:.3f})", ms=4)
        bins = v["calibration"]["shipped"]["bins"]
        ax.bar([(b["low"] + b["high"]) / 2 for b in bins], [b["n"] / v["calibration"]["shipped"]["n"] for b in bins],
               width=1 / 15, color="#1f77b4", alpha=0.15, label="share of results (calibrated)")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence of the top label", ylabel="share right",
               title=f"{report['profile']}, {name}: leave-one-corpus-out")
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    atomic_write_bytes(where, buffer.getvalue())
    print(f"wrote {where}")


if __name__ == "__main__":
    main()
