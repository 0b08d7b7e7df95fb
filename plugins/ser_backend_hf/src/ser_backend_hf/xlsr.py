"""`hf_xlsr` (medium profile): hidden states of a wav2vec2-family encoder (wav2vec2, XLS-R, HuBERT,
WavLM, data2vec-audio) loaded with transformers' AutoFeatureExtractor + AutoModel."""

from __future__ import annotations

from typing import Any

import numpy as np

from ser_backend_hf.settings import HFSettings, get_hf_settings, parse_layers
from ser_backend_hf.stitch import chunked
from ser_backend_hf.torch_utils import load_pretrained, pick_device, set_threads
from ser_core.backend import EmbeddingBackend

MIN_SAMPLES = 400  # the convolutional front end's receptive field (25 ms)


def mean_std(frames: np.ndarray, dim: int) -> np.ndarray:
    if len(frames) == 0:
        return np.zeros(dim, np.float32)
    return np.concatenate([frames.mean(axis=0), frames.std(axis=0)]).astype(np.float32)


class HFAudioBackend(EmbeddingBackend):
    """Frames: the chosen hidden layers concatenated at 50 Hz; pooled as mean and std."""

    backend_id = "hf_xlsr"
    frame_rate = 50.0

    def __init__(self, settings: Any = None, hf: HFSettings | None = None) -> None:
        import torch
        from transformers import AutoFeatureExtractor, AutoModel

        hf = hf or get_hf_settings()
        self.hf = hf
        self.model_id = hf.medium_model_id
        self.layers = parse_layers(hf.medium_layers)
        self.device = pick_device(hf.hf_device)
        set_threads(hf.hf_threads)
        self.extractor, model = load_pretrained(
            (AutoFeatureExtractor, AutoModel), self.model_id, "medium model", "SER_MEDIUM_MODEL_ID"
        )
        self.model = model.to(self.device).eval()
        n_layers = self.model.config.num_hidden_layers
        if max(self.layers) > n_layers:
            raise ValueError(f"SER_MEDIUM_LAYERS={hf.medium_layers}: {self.model_id} has layers 0-{n_layers}")
        self.width = self.model.config.hidden_size
        self.dim = 2 * self.width * len(self.layers)
        self._torch = torch

    def config(self) -> dict[str, Any]:
        return {"layers": list(self.layers), "pooling": "mean+std", "chunk_seconds": self.hf.hf_chunk_seconds}

    def frames(self, signal: np.ndarray) -> np.ndarray:
        return chunked(
            signal, self._encode, self.frame_rate, self.hf.hf_chunk_seconds, self.hf.hf_chunk_overlap
        )

    def _encode(self, signal: np.ndarray) -> np.ndarray:
        if len(signal) < MIN_SAMPLES:
            signal = np.pad(signal, (0, MIN_SAMPLES - len(signal)))
        inputs = self.extractor(signal, sampling_rate=16000, return_tensors="pt")
        with self._torch.inference_mode():
            out = self.model(**{k: v.to(self.device) for k, v in inputs.items()}, output_hidden_states=True)
        states = [out.hidden_states[i][0] for i in self.layers]
        return self._torch.cat(states, dim=1).float().cpu().numpy()

    def pool(self, frames: np.ndarray) -> np.ndarray:
        return mean_std(frames, self.dim)
