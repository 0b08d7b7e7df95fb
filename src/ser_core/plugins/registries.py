"""What the plugins registered: one typed accessor per register-style hook, and one `reset()`.

Register hooks are called one plugin at a time, in the order the plugins were registered
(built-ins first, then entry points, then plugins added at run time), each through pluggy's own
hook caller, so `SER_TRACE_HOOKS` and hook monitoring see every call and every registration knows
its plugin. A later registration of an id replaces an earlier one with a warning naming both (a
plugin overrides a built-in knowingly); entries of the built-in catalogue of installable profiles
are replaced silently by the plugin that provides them. Wrapper implementations make no sense on a
register hook and are refused with an error naming the plugin.

Process-wide caches (loaded backends, models, transcribers, these registries) register themselves
with `cached` so that `reset()` clears every one of them at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

from ser_core.errors import SerError

if TYPE_CHECKING:
    from ser_core.contract.profiles import Profile

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
_CLEARS: list[Callable[[], None]] = []


class PluginError(SerError):
    """A plugin implements a hook in a way the core cannot use."""


def cached(maxsize: int | None = 8) -> Callable[[F], F]:
    """`functools.lru_cache` whose cache `reset()` and `refresh()` clear."""

    def decorate(function: F) -> F:
        wrapped = lru_cache(maxsize=maxsize)(function)
        _CLEARS.append(wrapped.cache_clear)
        return wrapped  # type: ignore[return-value]

    return decorate


def on_reset(clear: Callable[[], None]) -> None:
    """Have `reset()` and `refresh()` call `clear` (for caches that are not `cached` functions)."""
    _CLEARS.append(clear)


def refresh() -> None:
    """Forget everything derived from the plugins (registries, loaded backends, models and
    transcribers), keeping the plugin manager: after registering a plugin at run time."""
    for clear in _CLEARS:
        clear()


def reset() -> None:
    """Rebuild the plugin manager (e.g. after changing `SER_PLUGINS`) and clear every cache."""
    from ser_core.plugins import manager as plugins
    from ser_core.settings import get_settings

    plugins.rebuild()
    get_settings.cache_clear()
    refresh()


@dataclass(frozen=True)
class Registered:
    """One thing a plugin registered: its id, the object, the plugin, and extra keyword info."""

    key: str
    value: Any
    plugin: str
    info: dict[str, Any]


@cached(maxsize=16)
def registered(hook_name: str) -> dict[str, Registered]:
    """Everything registered through the register hook `hook_name`, by id (later plugins win)."""
    from ser_core.plugins.manager import get_plugin_manager

    pm = get_plugin_manager()
    caller = getattr(pm.hook, hook_name)
    impls = caller.get_hookimpls()  # registration order: built-ins first
    for impl in impls:
        if impl.hookwrapper or impl.wrapper:
            raise PluginError(
                f"plugin {impl.plugin_name!r}: {hook_name} registers things; a wrapper implementation "
                "of it cannot, drop wrapper=True/hookwrapper=True"
            )
    found: dict[str, Registered] = {}
    owners = [impl.plugin for impl in impls]
    for impl in impls:

        def register(key: str, value: Any, _plugin: str = impl.plugin_name, **info: Any) -> None:
            earlier = found.get(key)
            if earlier is not None and not earlier.info.get("catalogue"):
                log.warning(
                    "%s: %r from plugin %r replaces the one from plugin %r", hook_name, key, _plugin, earlier.plugin
                )
            found[key] = Registered(key, value, _plugin, info)

        pm.trace.root.get("hook")(f"{hook_name} [{impl.plugin_name}]")
        others = [plugin for plugin in owners if plugin is not impl.plugin]
        pm.subset_hook_caller(hook_name, remove_plugins=others)(register=register)
    return found


def backends() -> dict[str, Registered]:
    """Embedding backends by id: `value` is the factory `factory(settings)`."""
    return registered("ser_register_backends")


def classifiers() -> dict[str, type]:
    """Classifier classes by kind."""
    return {key: reg.value for key, reg in registered("ser_register_classifiers").items()}


def transcribers() -> dict[str, Registered]:
    """Transcribers by name: `value` is the factory `factory(settings, model_name)`."""
    return registered("ser_register_transcribers")


def diarizers() -> dict[str, Registered]:
    """Diarizers by name: `value` is the factory `factory(settings)`."""
    return registered("ser_register_diarizers")


def default_models() -> dict[str, Registered]:
    """Model artifacts plugins ship, by profile: `value` is the path."""
    return registered("ser_default_models")


@cached(maxsize=1)
def profiles() -> dict[str, Profile]:
    """Every profile a plugin (or the catalogue of installable ones) registered, by name."""
    from ser_core.contract.profiles import Profile

    def build(name: str, backend_id: str, catalogue: bool = False, **fields: Any) -> Profile:
        return Profile(name, backend_id, **fields)

    return entries("ser_register_profiles", build)


def entries(hook_name: str, build: Callable[..., T]) -> dict[str, T]:
    """Everything registered through `hook_name`, each made into a typed entry by
    `build(id, value, **info)`; a registration `build` does not accept is a `PluginError` naming
    the plugin (not a bare TypeError from deep inside a lookup)."""
    out = {}
    for name, reg in registered(hook_name).items():
        try:
            out[name] = build(name, reg.value, **reg.info)
        except TypeError as exc:
            raise PluginError(f"plugin {reg.plugin!r}: {hook_name} {name!r}: {exc}") from None
    return out
