"""The plugin's tests run with the core's (`python -m pytest` from the repository root collects
them); without the plugin or torch installed they are skipped, not errors."""

from __future__ import annotations

import importlib.util

collect_ignore_glob = (
    []
    if all(importlib.util.find_spec(name) for name in ("ser_backend_hf", "torch", "transformers"))
    else ["test_*.py"]
)
