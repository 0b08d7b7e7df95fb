"""Batch throughput of `ser analyze DIR --output-dir OUT` per engine: files/s and audio-hours per
hour, fast profile, no transcript (`--transcript`: with it, `--language en`, Whisper base int8),
JSON outputs, over RAVDESS (1080 files) by default.

`--groups 1,16` runs every engine with each `SER_GROUP_FILES` (inputs analysed together, their
words decoded in shared batches); with `--transcript` on RAVDESS the word error rate of the
outputs is reported too (as `nox -s transcript` computes it, on the two known statements).

Each engine runs as the user would run it (a fresh `ser` process, empty output folder); the rate
uses the run report's wall time, which for Ray includes starting and stopping the local cluster.
`--engines local:1,ray:2` means the local engine with 1 worker process, then Ray with 2 actors;
`--repeat 2` runs that sequence twice (interleaved, so load from elsewhere hits every engine).
Numerical libraries get one thread per process, as Ray gives its actors (`--threads` to change).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from benchmark_transcript import STATEMENTS, edit_distance, words
from corpora import corpora_dir


def run(
    files: list[str], engine: str, jobs: int, out: Path, profile: str, env: dict[str, str], words: str | None
) -> dict:
    """`words`: the language to transcribe in (None: no transcript)."""
    command = [sys.executable, "-m", "ser_core", "analyze", *files, "--output-dir", str(out)]
    command += ["--profile", profile, "-f", "json", "--no-progress"]
    command += ["--no-transcript"] if words is None else ["--language", words]
    command += ["--engine", engine, "--jobs", str(jobs)]
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - began
    if done.returncode not in (0, 3):
        sys.exit(f"{engine}:{jobs} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    report = json.loads((out / "ser-run-report.json").read_text())
    return {"report": report, "wall": wall, "wer": _wer(out) if words else None}


def _wer(out: Path) -> float | None:
    """Word error rate of the JSON outputs named like RAVDESS files (None: none are)."""
    errors = total = 0
    for path in out.rglob("*.json"):
        parts = path.stem.split("-")
        if path.name.startswith("ser-run") or len(parts) != 7 or parts[4] not in STATEMENTS:
            continue
        result = json.loads(path.read_text())
        result = result[0] if isinstance(result, list) else result
        heard = words(" ".join(word["text"] for word in result.get("words") or []))
        reference = words(STATEMENTS[parts[4]])
        errors += edit_distance(reference, heard)
        total += len(reference)
    return errors / total if total else None


def _cpu() -> str:
    info = Path("/proc/cpuinfo")
    names = (
        [
            line.split(":", 1)[1].strip()
            for line in info.read_text().splitlines()
            if line.startswith("model name")
        ]
        if info.exists()
        else []
    )
    return names[0] if names else platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", default="ravdess", help="folder under the corpora directory")
    parser.add_argument("--engines", default="local:1,ray:2", help="ENGINE:JOBS, comma-separated")
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--limit", type=int, default=0, help="only the first N files (0: all)")
    parser.add_argument("--repeat", type=int, default=1, help="run the engine sequence this often")
    parser.add_argument("--threads", default="1", help="OMP/OpenBLAS/MKL threads per process ('' = unset)")
    parser.add_argument("--transcript", action="store_true", help="with the transcript")
    parser.add_argument("--language", default="en", help="the transcript's language (--transcript)")
    parser.add_argument("--groups", default="", help="SER_GROUP_FILES values to run each engine with")
    args = parser.parse_args()
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(var, None)
        if args.threads:
            env[var] = args.threads
    folder = corpora_dir() / args.corpus
    files = sorted(str(p) for p in folder.rglob("*.flac"))
    inputs = files[: args.limit] if args.limit else [str(folder), "--recursive"]
    print(
        f"{args.corpus}: {len(files[: args.limit or None])} files; profile {args.profile}, "
        f"{'transcript (' + args.language + ')' if args.transcript else 'no transcript'}, "
        f"JSON outputs; {_cpu()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{args.threads or 'default'} numerical thread(s) per process, load average {os.getloadavg()[0]:.1f}"
    )
    groups = [g for g in args.groups.split(",") if g] or [None]
    for spec in args.engines.split(",") * args.repeat:
        engine, _, jobs = spec.partition(":")
        for group in groups:
            if group is not None:
                env["SER_GROUP_FILES"] = group
            with tempfile.TemporaryDirectory(prefix="ser-batch-") as tmp:
                words = args.language if args.transcript else None
                done = run(inputs, engine, int(jobs or 1), Path(tmp) / "out", args.profile, env, words)
            report = done["report"]
            n, seconds, audio = len(report["analysed"]), report["seconds"], report["audio_seconds"]
            grouped = "" if group is None else f" group {group:<3}"
            wer = "" if done["wer"] is None else f" WER {done['wer']:.4f};"
            print(
                f"{engine}:{jobs:<3}{grouped} {n} analysed, {len(report['failures'])} failed, "
                f"{audio / 60:.1f} min audio: {seconds:6.1f} s in the run ({n / seconds:5.1f} files/s, "
                f"{audio / seconds:5.1f}x real time);{wer} {done['wall']:6.1f} s for the whole command; "
                f"load average {os.getloadavg()[0]:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
