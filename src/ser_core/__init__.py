"""ser_core: speech emotion recognition, which emotion is expressed when in a recording.

The public API is imported lazily (PEP 562), so a plugin importing `ser_core.contract.hookspecs` loads
neither the pipeline nor numpy-heavy modules."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ser_core._version import __version__

if TYPE_CHECKING:
    from ser_core.contract.results import AnalysisResult
    from ser_core.errors import SerError
    from ser_core.pipeline.analysis import analyze
    from ser_core.runs.batch import analyze_many
    from ser_core.training.api import evaluate, evaluate_model, train

_PUBLIC = {
    "analyze": "ser_core.pipeline.analysis",
    "analyze_many": "ser_core.runs.batch",
    "evaluate": "ser_core.training.api",
    "evaluate_model": "ser_core.training.api",
    "train": "ser_core.training.api",
    "SerError": "ser_core.errors",
    "AnalysisResult": "ser_core.contract.results",
}

__all__ = ["AnalysisResult", "SerError", "__version__", "analyze", "analyze_many", "evaluate", "evaluate_model", "train"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ser_core' has no attribute {name!r}")
