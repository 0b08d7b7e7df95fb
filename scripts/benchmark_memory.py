"""Peak memory of `ser analyze` (with transcript) on 1 min and 60 min of speech.

    python scripts/benchmark_memory.py [--minutes 1 60] [--profile fast] [--whisper-model base]
        [--threads 2] [--mp3] [--speakers auto]

The recordings: RAVDESS 01-18 clips in a seeded shuffle, joined with 0.5 s pauses, written as
16 kHz FLAC (and mp3 with `--mp3`, decoded through the ffmpeg pipe). Each is analysed by a fresh
`python -m ser_core analyze FILE -f json -o OUT` process; its peak resident memory (ru_maxrss of
the child) and wall time are printed and written to reports/memory-analyze[-PROFILE].json.
Target (issue 6): the 60 min run <= 1.5 GB and <= 1.3x the 1 min run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
from corpora import ROOT, corpora_dir

from ser_core.atomic_files import atomic_write_text
from ser_core.pipeline.audio import SAMPLE_RATE, load_audio


def write_recording(path: Path, seconds: float, seed: int) -> float:
    """Shuffled RAVDESS clips with 0.5 s pauses, streamed to `path`; returns its duration."""
    files = sorted((corpora_dir() / "ravdess").rglob("*.flac"))
    rng = np.random.default_rng(seed)
    pause = np.zeros(SAMPLE_RATE // 2, np.float32)
    written = 0
    with sf.SoundFile(path, "w", SAMPLE_RATE, 1, format="FLAC") as out:
        while written < seconds * SAMPLE_RATE:
            for i in rng.permutation(len(files)):
                for part in (load_audio(files[i]), pause):
                    out.write(part)
                    written += len(part)
                if written >= seconds * SAMPLE_RATE:
                    break
    return written / SAMPLE_RATE


def measure(path: Path, out: Path, env: dict[str, str], profile: str) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of one `ser analyze` process."""
    cmd = [sys.executable, "-m", "ser_core", "analyze", str(path), "-f", "json", "-o", str(out)]
    cmd += ["--profile", profile]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"ser analyze failed on {path}")
    return usage.ru_maxrss / 1024, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 60.0])
    parser.add_argument("--whisper-model", default="base")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mp3", action="store_true", help="also measure mp3 copies (ffmpeg pipe)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--speakers", default="off", help="SER_SPEAKERS for the runs (off, auto, N)")
    args = parser.parse_args()
    env = dict(os.environ, SER_TRANSCRIPT="true", SER_WHISPER_MODEL=args.whisper_model, SER_SPEAKERS=args.speakers)
    env.update(SER_WHISPER_THREADS=str(args.threads), SER_HF_THREADS=str(args.threads), SER_VAD="silero")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            flac = Path(tmp) / f"talk-{minutes:g}min.flac"
            duration = write_recording(flac, minutes * 60, args.seed)
            inputs = [flac]
            if args.mp3:
                mp3 = flac.with_suffix(".mp3")
                subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(flac), str(mp3)], check=True)
                inputs.append(mp3)
            for path in inputs:
                out = Path(tmp) / (path.name + ".json")
                rss, seconds = measure(path, out, env, args.profile)
                words = len(json.loads(out.read_text())["words"])
                row = {
                    "input": path.suffix[1:],
                    "minutes": round(duration / 60, 2),
                    "peak_rss_mb": round(rss, 1),
                    "wall_seconds": round(seconds, 1),
                    "rtf": round(seconds / duration, 3),
                    "words": words,
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    for kind in sorted({row["input"] for row in rows}):
        mine = [row for row in rows if row["input"] == kind]
        if len(mine) >= 2:
            ratio = mine[-1]["peak_rss_mb"] / mine[0]["peak_rss_mb"]
            print(f"{kind}: peak RSS {mine[-1]['minutes']} min / {mine[0]['minutes']} min = {ratio:.2f}x")
    report = {
        "profile": args.profile,
        "whisper_model": args.whisper_model,
        "threads": args.threads,
        "speakers": args.speakers,
        "runs": rows,
    }
    name = "memory-analyze" + ("" if args.profile == "fast" else f"-{args.profile}")
    name += "" if args.speakers == "off" else "-speakers"
    name += ".json"
    out_path = ROOT / "reports" / name
    atomic_write_text(out_path, json.dumps(report, indent=2) + "\n")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
