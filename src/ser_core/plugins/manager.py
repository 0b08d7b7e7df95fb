"""One plugin manager: the built-in plugins plus every entry point in the `ser_core` group.

- `SER_PLUGINS=a,b` loads only those entry-point plugins (empty: none); built-ins always load.
- A plugin whose import fails (say, an optional dependency is missing) is skipped with a warning.
- `SER_TRACE_HOOKS=1` prints every hook call and its result to stderr.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import logging
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pluggy

from ser_core.contract import hookspecs

ENTRY_POINT_GROUP = "ser_core"
DEFAULT_PLUGINS = (
    "ser_core.builtin_plugins.catalogue",
    "ser_core.builtin_plugins.classifiers",
    "ser_core.builtin_plugins.exporters",
    "ser_core.builtin_plugins.layouts",
    "ser_core.builtin_plugins.speakers",
    "ser_core.builtin_plugins.timeline",
    "ser_core.builtin_plugins.whisper",
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkippedPlugin:
    name: str
    reason: str


def _wanted() -> set[str] | None:
    value = os.environ.get("SER_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


@dataclass
class _State:
    pm: pluggy.PluginManager
    skipped: list[SkippedPlugin]
    distributions: dict[str, tuple[str, str]]  # plugin name -> (distribution, version)


def _make_manager() -> _State:
    pm = pluggy.PluginManager("ser_core")
    pm.add_hookspecs(hookspecs)
    skipped: list[SkippedPlugin] = []
    distributions: dict[str, tuple[str, str]] = {}
    for module_name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    wanted = _wanted()
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if wanted is not None and entry_point.name not in wanted:
            continue
        if pm.has_plugin(entry_point.name):
            continue
        try:
            plugin = entry_point.load()
        except Exception as exc:  # a broken plugin must not take the core down
            reason = f"{type(exc).__name__}: {exc}"
            dist = entry_point.dist.name if entry_point.dist else entry_point.value
            log.warning("skipping plugin %r (%s): %s", entry_point.name, dist, reason)
            skipped.append(SkippedPlugin(entry_point.name, reason))
            continue
        pm.register(plugin, name=entry_point.name)
        if entry_point.dist is not None:
            distributions[entry_point.name] = (entry_point.dist.name, entry_point.dist.version)
    if os.environ.get("SER_TRACE_HOOKS", "").lower() in {"1", "true", "yes"}:
        pm.trace.root.setwriter(lambda message: sys.stderr.write(message))
        pm.enable_tracing()
    return _State(pm, skipped, distributions)


@lru_cache(maxsize=1)
def _state() -> _State:
    return _make_manager()


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager (`reset()` rebuilds it, e.g. after changing `SER_PLUGINS`)."""
    return _state().pm


def skipped_plugins() -> list[SkippedPlugin]:
    return list(_state().skipped)


def rebuild() -> None:
    """Forget the plugin manager; the next use builds it again (reads `SER_PLUGINS` anew)."""
    _state.cache_clear()


def reset() -> None:
    """Rebuild the plugin manager and clear every process-wide cache (`ser_core.plugins.registries.reset`)."""
    from ser_core.plugins.registries import reset as reset_all

    reset_all()


def plugin_infos() -> list[dict[str, Any]]:
    """Name, version, hooks and profiles of every loaded plugin, for `ser plugins`."""
    from ser_core.plugins import registries

    state = _state()
    pm = state.pm
    backends = registries.backends()
    profiles = registries.profiles()
    rows = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:
            continue
        dist, version = state.distributions.get(name, ("ser-core (built-in)", _core_version()))
        own_backends = {key for key, reg in backends.items() if reg.plugin == name}
        rows.append(
            {
                "name": name,
                "distribution": dist,
                "version": version,
                "hooks": sorted(hook.name for hook in pm.get_hookcallers(plugin) or []),
                "backends": sorted(own_backends),
                "profiles": [p.name for p in profiles.values() if p.backend_id in own_backends],
            }
        )
    return rows


def _core_version() -> str:
    from ser_core import __version__

    return __version__
