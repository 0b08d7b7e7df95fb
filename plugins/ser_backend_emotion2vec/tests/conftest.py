"""Run with the core's tests; skipped (not errors) without the plugin, torch or FunASR."""

from __future__ import annotations

import importlib.util

collect_ignore_glob = (
    []
    if all(
        importlib.util.find_spec(name)
        for name in ("ser_backend_emotion2vec", "torch", "funasr", "omegaconf", "kaldiio", "librosa")
    )
    else ["test_*.py"]
)
