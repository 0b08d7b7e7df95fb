"""ser_core backends on Hugging Face transformers: `hf_xlsr` (medium profile, wav2vec2 family) and
`hf_whisper` (accurate profile, Whisper encoders, including those converted from the CTranslate2
model packs, see `ser_backend_hf.convert`).

torch and transformers are imported when a backend is first built, so loading the plugin (which
every `ser` command does) stays cheap; if they are not installed at all, the import fails here
and ser_core skips the plugin with a message naming them.
"""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path

from ser_core.contract.hookspecs import hookimpl

__version__ = "0.1.0"

_missing = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]
if _missing:
    raise ImportError(f"ser-backend-hf needs {' and '.join(_missing)}: pip install {' '.join(_missing)}")


def _xlsr(settings):
    from ser_backend_hf.torch_utils import quiet_transformers
    from ser_backend_hf.xlsr import HFAudioBackend

    quiet_transformers()
    return HFAudioBackend(settings)


def _whisper(settings):
    from ser_backend_hf.whisper_encoder import WhisperEncoderBackend

    return WhisperEncoderBackend(settings)


@hookimpl
def ser_register_profiles(register):
    common = {"distribution": "ser-backend-hf", "needs": "torch", "timeout_seconds": 3600.0}
    register("medium", "hf_xlsr", description="wav2vec2-family embeddings (XLS-R, HuBERT, WavLM)", **common)
    register("accurate", "hf_whisper", description="Whisper encoder embeddings", **common)


@hookimpl
def ser_register_backends(register):
    from ser_backend_hf.settings import get_hf_settings

    hf = get_hf_settings()
    register("hf_xlsr", _xlsr, model_id=hf.medium_model_id)
    register("hf_whisper", _whisper, model_id=hf.accurate_model_id)


@hookimpl
def ser_default_models(register):
    """The shipped accurate model: a classifier over `pack:base` layers 2-6 (docs/model-card-accurate.md)."""
    path = Path(str(resources.files(__name__).joinpath("models", "accurate-default.npz")))
    if path.is_file():
        register("accurate", path)
