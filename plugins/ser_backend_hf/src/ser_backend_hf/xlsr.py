"""`hf_xlsr` (medium profile): hidden states of a wav2vec2-family encoder (wav2vec2, XLS-R, HuBERT,
WavLM, data2vec-audio) loaded with transformers' AutoFeatureExtractor + AutoModel."""

from __future__ import annotations

from typing import Any

import numpy as np

from ser_backend_hf.hidden_states import HiddenStateBackend
from ser_backend_hf.settings import HFSettings, get_hf_settings
from ser_backend_hf.torch_utils import load_pretrained, pick_device, set_threads

MIN_SAMPLES = 400  # the convolutional front end's receptive field (25 ms)


class HFAudioBackend(HiddenStateBackend):
    backend_id = "hf_xlsr"

    def __init__(self, settings: Any = None, hf: HFSettings | None = None) -> None:
        import torch
        from transformers import AutoFeatureExtractor, AutoModel

        hf = hf or get_hf_settings()
        self.hf = hf
        self.model_id = hf.medium_model_id
        self.device = pick_device(hf.hf_device)
        set_threads(hf.hf_threads)
        self.extractor, model = load_pretrained(
            (AutoFeatureExtractor, AutoModel), self.model_id, "medium model", "SER_MEDIUM_MODEL_ID"
        )
        self.model = model.to(self.device).eval()
        config = self.model.config
        self.choose_layers(
            hf.medium_layers,
            hf.medium_layer_weights,
            config.num_hidden_layers,
            config.hidden_size,
            "SER_MEDIUM_LAYERS",
        )
        self._torch = torch

    def config(self) -> dict[str, Any]:
        return {**super().config(), "chunk_seconds": self.hf.hf_chunk_seconds}

    def encode_batch(self, signals: np.ndarray) -> list[np.ndarray]:
        if signals.shape[1] < MIN_SAMPLES:
            signals = np.pad(signals, ((0, 0), (0, MIN_SAMPLES - signals.shape[1])))
        inputs = self.extractor(list(signals), sampling_rate=16000, return_tensors="pt")
        with self._torch.inference_mode():
            out = self.model(**{k: v.to(self.device) for k, v in inputs.items()}, output_hidden_states=True)
        return [self.combine(out.hidden_states, item) for item in range(len(signals))]
