"""`hf_whisper` (accurate profile): hidden states of a Whisper encoder, run on the real length of
the audio (no padding to 30 s; longer audio in overlapping 30 s chunks, stitched at 50 Hz).

Model ids: `pack:base` / `pack:tiny.en` (the CTranslate2 model packs, converted once to a
transformers encoder, see `ser_backend_hf.convert`), a transformers Whisper hub id such as
`openai/whisper-large-v3` (users with a network), or a local directory of either kind.

Runtimes (`SER_ACCURATE_RUNTIME`): `onnx-int8` and `onnx` run a pack's encoder on ONNX Runtime
(`ser_backend_hf.onnx_encoder`), `torch` runs it in PyTorch on `SER_HF_DEVICE`. `auto`: ONNX
Runtime int8 for packs on a machine without a CUDA GPU, else torch (hub ids and directories always).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ser_backend_hf.convert import hidden_states, load_encoder, log_mel, pack_encoder_dir
from ser_backend_hf.hidden_states import HiddenStateBackend
from ser_backend_hf.onnx_encoder import OnnxEncoder, onnx_files
from ser_backend_hf.settings import HFSettings, get_hf_settings
from ser_backend_hf.torch_utils import load_pretrained, pick_device, quiet_transformers, set_threads
from ser_core.errors import ArtifactError

PACK_PREFIX = "pack:"
MAX_SECONDS = 30.0
RUNTIMES = ("auto", "onnx-int8", "onnx", "torch")


def pick_runtime(hf: HFSettings) -> str:
    """The runtime `SER_ACCURATE_RUNTIME` asks for; `auto` resolved without importing torch."""
    runtime = hf.accurate_runtime
    if runtime not in RUNTIMES:
        raise ArtifactError(f"SER_ACCURATE_RUNTIME={runtime!r}: one of {', '.join(RUNTIMES)}")
    if runtime != "auto":
        return runtime
    if not hf.accurate_model_id.startswith(PACK_PREFIX) or hf.hf_device not in ("auto", "cpu"):
        return "torch"
    return "onnx-int8" if hf.hf_device == "cpu" or not _has_cuda() else "torch"


def _has_cuda() -> bool:
    """A CUDA GPU, asked of CTranslate2 (installed with the transcriber; cheap to import)."""
    try:
        import ctranslate2

        return ctranslate2.get_cuda_device_count() > 0
    except (ImportError, RuntimeError):
        return False


def _pack_dir(model_id: str, cache_dir: Path) -> Path:
    """The converted encoder directory of a `pack:` model id (converted on first use)."""
    try:
        return pack_encoder_dir(model_id.removeprefix(PACK_PREFIX), cache_dir)
    except (FileNotFoundError, KeyError) as exc:
        raise ArtifactError(f"accurate model {model_id!r}: {exc.args[0] if exc.args else exc}") from None


def load_whisper_encoder(model_id: str, cache_dir: Path) -> Any:
    """The encoder module for a model id (see the module docstring)."""
    if model_id.startswith(PACK_PREFIX):
        return load_encoder(_pack_dir(model_id, cache_dir))
    path = Path(model_id).expanduser()
    if (path / "ser_conversion.json").is_file():
        return load_encoder(path)
    from transformers import AutoModel

    (model,) = load_pretrained((AutoModel,), model_id, "accurate model", "SER_ACCURATE_MODEL_ID")
    if getattr(model.config, "model_type", None) != "whisper" or not hasattr(model, "get_encoder"):
        raise ArtifactError(f"accurate model {model_id!r} is not a Whisper model ({type(model).__name__})")
    return model.get_encoder()


class WhisperEncoderBackend(HiddenStateBackend):
    backend_id = "hf_whisper"
    max_chunk_seconds = MAX_SECONDS

    def __init__(self, settings: Any = None, hf: HFSettings | None = None) -> None:
        from ser_core.settings import get_settings

        hf = hf or get_hf_settings()
        self.hf = hf
        self.model_id = hf.accurate_model_id
        self.runtime = pick_runtime(hf)
        cache_dir = (settings or get_settings()).cache_dir
        self.onnx: OnnxEncoder | None = None
        if self.runtime.startswith("onnx"):
            if not self.model_id.startswith(PACK_PREFIX):
                raise ArtifactError(
                    f"SER_ACCURATE_RUNTIME={self.runtime}: only for the model packs (pack:base, "
                    f"pack:tiny.en), not {self.model_id!r}; use torch"
                )
            directory = _pack_dir(self.model_id, cache_dir)
            self.device = "cpu"
            files = onnx_files(directory)
            int8 = self.runtime == "onnx-int8"
            self.onnx = OnnxEncoder(files["int8" if int8 else "fp32"], hf.hf_threads, one_at_a_time=int8)
            config = json.loads((directory / "config.json").read_text())
            layers, width, self.n_mels = config["encoder_layers"], config["d_model"], config["num_mel_bins"]
        else:
            quiet_transformers()
            self.device = pick_device(hf.hf_device)
            set_threads(hf.hf_threads)
            self.encoder = load_whisper_encoder(self.model_id, cache_dir).to(self.device).eval()
            config = self.encoder.config
            layers, width, self.n_mels = config.encoder_layers, config.d_model, config.num_mel_bins
        self.choose_layers(
            hf.accurate_layers, hf.accurate_layer_weights, layers, width, "SER_ACCURATE_LAYERS"
        )

    def config(self) -> dict[str, Any]:
        return {**super().config(), "input": "unpadded"}

    def encode_batch(self, signals: np.ndarray) -> list[np.ndarray]:
        mel = np.stack([log_mel(signal, self.n_mels) for signal in signals])
        if self.onnx is not None:
            states: Any = self.onnx.hidden_states(mel, self.layers)
        else:
            import torch

            states = hidden_states(self.encoder, torch.from_numpy(mel).to(self.device))
        return [self.combine(states, item) for item in range(len(signals))]
