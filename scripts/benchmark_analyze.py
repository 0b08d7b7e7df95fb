"""Speed of `ser analyze` with transcript on a 60 s English recording (fast profile, Whisper int8).

    python scripts/benchmark_analyze.py [--whisper-model base] [--threads 2] [--repeats 3]

The recording: RAVDESS clips of one actor (seeded shuffle) joined with 0.5 s pauses up to >= 60 s.
Reports, on `--threads` CPU threads:
* model load (backend + emotion model + transcriber), timed once, separately;
* `ser_core.analyze(..., transcript=True)` wall time / audio time (RTF), median of `--repeats`;
* the emotion part alone (`transcript=False`);
* plain faster-whisper on the same audio (`WhisperModel.transcribe(word_timestamps=True,
  vad_filter=True)`, beam 5, same model and threads): the baseline the batched pipeline is
  compared with.
Writes reports/speed-analyze.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
from corpora import ROOT, corpora_dir

import ser_core
from ser_core.atomic_files import atomic_write_text
from ser_core.pipeline.analysis import get_model
from ser_core.pipeline.audio import SAMPLE_RATE, load_audio
from ser_core.plugins.lookup import get_backend, get_transcriber
from ser_core.settings import Settings


def recording(seconds: float, seed: int) -> np.ndarray:
    files = sorted((corpora_dir() / "ravdess" / "Actor_05").glob("*.flac"))
    order = np.random.default_rng(seed).permutation(len(files))
    pause = np.zeros(SAMPLE_RATE // 2, np.float32)
    parts, total = [], 0.0
    for i in order:
        clip = load_audio(files[i])
        parts += [clip, pause]
        total += (len(clip) + len(pause)) / SAMPLE_RATE
        if total >= seconds:
            break
    return np.concatenate(parts)


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--whisper-model", default="base")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings = Settings(whisper_model=args.whisper_model, whisper_threads=args.threads, vad="silero")
    signal = recording(args.seconds, args.seed)
    duration = len(signal) / SAMPLE_RATE
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recording.wav"
        sf.write(path, signal, SAMPLE_RATE)
        start = time.perf_counter()
        get_backend("fast"), get_model("fast")
        transcriber = get_transcriber(args.whisper_model, settings)
        load = time.perf_counter() - start
        full, result = timed(lambda: ser_core.analyze(path, settings=settings, transcript=True), args.repeats)
        emotion, _ = timed(lambda: ser_core.analyze(path, settings=settings, transcript=False), args.repeats)

    def plain():
        segments, _ = transcriber.model.transcribe(signal, language="en", word_timestamps=True, vad_filter=True)
        return [w for s in segments for w in s.words or []]

    baseline, plain_words = timed(plain, args.repeats)
    report = {
        "audio_seconds": round(duration, 1),
        "whisper_model": args.whisper_model,
        "threads": args.threads,
        "model_load_seconds": round(load, 2),
        "analyze_rtf": round(full / duration, 4),
        "analyze_seconds": round(full, 2),
        "emotion_only_rtf": round(emotion / duration, 4),
        "plain_faster_whisper_rtf": round(baseline / duration, 4),
        "speedup_vs_plain": round(baseline / full, 2),
        "words": len(result.words),
        "plain_words": len(plain_words),
        "version": ser_core.__version__,
    }
    for key, value in report.items():
        print(f"{key:26s} {value}")
    atomic_write_text(ROOT / "reports" / "speed-analyze.json", json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
