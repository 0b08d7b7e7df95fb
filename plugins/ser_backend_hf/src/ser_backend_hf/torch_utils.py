"""Device and thread choice, and the one-line error for weights that cannot be had offline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ser_core.errors import ArtifactError


def quiet_transformers() -> None:
    """No progress bars from transformers' loading and saving (they would mix with ours)."""
    from transformers.utils import logging

    logging.disable_progress_bar()


def pick_device(name: str) -> str:
    import torch

    if name != "auto":
        return name
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads or os.cpu_count() or 1)


def load_pretrained(classes: tuple[Any, ...], model_id: str, what: str, variable: str) -> list[Any]:
    """`cls.from_pretrained(model_id)` for each class: from the local cache first, then (unless
    `HF_HUB_OFFLINE` is set) from the hub; a one-line `ArtifactError` when neither works."""
    try:
        return [cls.from_pretrained(model_id, local_files_only=True) for cls in classes]
    except (OSError, ValueError) as exc:
        first = exc
    if Path(model_id).expanduser().exists() or os.environ.get("HF_HUB_OFFLINE", "").lower() in {
        "1",
        "true",
        "yes",
    }:
        raise load_error(what, model_id, variable, first)
    try:
        return [cls.from_pretrained(model_id) for cls in classes]
    except (OSError, ValueError) as exc:
        raise load_error(what, model_id, variable, exc) from None


def load_error(what: str, model_id: str, variable: str, exc: Exception) -> ArtifactError:
    """A local path that does not load, or a hub id that is not cached and cannot be downloaded."""
    if Path(model_id).expanduser().exists():
        return ArtifactError(
            f"{what} {model_id}: cannot be loaded ({type(exc).__name__}: {str(exc).splitlines()[0]})"
        )
    return ArtifactError(
        f"{what} {model_id!r} is not available locally and could not be downloaded from the Hugging Face "
        f"hub (https://huggingface.co/{model_id}); set {variable} to a local model directory"
    )
