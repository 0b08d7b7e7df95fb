"""Issue 16 part 3, measurement only: a lighter accurate encoder on CPU.

    python scripts/encoder_speed_experiments.py [--threads 2] [--rounds 5] [--clips 16]
        [--load-repeats 3] [--variants fp32,torch-int8,ort-fp32,ort-int8] [--skip-quality]

Variants of the accurate profile's Whisper base encoder (`pack:base`, hidden states 2-6, mean + std),
all on `--threads` CPU threads:
* `fp32`: the shipped `WhisperEncoderBackend`, unchanged (baseline; its features are the product's
  feature-cache entries);
* `torch-int8`: `torch.ao.quantization.quantize_dynamic` of every `nn.Linear` (qint8 weights,
  activations quantized per batch at run time), run through the same `hidden_states`;
* `ort-fp32`: the encoder exported to ONNX (`torch.onnx.export`, dynamo, dynamic batch and frame
  axes), returning exactly the hidden states the backend pools (indices as `hidden_states`: [i] is
  the input to block i, the last one after the final layer norm), run on ONNX Runtime's
  CPUExecutionProvider (files under `--onnx-dir`, default /tmp/ser-encoder-onnx);
* `ort-int8`: that ONNX model through `onnxruntime.quantization.quantize_dynamic` (QInt8 weights).
* `shared-window` (issue 16 part 2, with `--cross-only`): fp32, but each clip encoded as the
  transcriber's window holds it (log-mel zero-padded to at least 15 s), its own frames pooled:
  the features one encoder pass shared by emotions and words would give.

Measured per variant:
* speed: `encode_batch` (log-mel + encoder + taking the layers, as the backend's feature path) on the
  `--clips` RAVDESS 01-18 clips closest to 3 s, each cut/padded to exactly 3.00 s: batch 1 (one clip
  per call) and batch 8 (8 equal-length clips per call, as feature extraction batches them);
  seconds per clip. Each variant is timed alone in a fresh process (in one process, ONNX Runtime's
  spinning pool threads and torch's OpenMP threads steal the 2 cores from each other: fp32 batch 1
  measured 9x slower beside two ORT sessions), after a warm-up, median of `--inner` passes;
  `--rounds` rounds, every variant once per round (order rotated), the ratio to fp32 taken within
  the round; medians over rounds are reported;
* cold load, in a fresh process (`--load-repeats` times, median): imports (torch + transformers for
  the torch variants; onnxruntime for the ONNX ones; both with the log-mel front end), then load from
  the converted encoder directory (torch: `load_encoder`, + quantization for int8) or from the .onnx
  file (ORT: `InferenceSession`) to ready, then the first 3 s clip; the one-off ONNX export and
  quantization are timed apart (like the pack conversion, done once per machine);
* features: the pooled utterance vectors (speech extent, mean + std, 5120 values) of every file of
  the three corpora, against fp32: max and mean absolute difference, lowest cosine similarity;
* quality: within-corpus speaker-independent UAR with the protocols of scripts/quality.py
  (`PROTOCOL`, `ser_core.training.api.load_features` + `cross_validate`, as `ser_core.evaluate`
  runs them), trained and evaluated on that variant's features. Features go through the product's
  feature extraction and cache; a variant's backend has its own model id
  (`pack:base#<variant>-v1`) and config, so no two variants share a cache entry.
The 1-minute load average before and after is recorded (the machine may be shared).
Writes reports/encoder-speed-experiments.json (after each variant's quality, so a cut run keeps
what it measured).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from corpora import ROOT, corpora_dir
from quality import PROTOCOL

VARIANTS = (
    "fp32",
    "torch-int8",
    "ort-fp32",
    "ort-int8",
    "ort-int8-fc2fp32",
    "ort-int8-pc",
    "ort-int8-pc-fc2fp32",
    "shared-window",
)
#: ONNX Runtime int8 variants: (per-channel weight scales, fc2 layers kept in fp32). Whisper's
#: outlier activations sit in the inputs of the feed-forward output projections (fc2).
INT8 = {
    "ort-int8": (False, False),
    "ort-int8-fc2fp32": (False, True),
    "ort-int8-pc": (True, False),
    "ort-int8-pc-fc2fp32": (True, True),
}
TAG = "v1"  # bump when the export or quantization changes (part of the variant's cache key)
CLIP = 48000  # 3.00 s at 16 kHz


# --- variants ------------------------------------------------------------------------------------


def onnx_paths(onnx_dir: Path) -> dict[str, Path]:
    paths = {"ort-fp32": onnx_dir / "encoder-fp32.onnx", "ort-int8": onnx_dir / "encoder-int8.onnx"}
    return paths | {
        name: onnx_dir / f"encoder-{name.removeprefix('ort-')}.onnx" for name in INT8 if name not in paths
    }


def fc2_nodes(path: Path) -> list[str]:
    """The feed-forward output projections of every block, as the shipped export finds them."""
    import onnx
    from ser_backend_hf.onnx_encoder import fc2_nodes as found

    return found(onnx.load(str(path)))


def quantize_torch(encoder):
    import torch

    return torch.ao.quantization.quantize_dynamic(encoder, {torch.nn.Linear}, dtype=torch.qint8)


def export_onnx(encoder, layers: tuple[int, ...], onnx_dir: Path) -> dict[str, float]:
    """The fp32 ONNX encoder (outputs: the hidden states `layers`, as `hidden_states` indexes them)
    and its ORT dynamic int8 quantization. Returns the seconds each took."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from ser_backend_hf.convert import forward_states

    class HiddenStates(torch.nn.Module):
        def __init__(self, enc) -> None:
            super().__init__()
            self.enc = enc

        def forward(self, mel):
            states = forward_states(self.enc, mel)
            return tuple(states[i] for i in layers)

    onnx_dir.mkdir(parents=True, exist_ok=True)
    paths = onnx_paths(onnx_dir)
    mel = torch.randn(2, encoder.config.num_mel_bins, 300)
    dims = {0: torch.export.Dim("batch", min=1, max=64), 2: torch.export.Dim("frames", min=2, max=3000)}
    start = time.perf_counter()
    torch.onnx.export(
        HiddenStates(encoder).eval(),
        (mel,),
        str(paths["ort-fp32"]),
        input_names=["mel"],
        output_names=[f"hidden_{i}" for i in layers],
        dynamic_shapes=(dims,),
        dynamo=True,
        optimize=True,
        verbose=False,
    )
    export = time.perf_counter() - start
    start = time.perf_counter()
    fc2 = fc2_nodes(paths["ort-fp32"])
    for name, (per_channel, keep_fc2) in INT8.items():
        quantize_dynamic(
            str(paths["ort-fp32"]),
            str(paths[name]),
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            nodes_to_exclude=fc2 if keep_fc2 else [],
        )
    return {
        "onnx_export_seconds": round(export, 2),
        "ort_quantize_seconds": round((time.perf_counter() - start) / len(INT8), 2),
        "fc2_nodes": len(fc2),
    }


def ort_session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def make_backends(names: list[str], threads: int, onnx_dir: Path) -> dict:
    """name -> a backend whose `encode_batch` runs that variant (fp32: the backend on torch, as before issue 16)."""
    import torch
    from ser_backend_hf.convert import hidden_states, log_mel
    from ser_backend_hf.settings import get_hf_settings
    from ser_backend_hf.whisper_encoder import WhisperEncoderBackend

    base = WhisperEncoderBackend(hf=get_hf_settings().model_copy(update={"accurate_runtime": "torch"}))
    torch.set_num_threads(threads)

    class Variant(WhisperEncoderBackend):
        def __init__(self, name: str, run) -> None:
            self.__dict__.update(base.__dict__)
            self.variant, self.run = name, run
            self.model_id = f"{base.model_id}#{name}-{TAG}"

        def config(self) -> dict:
            return {**super().config(), "runtime": f"{self.variant}-{TAG}"}

        def encode_batch(self, signals: np.ndarray) -> list[np.ndarray]:
            mel = np.stack([log_mel(signal, self.n_mels) for signal in signals])
            states = self.run(mel)
            return [self.combine(states, item) for item in range(len(signals))]

    class SharedWindow(Variant):
        """The clip as the transcriber encodes it (`whisper.trimmed`): its log-mel zero-padded to at
        least 15 s (1500 frames) or its length rounded up to a second, the clip's own frames kept."""

        def encode_batch(self, signals: np.ndarray) -> list[np.ndarray]:
            mel = np.stack([log_mel(signal, self.n_mels) for signal in signals])
            frames = mel.shape[-1]
            padded = np.zeros((*mel.shape[:2], max(1500, -(-frames // 100) * 100)), np.float32)
            padded[..., :frames] = mel
            states = hidden_states(base.encoder, torch.from_numpy(padded))
            return [self.combine(states, i)[: (frames + 1) // 2] for i in range(len(signals))]

    backends = {}
    for name in names:
        if name == "fp32":
            backends[name] = base
        elif name.startswith("shipped-"):  # the product's own runtime, its own cache entries
            runtime = name.removeprefix("shipped-")
            shipped = WhisperEncoderBackend(
                hf=get_hf_settings().model_copy(update={"accurate_runtime": runtime})
            )
            shipped.model_id = f"{base.model_id}#{name}-{TAG}"
            backends[name] = shipped
        elif name == "shared-window":  # issue 16 part 2: the clip as the transcriber's window
            backends[name] = SharedWindow(name, None)
        elif name == "torch-int8":
            quantized = quantize_torch(base.encoder)
            backends[name] = Variant(name, lambda mel, q=quantized: hidden_states(q, torch.from_numpy(mel)))
        else:
            session = ort_session(onnx_paths(onnx_dir)[name], threads)

            def run(mel, s=session):
                out = s.run(None, {"mel": mel})
                states: list = [None] * (max(base.layers) + 1)
                for i, array in zip(base.layers, out, strict=True):
                    states[i] = torch.from_numpy(array)
                return states

            backends[name] = Variant(name, run)
    return backends


# --- cold load (in a fresh process) --------------------------------------------------------------


def load_only(name: str, threads: int, onnx_dir: Path, encoder_dir: Path) -> dict:
    """Imports, load to ready, and the first 3 s clip, in this (fresh) process."""
    start = time.perf_counter()
    import faster_whisper.feature_extractor  # noqa: F401 - the log-mel front end, all variants
    from ser_backend_hf.convert import log_mel

    if name.startswith("ort"):
        import onnxruntime  # noqa: F401
    else:
        import torch
        from transformers.models.whisper.modeling_whisper import WhisperEncoder  # noqa: F401

        torch.set_num_threads(threads)
    imports = time.perf_counter() - start
    torch_imported = "torch" in sys.modules
    start = time.perf_counter()
    if name.startswith("ort"):
        session = ort_session(onnx_paths(onnx_dir)[name], threads)

        def run(mel):
            return session.run(None, {"mel": mel})
    else:
        from ser_backend_hf.convert import hidden_states, load_encoder

        encoder = load_encoder(encoder_dir)
        if name == "torch-int8":
            encoder = quantize_torch(encoder)

        def run(mel):
            return [s.numpy() for s in hidden_states(encoder, torch.from_numpy(mel))]

    load = time.perf_counter() - start
    signal = np.random.default_rng(0).normal(0, 0.1, CLIP).astype(np.float32)
    start = time.perf_counter()
    run(log_mel(signal)[None])
    first = time.perf_counter() - start
    return {
        "import_seconds": imports,
        "load_seconds": load,
        "first_clip_seconds": first,
        "torch_imported": torch_imported,
    }


def cold_loads(names: list[str], threads: int, repeats: int, onnx_dir: Path, encoder_dir: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:
            command = [sys.executable, __file__, "--load-only", name, "--threads", str(threads)]
            command += ["--onnx-dir", str(onnx_dir), "--encoder-dir", str(encoder_dir)]
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    result = {}
    for name, rows in runs.items():
        result[name] = {
            key: round(statistics.median(r[key] for r in rows), 3)
            for key in ("import_seconds", "load_seconds", "first_clip_seconds")
        }
        result[name]["torch_imported"] = rows[0]["torch_imported"]
        result[name]["load_seconds_all"] = [round(r["load_seconds"], 3) for r in rows]
    return result


# --- speed ---------------------------------------------------------------------------------------


def clips(count: int) -> list[np.ndarray]:
    """The RAVDESS 01-18 clips closest to 3 s, each cut or zero-padded to exactly 3.00 s."""
    import soundfile as sf

    from ser_core.pipeline.audio import load_audio

    files = sorted((corpora_dir() / "ravdess").rglob("*.flac"))
    near = sorted(files, key=lambda f: (abs(sf.info(str(f)).duration - 3.0), str(f)))[:count]
    return [np.pad(s[:CLIP], (0, max(0, CLIP - len(s)))).astype(np.float32) for s in map(load_audio, near)]


def speed_only(name: str, threads: int, onnx_dir: Path, clips_file: Path, inner: int) -> dict:
    """Seconds per clip of `name` alone in this (fresh) process: batch 1 over every clip, batch 8
    over each group of 8, after one warm-up of each; the median of `inner` passes."""
    backend = make_backends([name], threads, onnx_dir)[name]
    signals = list(np.load(clips_file, allow_pickle=False))
    batch8 = [np.stack(signals[k : k + 8]) for k in range(0, len(signals) - 7, 8)]
    backend.encode_batch(signals[0][None])
    backend.encode_batch(batch8[0])
    out = {}
    for batch in (1, 8):
        passes = []
        for _ in range(inner):
            start = time.perf_counter()
            if batch == 1:
                for signal in signals:
                    backend.encode_batch(signal[None])
                passes.append((time.perf_counter() - start) / len(signals))
            else:
                for stacked in batch8:
                    backend.encode_batch(stacked)
                passes.append((time.perf_counter() - start) / (8 * len(batch8)))
        out[f"batch{batch}"] = statistics.median(passes)
    return out


def speed(
    names: list[str], threads: int, onnx_dir: Path, signals: list[np.ndarray], rounds: int, inner: int
) -> dict:
    """Each variant timed alone in a fresh process (no other runtime's threads spinning beside it),
    `rounds` rounds, every variant once per round (order rotated); ratios to fp32 within a round."""
    from ser_backend_hf.convert import log_mel

    clips_file = onnx_dir / "speed-clips.npy"
    np.save(clips_file, np.stack(signals), allow_pickle=False)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    times = {(n, b): [] for n in names for b in (1, 8)}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            command = [sys.executable, __file__, "--speed-only", name, "--threads", str(threads)]
            command += ["--onnx-dir", str(onnx_dir), "--inner", str(inner)]
            result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            row = json.loads(result.stdout.strip().splitlines()[-1])
            for batch in (1, 8):
                times[name, batch].append(row[f"batch{batch}"])
    start = time.perf_counter()
    for signal in signals:
        log_mel(signal)
    mel_seconds = (time.perf_counter() - start) / len(signals)
    out: dict = {"log_mel_seconds_per_clip": round(mel_seconds, 4), "rounds": rounds, "inner_passes": inner}
    for name in names:
        row = {}
        for batch in (1, 8):
            mine = times[name, batch]
            row[f"batch{batch}_seconds_per_clip"] = round(statistics.median(mine), 4)
            row[f"batch{batch}_rtf"] = round(statistics.median(mine) / 3.0, 4)
            ratios = [t / f for t, f in zip(mine, times["fp32", batch], strict=True)]
            row[f"batch{batch}_ratio_to_fp32"] = round(statistics.median(ratios), 3)
            row[f"batch{batch}_seconds_all_rounds"] = [round(t, 4) for t in mine]
        out[name] = row
    return out


# --- features and quality -----------------------------------------------------------------------


def quality(backend, corpus: str) -> tuple[dict, np.ndarray, list[str]]:
    from ser_core.training.api import cross_validate, load_features

    start = time.perf_counter()
    data = load_features([corpora_dir() / corpus], backend, jobs=1)
    extract_seconds = time.perf_counter() - start
    report = cross_validate(data, PROTOCOL[corpus])
    row = {key: report[key] for key in ("uar", "wa", "macro_f1", "n_files", "cv")}
    row.update(cache_hits=data.cache_hits, extract_seconds=round(extract_seconds, 1))
    return row, data.vectors, [str(item.path) for item in data.items]


def cross_quality(reference, variant, folds) -> dict:
    """UAR of the fp32-trained fold models applied to the variant's features of the same test files:
    the variant as a runtime for a classifier trained on fp32 features (the shipped model)."""
    from ser_core.training.api import cross_validate
    from ser_core.training.metrics import classification_report

    predicted = np.empty(len(reference.labels), dtype=object)

    def on_fold(_group, model, test) -> None:
        probs = model.predict_proba(variant.vectors[test])
        predicted[test] = [model.labels[i] for i in probs.argmax(axis=1)]

    report = cross_validate(reference, folds, on_fold=on_fold)
    crossed = classification_report(reference.labels, list(predicted), sorted(set(reference.labels)))
    return {"uar_fp32_features": report["uar"], "uar": crossed["uar"], "wa": crossed["wa"]}


def feature_diff(vectors: np.ndarray, reference: np.ndarray) -> dict:
    diff = np.abs(vectors.astype(np.float64) - reference)
    cos = (vectors * reference).sum(1) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1))
    return {
        "max_abs": float(diff.max()),
        "mean_abs": float(diff.mean()),
        "max_abs_over_max_ref": float(diff.max() / np.abs(reference).max()),
        "min_cosine": float(cos.min()),
    }


def add_cross(names: list[str], args) -> None:
    from ser_core.atomic_files import atomic_write_text
    from ser_core.training.api import load_features

    report = json.loads(args.out.read_text()) if args.out.exists() else {}
    backends = make_backends(names, args.threads, args.onnx_dir)
    crossed: dict = {}
    for corpus in args.corpora.split(","):
        datasets = {n: load_features([corpora_dir() / corpus], backends[n], jobs=1) for n in names}
        for name in names[1:]:
            row = cross_quality(datasets["fp32"], datasets[name], PROTOCOL[corpus])
            row["uar_delta"] = round(row["uar"] - row["uar_fp32_features"], 4)
            crossed.setdefault(name, {})[corpus] = row
            print(f"cross {name:20s} {corpus:8s} {row}", flush=True)
    report["fp32_model_on_variant_features"] = crossed
    atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--inner", type=int, default=2)
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--load-repeats", type=int, default=3)
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="also shipped-RUNTIME: the backend as SER_ACCURATE_RUNTIME=RUNTIME runs it (--cross-only)",
    )
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument(
        "--cross-only",
        action="store_true",
        help="only add fp32-trained models on each variant's cached features to the --out report",
    )
    parser.add_argument("--corpora", default=",".join(PROTOCOL), help="for --cross-only")
    parser.add_argument("--onnx-dir", type=Path, default=Path("/tmp/ser-encoder-onnx"))
    parser.add_argument("--encoder-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "encoder-speed-experiments.json")
    parser.add_argument("--load-only", choices=VARIANTS)
    # shipped-* variants are measured by --cross-only
    parser.add_argument("--speed-only", choices=VARIANTS)
    args = parser.parse_args()
    if args.speed_only:
        os.environ["SER_HF_THREADS"] = str(args.threads)
        os.environ["SER_HF_DEVICE"] = "cpu"
        clips_file = args.onnx_dir / "speed-clips.npy"
        print(json.dumps(speed_only(args.speed_only, args.threads, args.onnx_dir, clips_file, args.inner)))
        return
    if args.load_only:
        print(json.dumps(load_only(args.load_only, args.threads, args.onnx_dir, args.encoder_dir)))
        return
    names = [n for n in args.variants.split(",") if n]
    if "fp32" not in names:
        sys.exit("fp32 (the baseline) must be among --variants")
    os.environ["SER_HF_THREADS"] = str(args.threads)
    os.environ["SER_HF_DEVICE"] = "cpu"
    load_before = os.getloadavg()[0]
    if args.cross_only:
        add_cross(names, args)
        return

    import torch
    from ser_backend_hf.convert import pack_encoder_dir
    from ser_backend_hf.settings import get_hf_settings

    import ser_core
    from ser_core.atomic_files import atomic_write_text
    from ser_core.settings import get_settings

    torch.set_num_threads(args.threads)
    get_hf_settings.cache_clear()
    hf = get_hf_settings()
    encoder_dir = args.encoder_dir or pack_encoder_dir(
        hf.accurate_model_id.removeprefix("pack:"), get_settings().cache_dir
    )
    report: dict = {
        "model_id": hf.accurate_model_id,
        "layers": hf.accurate_layers,
        "threads": args.threads,
        "torch": torch.__version__,
        "variants": names,
        "clip_seconds": CLIP / 16000,
        "version": ser_core.__version__,
    }
    out_path = args.out

    def write() -> None:
        report["load_average_after"] = round(os.getloadavg()[0], 2)
        atomic_write_text(out_path, json.dumps(report, indent=2) + "\n")

    report["load_average_before"] = round(load_before, 2)
    if any(n.startswith("ort") for n in names):
        import onnxruntime
        from ser_backend_hf.convert import load_encoder

        report["onnxruntime"] = onnxruntime.__version__
        report["onnx_dir"] = str(args.onnx_dir)
        report["export"] = export_onnx(load_encoder(encoder_dir), tuple(range(2, 7)), args.onnx_dir)
        print("export", report["export"], flush=True)
    report["cold_load"] = cold_loads(names, args.threads, args.load_repeats, args.onnx_dir, encoder_dir)
    for name, row in report["cold_load"].items():
        print(f"load {name:11s} {row}", flush=True)
    if hf.accurate_layers.replace(" ", "") != "2-6":
        sys.exit("the ONNX export here takes hidden states 2-6; SER_ACCURATE_LAYERS differs")
    signals = clips(args.clips)
    report["speed"] = speed(names, args.threads, args.onnx_dir, signals, args.rounds, args.inner)
    backends = make_backends(names, args.threads, args.onnx_dir)
    for name in names:
        row = report["speed"][name]
        print(
            f"speed {name:11s} b1 {row['batch1_seconds_per_clip']:.4f} s ({row.get('batch1_ratio_to_fp32')})"
            f"  b8 {row['batch8_seconds_per_clip']:.4f} s ({row.get('batch8_ratio_to_fp32')})",
            flush=True,
        )
    reference_states = backends["fp32"].encode_batch(np.stack(signals[:8]))
    report["speed_clip_frame_max_abs_diff"] = {
        name: float(
            max(
                np.abs(a - b).max()
                for a, b in zip(
                    backends[name].encode_batch(np.stack(signals[:8])), reference_states, strict=True
                )
            )
        )
        for name in names
    }
    write()
    if args.skip_quality:
        return
    report["quality"] = {}
    reference: dict[str, tuple[np.ndarray, list[str]]] = {}
    for name in names:  # fp32 first
        rows = {}
        for corpus in PROTOCOL:
            row, vectors, paths = quality(backends[name], corpus)
            if name == "fp32":
                reference[corpus] = (vectors, paths)
            else:
                ref_vectors, ref_paths = reference[corpus]
                if paths != ref_paths:
                    sys.exit(f"{name} {corpus}: files differ from fp32's")
                row["feature_diff"] = feature_diff(vectors, ref_vectors)
                row["uar_delta"] = round(row["uar"] - report["quality"]["fp32"][corpus]["uar"], 4)
            rows[corpus] = row
            print(
                f"quality {name:11s} {corpus:8s} UAR {row['uar']:.4f} {row.get('uar_delta', '')} "
                f"(hits {row['cache_hits']}, {row['extract_seconds']} s)",
                flush=True,
            )
        report["quality"][name] = rows
        write()
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
