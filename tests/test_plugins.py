"""Plugin loading: entry points, the SER_PLUGINS restriction, broken plugins skipped."""

from __future__ import annotations

import logging

import pytest

from ser_core import plugins
from ser_core.backend import get_backend
from ser_core.errors import ProfileError


def _fake_distribution(root, name, module, body):
    """An installed distribution on sys.path with one `ser_core` entry point."""
    dist = root / f"{name}-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text(f"[ser_core]\n{name} = {module}\n")
    (root / f"{module}.py").write_text(body)


GOOD = """
from ser_core.hookspecs import hookimpl
from ser_backend_handcrafted import HandcraftedBackend

class Renamed(HandcraftedBackend):
    backend_id = "renamed"

@hookimpl
def ser_register_backends(register):
    register("renamed", Renamed)
"""


def test_entry_point_plugin_is_loaded(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "ser-extra", "ser_extra_mod", GOOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.reset()
    infos = {info["name"]: info for info in plugins.plugin_infos()}
    assert infos["ser-extra"]["version"] == "1.2.3"
    assert infos["ser-extra"]["hooks"] == ["ser_register_backends"]
    assert plugins.registry("ser_register_backends")["renamed"].plugin == "ser-extra"
    assert infos["handcrafted"]["profiles"] == ["fast"]


def test_broken_plugin_is_skipped_with_warning(tmp_path, monkeypatch, caplog):
    _fake_distribution(tmp_path, "ser-broken", "ser_broken_mod", "import does_not_exist_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.reset()
    with caplog.at_level(logging.WARNING):
        pm = plugins.get_plugin_manager()
    assert not pm.has_plugin("ser-broken")
    assert [s.name for s in plugins.skipped_plugins()] == ["ser-broken"]
    assert "does_not_exist_anywhere" in caplog.text
    assert get_backend("fast").backend_id == "handcrafted"  # the rest still works


def test_env_restricts_entry_point_plugins(monkeypatch):
    monkeypatch.setenv("SER_PLUGINS", "")
    plugins.reset()
    assert not plugins.get_plugin_manager().has_plugin("handcrafted")
    assert plugins.get_plugin_manager().has_plugin("ser_core.default_plugins.timeline")  # built-ins stay
    with pytest.raises(ProfileError, match="pip install ser-backend-handcrafted"):
        get_backend("fast")
    monkeypatch.setenv("SER_PLUGINS", "handcrafted, other")
    plugins.reset()
    assert get_backend("fast").backend_id == "handcrafted"
