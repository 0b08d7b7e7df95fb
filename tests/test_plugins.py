"""Plugin loading: entry points, the SER_PLUGINS restriction, broken plugins skipped."""

from __future__ import annotations

import logging

import pytest

from ser_core.errors import ProfileError
from ser_core.plugins import manager as plugins
from ser_core.plugins import registries
from ser_core.plugins.lookup import get_backend


def _fake_distribution(root, name, module, body):
    """An installed distribution on sys.path with one `ser_core` entry point."""
    dist = root / f"{name}-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text(f"[ser_core]\n{name} = {module}\n")
    (root / f"{module}.py").write_text(body)


GOOD = """
from ser_core.contract.hookspecs import hookimpl
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
    assert registries.registered("ser_register_backends")["renamed"].plugin == "ser-extra"
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
    assert plugins.get_plugin_manager().has_plugin("ser_core.builtin_plugins.timeline")  # built-ins stay
    with pytest.raises(ProfileError, match="pip install ser-backend-handcrafted"):
        get_backend("fast")
    monkeypatch.setenv("SER_PLUGINS", "handcrafted, other")
    plugins.reset()
    assert get_backend("fast").backend_id == "handcrafted"


OVERRIDE = """
from ser_core.contract.hookspecs import hookimpl
from ser_core.models.classifiers import LogisticClassifier

class Mine(LogisticClassifier):
    pass

@hookimpl
def ser_register_classifiers(register):
    register("logistic", Mine)
"""


def test_an_entry_point_overrides_a_built_in_and_says_so(tmp_path, monkeypatch, caplog):
    _fake_distribution(tmp_path, "ser-mine", "ser_mine_mod", OVERRIDE)
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.reset()
    with caplog.at_level(logging.WARNING):
        kinds = registries.classifiers()
    assert kinds["logistic"].__module__ == "ser_mine_mod"  # built-ins register first, plugins win
    assert "'logistic' from plugin 'ser-mine' replaces the one from plugin 'ser_core.builtin_plugins.classifiers'" in caplog.text


def test_a_wrapper_on_a_register_hook_is_refused():
    from ser_core.contract.hookspecs import hookimpl

    class Wrapping:
        @hookimpl(wrapper=True)
        def ser_register_backends(self, register):
            return (yield)

    plugins.get_plugin_manager().register(Wrapping(), name="wrapping")
    registries.refresh()
    with pytest.raises(registries.PluginError, match=r"'wrapping': ser_register_backends .*wrapper"):
        registries.backends()


def test_reset_forgets_every_loaded_thing(trained_model):
    from ser_core.pipeline.analysis import get_model
    from ser_core.plugins.lookup import get_backend_by_id

    backend, model = get_backend_by_id("handcrafted"), get_model("fast", trained_model)
    assert get_backend_by_id("handcrafted") is backend and get_model("fast", trained_model) is model
    plugins.reset()
    assert get_backend_by_id("handcrafted") is not backend and get_model("fast", trained_model) is not model
    again = get_backend_by_id("handcrafted")
    registries.refresh()  # a plugin registered at run time: derived caches go, the manager stays
    assert get_backend_by_id("handcrafted") is not again


def test_first_party_plugins_register_their_profiles_as_the_catalogue_lists_them():
    from ser_core.builtin_plugins.catalogue import PROFILES

    found = registries.registered("ser_register_profiles")
    provided = {name: reg for name, reg in found.items() if not reg.info.get("catalogue")}
    assert "fast" in provided  # the handcrafted plugin is always installed with the tests
    for name, reg in provided.items():
        if name in PROFILES:
            backend_id, fields = PROFILES[name]
            assert (reg.value, reg.info) == (backend_id, fields), name


def test_the_plugin_author_surface_imports_nothing_heavy():
    import subprocess
    import sys

    code = (
        "import sys, ser_core.contract.hookspecs; "
        "print(sorted(m for m in sys.modules if m.startswith('ser_core') or m in ('numpy', 'torch', 'scipy')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['ser_core', 'ser_core._version', 'ser_core.contract', 'ser_core.contract.hookspecs']"
    # the public API still resolves, lazily
    code = "import ser_core; print(ser_core.analyze.__module__, ser_core.__version__ != '')"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == [
        "ser_core.pipeline.analysis",
        "True",
    ]


def test_hook_monitoring_sees_each_plugins_registrations():
    """Register hooks go through pluggy's own caller, so `add_hookcall_monitoring` sees them."""
    seen = []
    pm = plugins.get_plugin_manager()
    undo = pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: seen.append((name, [impl.plugin_name for impl in impls])), lambda *args: None
    )
    try:
        registries.refresh()
        registries.backends()
    finally:
        undo()
    calls = [owners for name, owners in seen if name == "ser_register_backends"]
    assert ["handcrafted"] in calls  # one call per plugin, each naming it
