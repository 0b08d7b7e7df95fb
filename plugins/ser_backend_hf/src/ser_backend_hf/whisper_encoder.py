"""`hf_whisper` (accurate profile): hidden states of a Whisper encoder, run on the real length of
the audio (no padding to 30 s; longer audio in overlapping 30 s chunks, stitched at 50 Hz).

Model ids: `pack:base` / `pack:tiny.en` (the CTranslate2 model packs, converted once to a
transformers encoder, see `ser_backend_hf.convert`), a transformers Whisper hub id such as
`openai/whisper-large-v3` (users with a network), or a local directory of either kind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ser_backend_hf.convert import hidden_states, load_encoder, log_mel, pack_encoder_dir
from ser_backend_hf.hidden_states import HiddenStateBackend
from ser_backend_hf.settings import HFSettings, get_hf_settings
from ser_backend_hf.torch_utils import load_pretrained, pick_device, set_threads
from ser_core.errors import ArtifactError

PACK_PREFIX = "pack:"
MAX_SECONDS = 30.0


def load_whisper_encoder(model_id: str, cache_dir: Path) -> Any:
    """The encoder module for a model id (see the module docstring)."""
    if model_id.startswith(PACK_PREFIX):
        name = model_id.removeprefix(PACK_PREFIX)
        try:
            return load_encoder(pack_encoder_dir(name, cache_dir))
        except (FileNotFoundError, KeyError) as exc:
            raise ArtifactError(f"accurate model {model_id!r}: {exc.args[0] if exc.args else exc}") from None
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
        self.device = pick_device(hf.hf_device)
        set_threads(hf.hf_threads)
        cache_dir = (settings or get_settings()).cache_dir
        self.encoder = load_whisper_encoder(self.model_id, cache_dir).to(self.device).eval()
        config = self.encoder.config
        self.choose_layers(
            hf.accurate_layers,
            hf.accurate_layer_weights,
            config.encoder_layers,
            config.d_model,
            "SER_ACCURATE_LAYERS",
        )
        self.n_mels = config.num_mel_bins

    def config(self) -> dict[str, Any]:
        return {**super().config(), "input": "unpadded"}

    def encode_batch(self, signals: np.ndarray) -> list[np.ndarray]:
        import torch

        mel = torch.from_numpy(np.stack([log_mel(signal, self.n_mels) for signal in signals])).to(self.device)
        states = hidden_states(self.encoder, mel)
        return [self.combine(states, item) for item in range(len(signals))]
