"""The Hugging Face backends on another device (a GPU): same numbers as on the CPU, and speed.

    python scripts/benchmark_hf_device.py [--device cuda] [--clips 64]

No weights are downloaded: a randomly initialised wav2vec2 of base size (12 layers, 768 dims,
95M parameters) is written with `save_pretrained` and loaded by the medium profile's real path
(`SER_MEDIUM_MODEL_ID=<dir>`), once on the CPU and once on `--device`. Prints the largest
difference between the two devices' frames and pooled vectors, the embedding real-time factor
of 3 s clips (batched by `embed_many`) and of a 60 s recording on each, and runs
`ser_core.analyze(..., profile="medium")` end to end on the device with a model trained on
synthetic clips. Writes reports/hf-device.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


def speechlike(seconds: float, f0: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    voice = 0.3 * np.sin(2 * np.pi * f0 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    return (voice + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def backend_on(device: str):
    from ser_backend_hf.settings import get_hf_settings

    from ser_core.plugins import manager as plugins
    from ser_core.plugins.lookup import get_backend, get_backend_by_id
    from ser_core.settings import get_settings

    os.environ["SER_HF_DEVICE"] = device
    for cache in (get_settings, get_hf_settings, get_backend_by_id):
        cache.cache_clear()
    plugins.reset()
    return get_backend("medium")


def timed(fn, repeats: int = 3) -> tuple[float, object]:
    out, best = None, float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--clips", type=int, default=64)
    args = parser.parse_args()
    import torch
    import transformers

    tmp = Path(tempfile.mkdtemp(prefix="ser-hf-device-"))
    torch.manual_seed(0)
    model_dir = tmp / "wav2vec2-base-random"
    transformers.Wav2Vec2Model(transformers.Wav2Vec2Config()).save_pretrained(model_dir)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(model_dir)
    os.environ.update(SER_MEDIUM_MODEL_ID=str(model_dir), SER_CACHE_DIR=str(tmp / "cache"))
    os.environ.update(SER_TRANSCRIPT="false", SER_VAD="energy", SER_FEATURE_CACHE="false")
    clips = [speechlike(3.0, 120 + 5 * (i % 20), i) for i in range(args.clips)]
    long = speechlike(60.0, 150, 999)
    report: dict[str, object] = {"torch": torch.__version__, "model": "wav2vec2 base config, random weights"}
    if torch.cuda.is_available():
        report["gpu"] = torch.cuda.get_device_name(0)
    vectors, frames = {}, {}
    for device in ("cpu", args.device):
        backend = backend_on(device)
        backend.embed_many(clips[:8])  # warm-up
        seconds, vectors[device] = timed(lambda b=backend: b.embed_many(clips))
        long_seconds, frames[device] = timed(lambda b=backend: b.frames(long))
        report[device] = {
            "device_used": str(getattr(backend, "device", device)),
            "clips_rtf": round(seconds / (3.0 * len(clips)), 5),
            "long_60s_rtf": round(long_seconds / 60.0, 5),
        }
        print(device, report[device], flush=True)
    a, b = np.stack(vectors["cpu"]), np.stack(vectors[args.device])
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    report["max_abs_diff_vectors"] = float(np.abs(a - b).max())
    report["min_cosine_vectors"] = float(cosine.min())
    report["max_abs_diff_frames_60s"] = float(np.abs(frames["cpu"] - frames[args.device]).max())
    print({k: report[k] for k in ("max_abs_diff_vectors", "min_cosine_vectors", "max_abs_diff_frames_60s")})

    import ser_core

    corpus = tmp / "corpus"
    corpus.mkdir()
    for s, speaker in enumerate(("03", "08", "09")):
        for take in range(3):
            sf.write(corpus / f"{speaker}a0{take + 1}Wa.wav", speechlike(2.0, 240 + 10 * s, 10 * s + take), 16000)
            sf.write(corpus / f"{speaker}a0{take + 1}Ta.wav", speechlike(2.0, 110 + 5 * s, 50 + 10 * s + take) * 0.3, 16000)
    backend_on(args.device)
    trained = ser_core.train([corpus], profile="medium", out=tmp / "medium.npz", holdout=0)
    recording = tmp / "talk.wav"
    sf.write(recording, np.concatenate([speechlike(20.0, 245, 1), np.zeros(16000, np.float32), 0.3 * speechlike(20.0, 112, 2)]), 16000)
    start = time.perf_counter()
    result = ser_core.analyze(recording, profile="medium", model=trained.path)
    report["analyze"] = {
        "seconds": round(time.perf_counter() - start, 3),
        "duration": result.duration,
        "segments": [(s.start, s.end, s.label) for s in result.segments],
    }
    print(report["analyze"], flush=True)
    out = Path(os.environ.get("OUT", ROOT / "reports")) / "hf-device.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
