"""The hooks a plugin can implement.

Backends, classifiers and transcribers use *register-style* hooks: every plugin is asked to
register what it provides, so the core can list all of them (`ser plugins`, profile checks)
and pick one by id. The timelines are *firstresult* hooks: exactly one implementation turns
window probabilities into segments, and one merges words and segments into timeline rows; a plugin overrides the built-in one by returning a result
first (`tryfirst=True`), and the built-in one runs last.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("ser_core")
hookimpl = pluggy.HookimplMarker("ser_core")


@hookspec
def ser_register_backends(register: Callable[..., None]) -> None:
    """Register embedding backends: `register(backend_id, factory, model_id=...)`.

    `factory(settings)` returns an object implementing `ser_core.contract.backend.EmbeddingBackend`.
    """


@hookspec
def ser_register_profiles(register: Callable[..., None]) -> None:
    """Register profiles users pick with `--profile`: `register(name, backend_id, description=...,
    distribution=..., needs=..., restricted=False, published=False, timeout_seconds=1800.0)`.

    `distribution` (the PyPI name of the plugin) and `needs` (packages to install first, e.g.
    "torch") make the install hint when the backend is missing; `restricted` asks for the user's
    consent to the backend's licence; `timeout_seconds` is the default time budget per input
    (`SER_<PROFILE>_TIMEOUT_SECONDS` overrides it)."""


@hookspec
def ser_register_classifiers(register: Callable[..., None]) -> None:
    """Register classifier kinds: `register(kind, cls)`, `cls` implementing `ser_core.models.classifiers.Classifier`."""


@hookspec
def ser_register_transcribers(register: Callable[..., None]) -> None:
    """Register transcribers: `register(name, factory)`; `factory(settings, model_name)` returns an
    object implementing `ser_core.contract.transcriber.Transcriber`."""


@hookspec
def ser_register_diarizers(register: Callable[..., None]) -> None:
    """Register diarizers (who speaks when): `register(name, factory, description=...)`;
    `factory(settings)` returns an object implementing `ser_core.contract.diarizer.Diarizer`.
    The `diarizer` setting picks one (default: the built-in "ge2e")."""


@hookspec
def ser_register_exporters(register: Callable[..., None]) -> None:
    """Register output formats (`--format NAME`): `register(name, render, extension=".txt",
    single_file=False, description=...)`. `render(results, failures)` returns the text of one
    output for a list of `ser_core.contract.results.AnalysisResult` (and the inputs that failed, each a
    {"path", "error"} dict); `single_file` formats take exactly one result; batch runs name each
    input's output file with `extension`."""


@hookspec
def ser_register_dataset_layouts(register: Callable[..., None]) -> None:
    """Register corpus folder layouts (`ser train -d PATH` detects them; `NAME:PATH` forces one):
    `register(name, parse, corpus=NAME, aliases=())`. `parse(path, root)` returns a
    `ser_core.training.datasets.Parsed(label, speaker)` for a file that follows the layout (label None:
    it does, but is left out) or None; items get `corpus` (None: the folder's own name). A folder
    is detected as the layout most of its files follow, layouts registered earlier winning ties."""


@hookspec
def ser_default_models(register: Callable[..., None]) -> None:
    """Register model artifacts shipped with a plugin: `register(profile, path)`."""


@hookspec(firstresult=True)
def ser_build_segments(times: Any, probabilities: Any, labels: list[str], settings: Any) -> list[Any] | None:
    """Turn per-window probabilities (`times` (n, 2) start/end seconds, `probabilities` (n, k))
    into a list of `ser_core.contract.results.Segment`, or return None to let another plugin answer."""


@hookspec(firstresult=True)
def ser_build_timeline(words: Any, segments: Any, settings: Any) -> list[Any] | None:
    """Merge the transcript with the emotion segments into `ser_core.contract.results.TimelineRow`s.

    `words` are `ser_core.contract.results.Word`s already labelled with the emotion of their audio (None when
    there is no transcript); `segments` the emotion segments. Return None to let another plugin answer."""
