"""CTranslate2 Whisper packs -> a Hugging Face `transformers.WhisperEncoder`, plus Whisper's front end.

Why: the ser_core model packs ship Whisper as CTranslate2 `model.bin` files (float16), which only
CTranslate2 can run, and CTranslate2's encoder insists on 30 s (3000 frame) inputs. Converted to a
`WhisperEncoder` the same weights run in PyTorch, on any input length up to 30 s (see `encode`).

Output layout (`convert`): a directory loadable with `transformers.WhisperEncoder.from_pretrained`
(or `load_encoder`): `config.json` (a full `WhisperConfig`, decoder sizes included for reference)
and `model.safetensors` holding the *encoder only*, keys as in `WhisperEncoder.state_dict()`
(`conv1.weight`, `layers.0.self_attn.q_proj.weight`, ...; no `encoder.` prefix). We deliberately do
not write a `WhisperModel`: its decoder would be missing and get randomly initialised with warnings.
Weights are stored float32 (the source is float16; widening is exact). `ser_conversion.json`
records where it came from (see `CONVERSION_FORMAT`).

Weight mapping (CTranslate2 name -> WhisperEncoder name), N = layer index:

    encoder/conv1/{weight,bias}                     conv1.{weight,bias}
    encoder/conv2/{weight,bias}                     conv2.{weight,bias}
    encoder/position_encodings/encodings            embed_positions.weight
    encoder/layer_N/self_attention/layer_norm/{gamma,beta}
                                                    layers.N.self_attn_layer_norm.{weight,bias}
    encoder/layer_N/self_attention/linear_0/weight  rows [0:d) q_proj, [d:2d) k_proj, [2d:3d) v_proj
    encoder/layer_N/self_attention/linear_0/bias    same split; the k part is dropped (Whisper's
                                                    k_proj has no bias; CTranslate2 stores zeros.
                                                    A key bias adds q.b to every logit of a query,
                                                    which softmax cancels, so dropping it is exact)
    encoder/layer_N/self_attention/linear_1/*       layers.N.self_attn.out_proj.*
    encoder/layer_N/ffn/layer_norm/{gamma,beta}     layers.N.final_layer_norm.{weight,bias}
    encoder/layer_N/ffn/linear_0/*                  layers.N.fc1.*
    encoder/layer_N/ffn/linear_1/*                  layers.N.fc2.*
    encoder/layer_norm/{gamma,beta}                 layer_norm.{weight,bias}
    encoder/num_heads (int16 scalar)                config.encoder_attention_heads

int8/int16-quantized packs (`<weight>_scale` next to a weight) are dequantized (`q / scale`).
Any CTranslate2 encoder variable that is not consumed, or any WhisperEncoder parameter that is not
filled, raises `ValueError`.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ser_backend_hf.ct2 import read_index, read_variables
from ser_core.atomic_files import atomic_directory
from ser_core.pipeline.model_packs import sha256_file

if TYPE_CHECKING:
    import torch
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

__all__ = [
    "CONVERSION_FORMAT",
    "HOP_LENGTH",
    "N_FRAMES_30S",
    "N_SAMPLES_30S",
    "SAMPLE_RATE",
    "convert",
    "encode",
    "encoder_state_dict",
    "load_encoder",
    "log_mel",
    "log_mel_30s",
    "output_frames",
    "pack_encoder_dir",
    "whisper_config_from_ct2",
    "whisper_encoder_from_ct2",
]

log = logging.getLogger(__name__)

#: Version of the converted directory's layout; bump to force re-conversion of caches.
CONVERSION_FORMAT = 1
METADATA_FILE = "ser_conversion.json"
SAMPLE_RATE = 16_000
HOP_LENGTH = 160
N_FFT = 400
N_SAMPLES_30S = 30 * SAMPLE_RATE
N_FRAMES_30S = N_SAMPLES_30S // HOP_LENGTH  # 3000 mel frames -> 1500 encoder frames

_LAYER = re.compile(r"^encoder/layer_(\d+)/")


# --------------------------------------------------------------------------------------------
# weights


def _dense(variables: dict[str, np.ndarray], name: str) -> np.ndarray:
    """A float32 copy of a variable, dequantized when CTranslate2 stored a scale next to it."""
    value = variables[name]
    scale = variables.get(name + "_scale")
    if scale is None:
        if not np.issubdtype(value.dtype, np.floating):
            raise ValueError(f"{name}: {value.dtype} weights without a {name}_scale")
        return np.asarray(value, dtype=np.float32)
    scale = np.asarray(scale, dtype=np.float32)
    if scale.ndim == 1:  # per output row (int8); conv weights are scaled per output channel
        scale = scale.reshape((-1,) + (1,) * (value.ndim - 1))
    return value.astype(np.float32) / scale


def whisper_config_from_ct2(ct2_dir: str | os.PathLike[str]) -> WhisperConfig:
    """A `WhisperConfig` whose sizes are read from a CTranslate2 Whisper `model.bin` (header only)."""

    index = read_index(ct2_dir)
    if index.spec != "WhisperSpec":
        raise ValueError(f"{index.path}: a {index.spec}, not a CTranslate2 Whisper model")
    heads = read_variables(index.path, prefix=("encoder/num_heads", "decoder/num_heads"))
    return _config(
        {name: info.shape for name, info in index.variables.items()},
        int(heads["encoder/num_heads"]),
        int(heads["decoder/num_heads"]) if "decoder/num_heads" in heads else None,
    )


def _config(shapes: dict[str, tuple[int, ...]], heads: int, decoder_heads: int | None) -> WhisperConfig:
    from transformers import WhisperConfig

    try:
        d_model, n_mels, _ = shapes["encoder/conv1/weight"]
        positions, _ = shapes["encoder/position_encodings/encodings"]
        ffn, _ = shapes["encoder/layer_0/ffn/linear_0/weight"]
    except (KeyError, ValueError) as exc:
        raise ValueError(f"not a CTranslate2 Whisper encoder: {exc}") from None
    layers = 1 + max(int(m.group(1)) for m in map(_LAYER.match, shapes) if m)
    dec_layers = {int(m.group(1)) for m in map(re.compile(r"^decoder/layer_(\d+)/").match, shapes) if m}
    vocab = shapes.get("decoder/embeddings/weight", (51865,))[0]
    target_positions = shapes.get("decoder/position_encodings/encodings", (448,))[0]
    if d_model % heads:
        raise ValueError(f"d_model {d_model} is not a multiple of {heads} heads")
    return WhisperConfig(
        vocab_size=vocab,
        num_mel_bins=n_mels,
        d_model=d_model,
        encoder_layers=layers,
        encoder_attention_heads=heads,
        encoder_ffn_dim=ffn,
        decoder_layers=max(dec_layers) + 1 if dec_layers else layers,
        decoder_attention_heads=decoder_heads or heads,
        decoder_ffn_dim=shapes.get("decoder/layer_0/ffn/linear_0/weight", (ffn,))[0],
        max_source_positions=positions,
        max_target_positions=target_positions,
        activation_function="gelu",
        scale_embedding=False,
    )


def encoder_state_dict(
    variables: dict[str, np.ndarray],
) -> tuple[WhisperConfig, dict[str, np.ndarray]]:
    """Config and `WhisperEncoder` state dict (float32 numpy) from CTranslate2 variables.

    `variables` needs the `encoder/` variables (e.g. `read_variables(path, prefix="encoder/")`).
    Raises `ValueError` when an encoder variable is left over (an unknown layout)."""
    shapes = {name: tuple(value.shape) for name, value in variables.items()}
    if "encoder/num_heads" not in variables:
        raise ValueError("no encoder/num_heads: not a CTranslate2 Whisper model")
    heads = int(variables["encoder/num_heads"])
    config = _config(shapes, heads, None)
    d = config.d_model
    used: set[str] = {"encoder/num_heads"}
    out: dict[str, np.ndarray] = {}

    def take(src: str) -> np.ndarray:
        if src not in variables:
            raise ValueError(f"CTranslate2 model has no {src}")
        used.add(src)
        if src + "_scale" in variables:
            used.add(src + "_scale")
        return _dense(variables, src)

    def linear(src: str, dst: str) -> None:
        out[dst + ".weight"] = take(src + "/weight")
        out[dst + ".bias"] = take(src + "/bias")

    def norm(src: str, dst: str) -> None:
        out[dst + ".weight"] = take(src + "/gamma")
        out[dst + ".bias"] = take(src + "/beta")

    linear("encoder/conv1", "conv1")
    linear("encoder/conv2", "conv2")
    out["embed_positions.weight"] = take("encoder/position_encodings/encodings")
    for i in range(config.encoder_layers):
        src, dst = f"encoder/layer_{i}", f"layers.{i}"
        norm(f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm")
        qkv_w = take(f"{src}/self_attention/linear_0/weight")
        qkv_b = take(f"{src}/self_attention/linear_0/bias")
        if qkv_w.shape != (3 * d, d) or qkv_b.shape != (3 * d,):
            raise ValueError(
                f"{src}/self_attention/linear_0: expected a fused q/k/v projection of shape "
                f"({3 * d}, {d}), got {qkv_w.shape}"
            )
        for j, name in enumerate(("q_proj", "k_proj", "v_proj")):
            out[f"{dst}.self_attn.{name}.weight"] = qkv_w[j * d : (j + 1) * d].copy()
            if name != "k_proj":  # see the module docstring: a key bias is a no-op under softmax
                out[f"{dst}.self_attn.{name}.bias"] = qkv_b[j * d : (j + 1) * d].copy()
        linear(f"{src}/self_attention/linear_1", f"{dst}.self_attn.out_proj")
        norm(f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm")
        linear(f"{src}/ffn/linear_0", f"{dst}.fc1")
        linear(f"{src}/ffn/linear_1", f"{dst}.fc2")
    norm("encoder/layer_norm", "layer_norm")

    leftover = sorted(n for n in variables if n.startswith("encoder/") and n not in used)
    if leftover:
        raise ValueError(f"unmapped CTranslate2 encoder variables: {', '.join(leftover[:8])}")
    return config, out


def whisper_encoder_from_ct2(ct2_dir: str | os.PathLike[str]) -> WhisperEncoder:
    """A float32 `transformers.WhisperEncoder` in eval mode with the weights of a CTranslate2
    Whisper model directory (or `model.bin`). Only the encoder's variables are read."""
    index = read_index(ct2_dir)
    if index.spec != "WhisperSpec":
        raise ValueError(f"{index.path}: a {index.spec}, not a CTranslate2 Whisper model")
    variables = read_variables(index.path, prefix=("encoder/", "decoder/num_heads"))
    _, state = encoder_state_dict(variables)
    dec_heads = variables.get("decoder/num_heads")
    # The full header gives the decoder's sizes too, for a faithful config.json.
    config = _config(
        {name: info.shape for name, info in index.variables.items()},
        int(variables["encoder/num_heads"]),
        None if dec_heads is None else int(dec_heads),
    )
    return _build(config, state)


def _build(config: WhisperConfig, state: dict[str, np.ndarray]) -> WhisperEncoder:
    import torch
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    encoder = WhisperEncoder(config)
    expected = set(encoder.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(
            f"CTranslate2 -> WhisperEncoder mapping incomplete: missing {missing[:8]}, "
            f"unexpected {unexpected[:8]}"
        )
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}
    encoder.load_state_dict(tensors, strict=True)
    return encoder.float().eval()


def load_encoder(path: str | os.PathLike[str]) -> WhisperEncoder:
    """A converted directory (from `convert`/`pack_encoder_dir`) as a float32 eval `WhisperEncoder`."""
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    return WhisperEncoder.from_pretrained(str(path)).float().eval()


# --------------------------------------------------------------------------------------------
# conversion to a directory


def _read_meta(out_dir: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((out_dir / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict):
        return None
    if not all((out_dir / f).is_file() for f in ("config.json", "model.safetensors")):
        return None
    return meta


def _convert_unlocked(ct2_dir: Path, out_dir: Path, name: str, sha256: str | None) -> Path:
    import transformers

    source = ct2_dir / "model.bin" if ct2_dir.is_dir() else ct2_dir
    stat = source.stat()
    encoder = whisper_encoder_from_ct2(source)
    meta = {
        "format": CONVERSION_FORMAT,
        "source_pack": name,
        "source_file": "model.bin",
        "source_size": stat.st_size,
        "source_mtime_ns": stat.st_mtime_ns,
        "source_sha256": sha256 or sha256_file(source),
        "transformers_version": transformers.__version__,
        "architecture": "WhisperEncoder",
        "dtype": "float32",
    }
    with atomic_directory(out_dir) as staging:
        encoder.save_pretrained(str(staging))
        (staging / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    log.info("converted %s (%s) into %s", name, source, out_dir)
    return out_dir


def convert(ct2_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], name: str) -> Path:
    """Convert a CTranslate2 Whisper model directory into a `WhisperEncoder.from_pretrained`
    directory `out_dir` (config.json, model.safetensors, ser_conversion.json), replacing it.

    Built in a temporary sibling directory and renamed into place under `<out_dir>.lock`, so
    readers never see a half-written directory. `name` is recorded as the source pack."""
    from filelock import FileLock

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out_dir) + ".lock"):
        return _convert_unlocked(Path(ct2_dir), out_dir, name, None)


def _up_to_date(meta: dict[str, Any] | None, name: str, source: Path, sha256: str | None) -> bool:
    if meta is None or meta.get("format") != CONVERSION_FORMAT or meta.get("source_pack") != name:
        return False
    stat = source.stat()
    if meta.get("source_size") != stat.st_size:
        return False
    if sha256 is not None:  # the pack told us its digest: compare without hashing
        return meta.get("source_sha256") == sha256
    if meta.get("source_mtime_ns") == stat.st_mtime_ns:
        return True
    return meta.get("source_sha256") == sha256_file(source)


def _pack_sha256(ct2_dir: Path) -> str | None:
    """The digest ser_core recorded when it joined a split pack (`pack.json`), if any."""
    try:
        value = json.loads((ct2_dir / "pack.json").read_text()).get("sha256")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def pack_encoder_dir(name: str, cache_dir: str | os.PathLike[str]) -> Path:
    """The converted encoder directory of a ser_core model pack (`"tiny.en"`, `"base"`):
    `cache_dir/hf_whisper/<name>`, converted on first use and reused while its
    `ser_conversion.json` matches the installed pack. `FileNotFoundError` (with the pip command)
    when the pack is not installed, `KeyError` for an unknown name."""
    from filelock import FileLock

    from ser_core.pipeline.model_packs import PACKS, pack_dir

    if name not in PACKS:
        raise KeyError(f"unknown model pack {name!r}; known: {', '.join(PACKS)}")
    pack = PACKS[name]
    cache_dir = Path(cache_dir)
    ct2_dir = pack_dir(pack, cache_dir)
    if ct2_dir is None:
        raise FileNotFoundError(f"whisper model pack {name!r} is not installed: {pack.pip}")
    source = ct2_dir / "model.bin"
    sha256 = pack.sha256 or _pack_sha256(ct2_dir)
    out_dir = cache_dir / "hf_whisper" / name
    if _up_to_date(_read_meta(out_dir), name, source, sha256):
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out_dir) + ".lock"):
        if not _up_to_date(_read_meta(out_dir), name, source, sha256):  # maybe done meanwhile
            _convert_unlocked(ct2_dir, out_dir, name, sha256)
    return out_dir


# --------------------------------------------------------------------------------------------
# front end and a length-flexible forward


@functools.lru_cache(maxsize=4)
def _feature_extractor(n_mels: int):
    from faster_whisper.feature_extractor import FeatureExtractor

    return FeatureExtractor(
        feature_size=n_mels, sampling_rate=SAMPLE_RATE, hop_length=HOP_LENGTH, n_fft=N_FFT
    )


def log_mel(signal: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """Whisper's log-mel spectrogram of a 16 kHz mono signal, NOT padded to 30 s:
    float32 `(n_mels, len(signal) // 160)` (faster-whisper's numpy implementation, without its
    one-hop tail padding). Signals shorter than one FFT window (400 samples) are zero-padded to it.

    Note the dynamic range clamp (`max - 8`) is over this signal only, exactly as when the same
    audio is zero-padded to 30 s (the padding sits at the floor), so the valid frames of
    `log_mel(x)` equal those of `log_mel_30s(x)` except the last ~2, whose window sees the end."""
    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim != 1:
        raise ValueError(f"log_mel expects a mono 1-D signal, got shape {signal.shape}")
    if signal.size < N_FFT:
        signal = np.pad(signal, (0, N_FFT - signal.size))
    return np.ascontiguousarray(_feature_extractor(n_mels)(signal, padding=0), dtype=np.float32)


def log_mel_30s(signal: np.ndarray, n_mels: int = 80) -> np.ndarray:
    """The padded input Whisper (openai-whisper, transformers) feeds its encoder: the audio
    zero-padded (or trimmed) to 30 s, then `log_mel`: `(n_mels, 3000)`."""
    signal = np.asarray(signal, dtype=np.float32)[:N_SAMPLES_30S]
    return log_mel(np.pad(signal, (0, N_SAMPLES_30S - signal.size)), n_mels)


def output_frames(n_mel_frames: int) -> int:
    """Encoder frames for `n_mel_frames` input frames (conv2 has stride 2, padding 1): ceil(n/2)."""
    return (n_mel_frames + 1) // 2


def encode(encoder: WhisperEncoder, features: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Run `encoder` on log-mel features of ANY length up to 3000 frames, without padding to 30 s.

    `features`: `(n_mels, T)` or `(batch, n_mels, T)`; returns `(batch, ceil(T/2), d_model)`.
    `WhisperEncoder.forward` (transformers >= 4.4x) rejects T != 3000, so this is a thin forward
    over the module's own layers: conv1 -> GELU -> conv2 -> GELU, plus `embed_positions.weight[:T']`
    (the first T' = ceil(T/2) sinusoids, i.e. positions sliced to the real length), then every
    `encoder.layers[i]` without a mask, then `encoder.layer_norm`. For T == 3000 this is the same
    computation as `encoder(features).last_hidden_state`. Runs under `torch.inference_mode`.

    The encoder attends over all frames, so the valid frames of an unpadded run differ slightly
    from those of a padded one (padding frames are attended to): see tests/test_convert.py."""
    import torch

    x = torch.as_tensor(features, dtype=torch.float32)
    if x.ndim == 2:
        x = x[None]
    encode_checks(encoder, x)
    with torch.inference_mode():
        return forward_states(encoder, x)[-1]


def hidden_states(encoder: WhisperEncoder, features: np.ndarray | torch.Tensor) -> list[torch.Tensor]:
    """Like `encode`, but every hidden state, indexed as transformers' `output_hidden_states`:
    [0] the input to the first block (convolutions + positions), [i] the output of block i, and
    the last one after the final layer norm. Each `(batch, ceil(T/2), d_model)`."""
    import torch

    x = torch.as_tensor(features, dtype=torch.float32)
    if x.ndim == 2:
        x = x[None]
    encode_checks(encoder, x)
    with torch.inference_mode():
        return forward_states(encoder, x)


def forward_states(encoder: WhisperEncoder, x: torch.Tensor) -> list[torch.Tensor]:
    """The forward pass of `hidden_states` on checked `(batch, n_mels, T)` features, without its
    checks and inference mode (so that `torch.onnx.export` can trace it)."""
    import torch

    h = torch.nn.functional.gelu(encoder.conv1(x))
    h = torch.nn.functional.gelu(encoder.conv2(h)).permute(0, 2, 1)
    h = h + encoder.embed_positions.weight[: h.shape[1]]
    states = []
    for layer in encoder.layers:
        states.append(h)
        h = _call_layer(layer, h)
    states.append(encoder.layer_norm(h))
    return states


def encode_checks(encoder: WhisperEncoder, x: torch.Tensor) -> None:
    if x.ndim != 3 or x.shape[1] != encoder.config.num_mel_bins:
        raise ValueError(
            f"expected features (batch, {encoder.config.num_mel_bins}, frames), got {tuple(x.shape)}"
        )
    limit = encoder.config.max_source_positions * 2
    if not 0 < x.shape[-1] <= limit:
        raise ValueError(f"expected 1..{limit} mel frames, got {x.shape[-1]}")


def _call_layer(layer: torch.nn.Module, h: torch.Tensor) -> torch.Tensor:
    """One `WhisperEncoderLayer` without mask; transformers 4.x wants `layer_head_mask` and returns
    a tuple, 5.x neither."""
    try:
        out = layer(h, None)
    except TypeError:
        out = layer(h, None, layer_head_mask=None)
    return out[0] if isinstance(out, tuple) else out
