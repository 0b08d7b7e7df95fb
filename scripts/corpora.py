"""Where the benchmark corpora are: `SER_CORPORA`, else `../shared/corpora` beside the checkout."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def corpora_dir() -> Path:
    path = Path(os.environ.get("SER_CORPORA", ROOT.parent / "shared" / "corpora"))
    if not (path / "emodb").is_dir():
        sys.exit(f"corpora not found at {path} (set SER_CORPORA)")
    return path
