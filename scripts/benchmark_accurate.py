"""Speed of the accurate profile (Whisper base encoder, offline `pack:base`) on CPU.

    python scripts/benchmark_accurate.py [--threads 2] [--repeats 3] [--clips 20] [--seconds 60]

Everything runs on `--threads` torch threads (`SER_HF_THREADS`, `torch.set_num_threads`; the
transcriber gets `SER_WHISPER_THREADS`). Each timing is the median of `--repeats` runs after one
warm-up run. Reports:
* the pack's conversion to a transformers encoder (first use only; 0 when already cached) and the
  model load (backend + accurate emotion model), each timed once, separately;
* encoder only, per clip, on the `--clips` RAVDESS 01-18 clips closest to `--clip-seconds` (3 s):
  the shipped unpadded path (`log_mel` of the real length -> `hidden_states`, positions sliced,
  the chosen layers taken as the backend's `encode_batch` does) against the clip zero-padded to
  30 s (`log_mel_30s` -> `hidden_states` over 3000 frames, valid frames kept): seconds per clip,
  RTF (seconds / clip duration) and the speed-up of the unpadded path (issue 4: >= 5x);
* `ser_core.analyze(clip, profile="accurate", transcript=False)` end to end on the same clips:
  median RTF over the clips;
* the same on a >= `--seconds` recording (RAVDESS actor 05 clips, 0.5 s pauses, as
  scripts/benchmark_analyze.py builds it), and with `transcript=True` (Whisper `--whisper-model`,
  int8) for reference.
The 1-minute load average before and after is recorded (the machine may be shared).
Writes reports/speed-accurate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
from benchmark_analyze import recording, timed
from corpora import ROOT, corpora_dir

import ser_core
from ser_core.atomic_files import atomic_write_text
from ser_core.pipeline.analysis import get_model
from ser_core.pipeline.audio import SAMPLE_RATE, load_audio
from ser_core.plugins.lookup import get_backend, get_transcriber
from ser_core.settings import Settings, get_settings


def clips_near(seconds: float, count: int) -> list[Path]:
    """The `count` RAVDESS clips whose duration is closest to `seconds` (ties by name)."""
    files = sorted((corpora_dir() / "ravdess").rglob("*.flac"))
    return sorted(files, key=lambda f: (abs(sf.info(str(f)).duration - seconds), str(f)))[:count]


def warm_timed(fn, repeats: int) -> float:
    """Median wall time of `repeats` calls after one warm-up call."""
    fn()
    return timed(fn, repeats)[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--clip-seconds", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--whisper-model", default="base")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ["SER_HF_THREADS"] = str(args.threads)
    os.environ["SER_WHISPER_THREADS"] = str(args.threads)
    load_before = os.getloadavg()[0]

    import torch
    from ser_backend_hf.convert import hidden_states, log_mel, log_mel_30s, output_frames, pack_encoder_dir
    from ser_backend_hf.settings import get_hf_settings

    torch.set_num_threads(args.threads)
    get_hf_settings.cache_clear()
    hf = get_hf_settings()
    model_id = hf.accurate_model_id
    conversion = 0.0
    if model_id.startswith("pack:"):
        start = time.perf_counter()
        pack_encoder_dir(model_id.removeprefix("pack:"), get_settings().cache_dir)
        conversion = time.perf_counter() - start
    start = time.perf_counter()
    backend, _ = get_backend("accurate"), get_model("accurate")
    load = time.perf_counter() - start
    torch.set_num_threads(args.threads)  # the backend set hf_threads; keep them equal
    encoder, n_mels = backend.encoder, backend.n_mels

    def unpadded(signal: np.ndarray) -> np.ndarray:
        return backend.combine(hidden_states(encoder, log_mel(signal, n_mels)[None]))

    def padded(signal: np.ndarray) -> np.ndarray:
        valid = output_frames(len(signal) // 160)
        return backend.combine(hidden_states(encoder, log_mel_30s(signal, n_mels)[None]))[:valid]

    paths = clips_near(args.clip_seconds, args.clips)
    signals = [load_audio(p) for p in paths]
    durations = [len(s) / SAMPLE_RATE for s in signals]
    shipped = backend.encode_batch(signals[0][None])[0]
    if not np.array_equal(unpadded(signals[0]), shipped):
        sys.exit("the unpadded path here differs from the backend's encode_batch")
    enc_unpadded = [warm_timed(lambda s=s: unpadded(s), args.repeats) for s in signals]
    enc_padded = [warm_timed(lambda s=s: padded(s), args.repeats) for s in signals]

    settings = Settings(whisper_model=args.whisper_model, whisper_threads=args.threads, vad="silero")

    def analyze(path: Path, transcript: bool):
        return ser_core.analyze(path, profile="accurate", settings=settings, transcript=transcript)

    clip_analyze = [warm_timed(lambda p=p: analyze(p, False), args.repeats) for p in paths]

    signal = recording(args.seconds, args.seed)
    duration = len(signal) / SAMPLE_RATE
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recording.wav"
        sf.write(path, signal, SAMPLE_RATE)
        long_emotion = warm_timed(lambda: analyze(path, False), args.repeats)
        start = time.perf_counter()
        get_transcriber(args.whisper_model, settings)
        whisper_load = time.perf_counter() - start
        long_full = warm_timed(lambda: analyze(path, True), args.repeats)
        words = len(analyze(path, True).words)
    load_after = os.getloadavg()[0]

    def med(values: list[float], digits: int = 4) -> float:
        return round(statistics.median(values), digits)

    unpadded_rtf = [t / d for t, d in zip(enc_unpadded, durations, strict=True)]
    padded_rtf = [t / d for t, d in zip(enc_padded, durations, strict=True)]
    analyze_rtf = [t / d for t, d in zip(clip_analyze, durations, strict=True)]
    report = {
        "model_id": model_id,
        "threads": args.threads,
        "torch_threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "clips": len(paths),
        "clip_seconds_median": med(durations, 2),
        "clip_seconds_range": [round(min(durations), 2), round(max(durations), 2)],
        "conversion_seconds": round(conversion, 2),
        "model_load_seconds": round(load, 2),
        "encoder_unpadded_seconds_per_clip": med(enc_unpadded),
        "encoder_unpadded_rtf": med(unpadded_rtf),
        "encoder_padded_30s_seconds_per_clip": med(enc_padded),
        "encoder_padded_30s_rtf": med(padded_rtf),
        "encoder_speedup_unpadded": round(statistics.median(enc_padded) / statistics.median(enc_unpadded), 2),
        "encoder_speedup_min_over_clips": round(
            min(p / u for p, u in zip(enc_padded, enc_unpadded, strict=True)), 2
        ),
        "analyze_clip_seconds": med(clip_analyze),
        "analyze_clip_rtf": med(analyze_rtf),
        "recording_seconds": round(duration, 1),
        "analyze_recording_seconds": round(long_emotion, 2),
        "analyze_recording_rtf": round(long_emotion / duration, 4),
        "whisper_model": args.whisper_model,
        "whisper_load_seconds": round(whisper_load, 2),
        "analyze_recording_transcript_seconds": round(long_full, 2),
        "analyze_recording_transcript_rtf": round(long_full / duration, 4),
        "words": words,
        "load_average_before": round(load_before, 2),
        "load_average_after": round(load_after, 2),
        "clip_files": [str(p.relative_to(corpora_dir())) for p in paths],
        "version": ser_core.__version__,
    }
    for key, value in report.items():
        if key != "clip_files":
            print(f"{key:38s} {value}")
    atomic_write_text(ROOT / "reports" / "speed-accurate.json", json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
