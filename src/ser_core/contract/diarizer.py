"""The diarizer interface: who speaks when.

A recording is analysed in pieces (memory stays flat on long files), yet speaker ids must mean
the same voice across the whole file. So diarizing has two steps: `embed` describes the speech of
one piece by short spans and a vector each (small: a few kB per minute), and `assign` clusters
every vector of the file at once. The core turns the clusters into speaker turns
(`ser_core.pipeline.speakers`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Diarizer(ABC):
    """Speaker vectors for spans of speech, and speakers for a whole recording's vectors.
    Implementations load their model in `__init__` (once per process)."""

    name: str
    model_id: str

    @abstractmethod
    def embed(self, signal: np.ndarray, speech: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(spans, vectors) for 16 kHz mono `signal` whose speech regions are `speech` ((n, 2)
        seconds): spans (m, 2) in seconds inside the speech, vectors (m, d), one per span."""

    @abstractmethod
    def assign(self, vectors: np.ndarray, speakers: int | None) -> np.ndarray:
        """A speaker number per vector ((m,) ints, any numbering) for all the vectors of one
        recording; `speakers`: how many there are, None to estimate it."""
