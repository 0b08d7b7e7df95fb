"""The restricted `emotion2vec` backend (accurate-research profile) through FunASR.

FunASR is imported only when the backend is built (it takes seconds and prints to stdout); if
it or torch is not installed at all, the import fails here and ser_core lists the profile as not
installed, with the pip command.
"""

from __future__ import annotations

import importlib.util

from ser_core.contract.hookspecs import hookimpl

__version__ = "0.1.0"

_missing = [
    name
    for name in ("torch", "funasr", "omegaconf", "kaldiio", "librosa")
    if importlib.util.find_spec(name) is None
]
if _missing:
    raise ImportError(f"ser-backend-emotion2vec needs {', '.join(_missing)}: see its README for the install")

LICENCE_ID = "emotion2vec-model-card"
LICENCE_SUMMARY = (
    "the emotion2vec weights are not part of ser_core; their authors distribute them under the licence "
    "on the model card (ModelScope iic/emotion2vec_plus_large, Hugging Face emotion2vec/emotion2vec_plus_large), "
    "which you accept and must follow"
)


def _factory(settings):
    from ser_backend_emotion2vec.backend import Emotion2vecBackend

    return Emotion2vecBackend(settings)


@hookimpl
def ser_register_profiles(register):
    register(
        "accurate-research",
        "emotion2vec",
        distribution="ser-backend-emotion2vec",
        description="emotion2vec embeddings (restricted licence, needs consent)",
        restricted=True,
        needs="torch",
        timeout_seconds=3600.0,
    )


@hookimpl
def ser_register_backends(register):
    from ser_backend_emotion2vec.backend import model_id

    register(
        "emotion2vec", _factory, model_id=model_id(), licence_id=LICENCE_ID, licence_summary=LICENCE_SUMMARY
    )


@hookimpl
def ser_default_models(register):
    """The model's own head, as an artifact written when the backend first loads (so the
    accurate-research profile works without training)."""
    from ser_backend_emotion2vec.backend import head_model_path, model_id
    from ser_core.settings import get_settings

    register("accurate-research", head_model_path(get_settings().cache_dir, model_id()))
