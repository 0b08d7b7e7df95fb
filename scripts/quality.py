"""Speaker-independent accuracy of a profile on the shared corpora; writes reports/quality-<profile>.json.

Emo-DB and EMOVO: leave-one-speaker-out. RAVDESS actors 01-18: 6 actor-grouped folds (1-3, 4-6, ...).
Each corpus is evaluated on its own full label set, features and classifier as `ser evaluate` uses them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from corpora import ROOT, corpora_dir

import ser_core
from ser_core.atomic_files import atomic_write_text

PROTOCOL = {"emodb": None, "emovo": None, "ravdess": 6}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    root = corpora_dir()
    rows = {}
    for corpus, folds in PROTOCOL.items():
        start = time.perf_counter()
        report = ser_core.evaluate([root / corpus], profile=args.profile, folds=folds, jobs=args.jobs)
        rows[corpus] = {key: report[key] for key in ("uar", "wa", "macro_f1", "n_files", "cv", "labels")}
        rows[corpus]["per_class_recall"] = {k: round(v["recall"], 3) for k, v in report["per_class"].items()}
        rows[corpus]["seconds"] = round(time.perf_counter() - start, 1)
        print(
            f"{corpus:8s} UAR {report['uar']:.3f}  WA {report['wa']:.3f}  macro-F1 {report['macro_f1']:.3f}"
            f"  ({report['n_files']} files, {report['cv']})",
            flush=True,
        )
    out = ROOT / "reports" / f"quality-{args.profile}.json"
    atomic_write_text(
        out, json.dumps({"profile": args.profile, "version": ser_core.__version__, **rows}, indent=2)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
