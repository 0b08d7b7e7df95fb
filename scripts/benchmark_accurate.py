"""Speed of the accurate profile (Whisper base encoder, offline `pack:base`) on CPU, per runtime.

    python scripts/benchmark_accurate.py [--runtimes torch,onnx,onnx-int8] [--rounds 2] [--threads 2]
        [--repeats 3] [--clips 20] [--seconds 60] [--padded]

Each runtime (`SER_ACCURATE_RUNTIME`) is measured alone in a fresh process (two runtimes' thread
pools in one process steal the 2 cores from each other), `--rounds` rounds with the order rotated;
ratios to the first runtime are taken within a round and the medians over rounds reported. Every
process runs on `--threads` threads (`SER_HF_THREADS`; the transcriber gets `SER_WHISPER_THREADS`);
each timing is the median of `--repeats` runs after one warm-up run. Per runtime:
* ready: from importing ser_core to a loaded backend and accurate emotion model (the pack's
  conversion and the ONNX export are done beforehand, once, and timed apart);
* encoder per clip, on the `--clips` RAVDESS 01-18 clips closest to `--clip-seconds` (3 s): the
  backend's `encode_batch` of one clip (log-mel, encoder, the chosen layers): seconds and RTF;
* `ser_core.analyze(clip, profile="accurate", transcript=False)` on the same clips: median RTF;
* the same on a >= `--seconds` recording (RAVDESS actor 05 clips, 0.5 s pauses, as
  scripts/benchmark_analyze.py builds it), and with `transcript=True` (Whisper `--whisper-model`,
  int8).
`--padded` (torch only) also times the clip zero-padded to 30 s (`log_mel_30s`, 3000 frames) against
the unpadded path (issue 4: >= 5x). The 1-minute load average before and after is recorded (the
machine may be shared). Writes reports/speed-accurate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
from corpora import ROOT, corpora_dir

KEYS = (
    "ready_seconds",
    "encoder_seconds_per_clip",
    "encoder_rtf",
    "analyze_clip_rtf",
    "analyze_recording_rtf",
    "analyze_recording_transcript_rtf",
)


def clips_near(seconds: float, count: int) -> list[Path]:
    """The `count` RAVDESS clips whose duration is closest to `seconds` (ties by name)."""
    files = sorted((corpora_dir() / "ravdess").rglob("*.flac"))
    return sorted(files, key=lambda f: (abs(sf.info(str(f)).duration - seconds), str(f)))[:count]


def warm_timed(fn, repeats: int) -> float:
    """Median wall time of `repeats` calls after one warm-up call."""
    from benchmark_analyze import timed

    fn()
    return timed(fn, repeats)[0]


def measure(args: argparse.Namespace) -> dict:
    """One runtime, in this fresh process."""
    start = time.perf_counter()
    import ser_core
    from ser_core.pipeline.analysis import get_model
    from ser_core.pipeline.audio import SAMPLE_RATE, load_audio
    from ser_core.plugins.lookup import get_backend, get_transcriber
    from ser_core.settings import Settings

    backend, _ = get_backend("accurate"), get_model("accurate")
    ready = time.perf_counter() - start
    if backend.runtime != args.runtime:
        sys.exit(f"asked for {args.runtime}, the backend runs {backend.runtime}")
    paths = clips_near(args.clip_seconds, args.clips)
    signals = [load_audio(p) for p in paths]
    durations = [len(s) / SAMPLE_RATE for s in signals]
    encoder = [warm_timed(lambda s=s: backend.encode_batch(s[None]), args.repeats) for s in signals]
    out: dict = {"runtime": backend.runtime, "ready_seconds": ready, "torch_imported": "torch" in sys.modules}
    if args.padded and args.runtime == "torch":
        from ser_backend_hf.convert import hidden_states, log_mel_30s, output_frames

        def padded(signal: np.ndarray) -> np.ndarray:
            valid = output_frames(len(signal) // 160)
            return backend.combine(hidden_states(backend.encoder, log_mel_30s(signal, backend.n_mels)[None]))[
                :valid
            ]

        times = [warm_timed(lambda s=s: padded(s), args.repeats) for s in signals]
        out["encoder_padded_30s_seconds_per_clip"] = statistics.median(times)
        out["encoder_speedup_unpadded"] = statistics.median(times) / statistics.median(encoder)
    settings = Settings(whisper_model=args.whisper_model, whisper_threads=args.threads, vad="silero")

    def analyze(path: Path, transcript: bool):
        return ser_core.analyze(path, profile="accurate", settings=settings, transcript=transcript)

    clip_analyze = [warm_timed(lambda p=p: analyze(p, False), args.repeats) for p in paths]
    from benchmark_analyze import recording

    signal = recording(args.seconds, args.seed)
    duration = len(signal) / SAMPLE_RATE
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recording.wav"
        sf.write(path, signal, SAMPLE_RATE)
        long_emotion = warm_timed(lambda: analyze(path, False), args.repeats)
        get_transcriber(args.whisper_model, settings)
        long_full = warm_timed(lambda: analyze(path, True), args.repeats)
        words = len(analyze(path, True).words)
    out.update(
        encoder_seconds_per_clip=statistics.median(encoder),
        encoder_rtf=statistics.median(t / d for t, d in zip(encoder, durations, strict=True)),
        analyze_clip_rtf=statistics.median(t / d for t, d in zip(clip_analyze, durations, strict=True)),
        analyze_recording_rtf=long_emotion / duration,
        analyze_recording_transcript_rtf=long_full / duration,
        recording_seconds=round(duration, 1),
        words=words,
        clip_seconds_median=statistics.median(durations),
        clip_files=[str(p.relative_to(corpora_dir())) for p in paths],
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtimes", default="torch,onnx,onnx-int8")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--clip-seconds", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--whisper-model", default="base")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--padded", action="store_true", help="torch: also time the 30 s padded encoder")
    parser.add_argument("--runtime", help=argparse.SUPPRESS)  # a child process: measure this one
    args = parser.parse_args()
    if args.runtime:
        print(json.dumps(measure(args)))
        return
    from ser_core.atomic_files import atomic_write_text

    runtimes = args.runtimes.split(",")
    env = {**os.environ, "SER_HF_THREADS": str(args.threads), "SER_WHISPER_THREADS": str(args.threads)}
    env |= {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    # The pack's conversion and the ONNX export, once, timed apart.
    start = time.perf_counter()
    prepare = "from ser_core.plugins.lookup import get_backend; get_backend('accurate')"
    for runtime in ("torch", "onnx"):
        subprocess.run(
            [sys.executable, "-c", prepare], env={**env, "SER_ACCURATE_RUNTIME": runtime}, check=True
        )
    report: dict = {"threads": args.threads, "rounds": args.rounds, "repeats": args.repeats}
    report["first_use_seconds"] = round(time.perf_counter() - start, 1)
    report["load_average_before"] = round(os.getloadavg()[0], 2)
    rows: dict[str, list[dict]] = {r: [] for r in runtimes}
    for k in range(args.rounds):
        for runtime in runtimes[k % len(runtimes) :] + runtimes[: k % len(runtimes)]:
            command = [sys.executable, __file__, "--runtime", runtime] + sys.argv[1:]
            done = subprocess.run(command, env={**env, "SER_ACCURATE_RUNTIME": runtime}, capture_output=True,
                                  text=True, check=True)  # fmt: skip
            rows[runtime].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(runtime, {key: round(rows[runtime][-1][key], 4) for key in KEYS}, flush=True)
    report["load_average_after"] = round(os.getloadavg()[0], 2)
    first = runtimes[0]
    for runtime, results in rows.items():
        row = {key: round(statistics.median(r[key] for r in results), 4) for key in KEYS}
        for key in KEYS:
            ratios = [r[key] / f[key] for r, f in zip(results, rows[first], strict=True)]
            row[f"{key}_ratio_to_{first}"] = round(statistics.median(ratios), 3)
        for key in ("torch_imported", "words", "recording_seconds", "encoder_padded_30s_seconds_per_clip",
                    "encoder_speedup_unpadded"):  # fmt: skip
            if key in results[0]:
                row[key] = results[0][key]
        row["all_rounds"] = [{key: round(r[key], 4) for key in KEYS} for r in results]
        report[runtime] = row
    report["clip_files"] = rows[first][0]["clip_files"]
    atomic_write_text(ROOT / "reports" / "speed-accurate.json", json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "clip_files"}, indent=1))


if __name__ == "__main__":
    main()
