"""ser_core: speech emotion recognition, which emotion is expressed when in a recording."""

from __future__ import annotations

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("ser-core")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

from ser_core.analysis import analyze
from ser_core.api import evaluate, evaluate_model, train
from ser_core.batch import analyze_many
from ser_core.errors import SerError
from ser_core.results import AnalysisResult

__all__ = [
    "AnalysisResult",
    "SerError",
    "__version__",
    "analyze",
    "analyze_many",
    "evaluate",
    "evaluate_model",
    "train",
]
