"""Train a shipped default model on Emo-DB + EMOVO + RAVDESS 01-18 + ASED over the six labels the
first three share (ASED has five of them), with one training copy of every clip through a random
recording channel (`ser_core.training.channels.training_copies`) and one of 1-2 s of its speech
(`ser_core.training.channels.speech_crop`), each corpus weighing the same, and a
temperature calibrated by leave-one-corpus-out; features standardised per corpus
(`ser_core.models.adaptation`), and leave-one-corpus-out also reported with the test corpus
standardised by its own statistics (`ser analyze --adapt`).

    python scripts/train_default.py [--profile fast|accurate] [--augment 1]

Writes the model into the plugin that serves the profile (fast: ser_backend_handcrafted,
accurate: ser_backend_hf, with `SER_ACCURATE_MODEL_ID=pack:base`) and reports/train-default-<profile>.json.
Also reports leave-one-corpus-out on the same label set (train on three
corpora, test on the fourth): the honest estimate of how the shipped model does on unseen speakers,
languages and recording set-ups.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import numpy as np
from corpora import ROOT, corpora_dir

import ser_core
from ser_core.atomic_files import atomic_write_text
from ser_core.plugins.lookup import get_backend

LABELS = ["neutral", "happy", "sad", "angry", "fearful", "disgust"]
CORPORA = ("emodb", "emovo", "ravdess", "ased")
OUT = {
    "fast": ROOT / "plugins/ser_backend_handcrafted/src/ser_backend_handcrafted/models/fast-default.npz",
    "accurate": ROOT / "plugins/ser_backend_hf/src/ser_backend_hf/models/accurate-default.npz",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--profile", choices=sorted(OUT), default="fast")
    parser.add_argument("--augment", type=int, default=1, help="channel copies per clip")
    parser.add_argument("--crops", type=int, default=1, help="copies of 1-2 s of speech per clip")
    args = parser.parse_args()
    root = corpora_dir()
    backend = get_backend(args.profile)
    out = OUT[args.profile]
    result = ser_core.train(
        [root / c for c in CORPORA], profile=args.profile, labels=LABELS, out=out, jobs=args.jobs,
        augment=args.augment, balance_corpora=True, crops=args.crops,
    )
    # `train` fits a model without each corpus anyway (for the calibration): its scores
    cross = result.report["leave_one_corpus_out"]
    for held, report in cross.items():
        train = "+".join(c for c in CORPORA if c != held)
        print(
            f"train {train:15s} test {held:8s} UAR {report['uar']:.3f} WA {report['wa']:.3f} "
            f"macro-F1 {report['macro_f1']:.3f}"
        )
    mean = float(np.mean([report["uar"] for report in cross.values()]))
    print(f"leave-one-corpus-out mean UAR {mean:.3f}")
    adapted = result.report["leave_one_corpus_out_adapted"]
    adapted_mean = float(np.mean([report["uar"] for report in adapted.values()]))
    cells = " ".join(f"{held} {report['uar']:.3f} (ECE {report['ece']:.3f})" for held, report in adapted.items())
    print(f"adapted to the test corpus: {cells}; mean UAR {adapted_mean:.3f}")
    calibration = result.report["calibration"]
    print(f"calibration: temperature {calibration['temperature']:.2f} from {json.dumps(calibration['views'])}")
    held = result.report["heldout"]
    print(
        f"held-out speakers ({len(held['heldout_speakers'])}): UAR {held['uar']:.3f} WA {held['wa']:.3f} "
        f"macro-F1 {held['macro_f1']:.3f}"
    )
    summary = {
        "labels": LABELS,
        "training_copies": args.augment,
        "training_crops": args.crops,
        "balance_corpora": True,
        "leave_one_corpus_out": cross,
        "leave_one_corpus_out_mean_uar": mean,
        "leave_one_corpus_out_adapted": adapted,
        "leave_one_corpus_out_adapted_mean_uar": adapted_mean,
        "calibration": calibration,
        "heldout_speakers": held,
        "training": result.report["training"],
        # `train` records them in the artifact, so `ser evaluate --model default` flags overlap
        "training_speakers": result.model.meta.training_speakers,
        "sha256": result.report["sha256"],
    }
    report = ROOT / "reports" / f"train-default-{args.profile}.json"
    atomic_write_text(report, json.dumps({"profile": args.profile, "backend_model_id": backend.model_id, **summary}, indent=2) + "\n")
    result.report_path.unlink()  # the package ships the model only; the report lives in reports/
    print(f"wrote {out} and {report}")


if __name__ == "__main__":
    main()
