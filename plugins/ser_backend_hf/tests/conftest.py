"""The plugin's tests run with the core's (`python -m pytest` from the repository root collects
them); without the plugin or torch installed the whole folder is skipped with the reason (shown
in the summary, not silently left out)."""

from __future__ import annotations

import importlib.util

import pytest

_missing = [name for name in ("ser_backend_hf", "torch", "transformers") if importlib.util.find_spec(name) is None]
if _missing:

    class _Skipped(pytest.File):
        def collect(self):
            pytest.skip(f"ser-backend-hf tests need {', '.join(_missing)}")

    def pytest_pycollect_makemodule(module_path, parent):
        """Each test module is reported as skipped, with the reason, instead of being imported."""
        return _Skipped.from_parent(parent, path=module_path)


def reset() -> None:
    """Forget cached settings, backends and plugins (after changing `SER_*` variables)."""
    from ser_backend_hf.settings import get_hf_settings

    from ser_core.plugins import manager as plugins
    from ser_core.plugins.lookup import get_backend_by_id
    from ser_core.settings import get_settings

    get_settings.cache_clear()
    get_hf_settings.cache_clear()
    get_backend_by_id.cache_clear()
    plugins.reset()


@pytest.fixture
def ser_env(monkeypatch, tmp_path):
    """Own models/cache/data folders, energy VAD, no transcript; `ser_env(NAME=value)` sets more
    `SER_NAME` variables. Caches are reset after each change and after the test."""

    def setenv(**values: object) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"SER_{name}", str(value))
        reset()

    setenv(**{f"{d.upper()}_DIR": tmp_path / d for d in ("models", "cache", "data")})
    setenv(VAD="energy", TRANSCRIPT="false")
    yield setenv
    reset()
