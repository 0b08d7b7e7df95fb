"""Feature-extraction real-time factor (wall seconds / audio seconds) of a profile, one worker.

Decoding is excluded (files are decoded first); frames + utterance pooling are timed, after one
warm-up call. Prints per-corpus and overall RTF, and the per-call overhead on a 0.1 s signal.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

sys.path.insert(0, str(Path(__file__).parent))
import numpy as np  # noqa: E402
from corpora import corpora_dir  # noqa: E402

from ser_core.pipeline.audio import load_audio  # noqa: E402
from ser_core.plugins.lookup import get_backend  # noqa: E402
from ser_core.training.datasets import load_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--files", type=int, default=200, help="files per corpus")
    args = parser.parse_args()
    backend = get_backend(args.profile)
    total_audio = total_wall = 0.0
    for corpus in ("emodb", "emovo", "ravdess"):
        items = load_dataset(corpora_dir() / corpus)
        items = items[:: max(1, len(items) // args.files)]
        signals = [load_audio(item.path) for item in items[: args.files]]
        backend.embed(signals[0])
        start = time.perf_counter()
        for signal in signals:
            backend.embed(signal)
        wall = time.perf_counter() - start
        audio = sum(len(s) for s in signals) / 16000
        total_audio, total_wall = total_audio + audio, total_wall + wall
        print(f"{corpus:8s} {len(signals)} files, {audio:7.1f} s audio, RTF {wall / audio:.5f}")
    short = np.random.default_rng(0).standard_normal(1600).astype(np.float32) * 0.1
    start = time.perf_counter()
    for _ in range(200):
        backend.embed(short)
    per_call = (time.perf_counter() - start) / 200
    print(
        f"overall RTF {total_wall / total_audio:.5f}  (target <= 0.003); per-call time on 0.1 s: {per_call * 1e3:.2f} ms"
    )


if __name__ == "__main__":
    main()
