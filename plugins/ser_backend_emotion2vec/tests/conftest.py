"""Run with the core's tests; without the plugin, torch or FunASR the whole folder is skipped
with the reason (shown in the summary, not silently left out)."""

from __future__ import annotations

import importlib.util

import pytest

_missing = [
    name
    for name in ("ser_backend_emotion2vec", "torch", "funasr", "omegaconf", "kaldiio", "librosa")
    if importlib.util.find_spec(name) is None
]
if _missing:

    class _Skipped(pytest.File):
        def collect(self):
            pytest.skip(f"ser-backend-emotion2vec tests need {', '.join(_missing)}")

    def pytest_pycollect_makemodule(module_path, parent):
        """Each test module is reported as skipped, with the reason, instead of being imported."""
        return _Skipped.from_parent(parent, path=module_path)
