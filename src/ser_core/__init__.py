"""ser_core: speech emotion recognition, which emotion is expressed when in a recording.

The public API is imported lazily (PEP 562), so a plugin importing `ser_core.hookspecs` loads
neither the pipeline nor numpy-heavy modules."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from ser_core._version import __version__

if TYPE_CHECKING:
    from ser_core.analysis import analyze
    from ser_core.api import evaluate, evaluate_model, train
    from ser_core.batch import analyze_many
    from ser_core.errors import SerError
    from ser_core.results import AnalysisResult

_PUBLIC = {
    "analyze": "ser_core.analysis",
    "analyze_many": "ser_core.batch",
    "evaluate": "ser_core.api",
    "evaluate_model": "ser_core.api",
    "train": "ser_core.api",
    "SerError": "ser_core.errors",
    "AnalysisResult": "ser_core.results",
}

__all__ = ["AnalysisResult", "SerError", "__version__", "analyze", "analyze_many", "evaluate", "evaluate_model", "train"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ser_core' has no attribute {name!r}")
