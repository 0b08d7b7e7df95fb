"""Finding what plugins provide: the backend of a profile (with consent for restricted ones), a
classifier kind, the transcriber, the diarizer, a profile by name. Loaded things are cached per process and
forgotten by `ser_core.plugins.registries.reset()`."""

from __future__ import annotations

from typing import Any

from ser_core.contract.backend import EmbeddingBackend
from ser_core.contract.classifier import Classifier
from ser_core.contract.diarizer import Diarizer
from ser_core.contract.profiles import Profile
from ser_core.contract.transcriber import Transcriber
from ser_core.errors import ArtifactError, DiarizerError, ProfileError, TranscriberError
from ser_core.plugins import registries
from ser_core.settings import Settings, get_settings


def all_profiles() -> dict[str, Profile]:
    """Every registered profile, by name."""
    return registries.profiles()


def get_profile(name: str) -> Profile:
    """The profile called `name`, or a one-line error listing the known ones."""
    known = all_profiles()
    try:
        return known[name]
    except KeyError:
        raise ProfileError(f"unknown profile {name!r}; choose one of: {', '.join(known)}") from None


def backend_ids() -> list[str]:
    """Ids of every installed backend."""
    return sorted(registries.backends())


@registries.cached(maxsize=8)
def get_backend_by_id(backend_id: str) -> EmbeddingBackend:
    """A process-wide instance of an installed backend (loaded once, reused)."""
    found = registries.backends().get(backend_id)
    if found is None:
        raise ProfileError(f"backend {backend_id!r} is not installed")
    return found.value(get_settings())


def get_backend(profile_name: str) -> EmbeddingBackend:
    """The backend serving a profile, or a one-line error naming the distribution to install.
    A restricted profile's backend is built only with the user's consent (`ser_core.plugins.consent`)."""
    from ser_core.plugins import consent

    profile = get_profile(profile_name)
    registered = registries.backends().get(profile.backend_id)
    if registered is None:
        raise ProfileError(
            f"profile {profile.name!r} needs the {profile.backend_id!r} backend, which is not installed: "
            f"{profile.install}"
        )
    if profile.restricted:
        consent.require(get_settings(), profile.name, profile.backend_id, licence_of(registered.info))
    return get_backend_by_id(profile.backend_id)


def licence_of(info: dict[str, Any]) -> Any:
    """The licence a plugin registered with its backend (`licence_id=`, `licence_summary=`)."""
    from ser_core.plugins.consent import Licence

    return Licence(
        str(info.get("licence_id", "unknown")),
        str(info.get("licence_summary", "see the documentation of the plugin that provides it")),
    )


def classifier_kinds() -> dict[str, type[Classifier]]:
    return registries.classifiers()


def make_classifier(kind: str, **params: Any) -> Classifier:
    kinds = classifier_kinds()
    if kind not in kinds:
        raise ArtifactError(f"unknown classifier kind {kind!r}; installed: {', '.join(sorted(kinds))}")
    return kinds[kind](**params)


_loaded: dict[tuple[str, str, str], Transcriber] = {}


def get_transcriber(model: str | None = None, settings: Settings | None = None) -> Transcriber:
    """The `transcriber` setting's transcriber for `model` (default: the `whisper_model` setting),
    loaded once per process and reused for every file analysed with the same settings."""
    settings = settings or get_settings()
    name = settings.transcriber
    model = model or settings.whisper_model
    key = (name, model, settings.model_dump_json())
    if key not in _loaded:
        found = registries.transcribers().get(name)
        if found is None:
            raise TranscriberError(
                f"transcriber {name!r} is not installed: pip install 'ser-core[transcribe]' "
                "(or run with --no-transcript)"
            )
        _loaded[key] = found.value(settings, model)
    return _loaded[key]


@registries.cached(maxsize=4)
def _diarizer(name: str, settings_json: str) -> Diarizer:
    found = registries.diarizers().get(name)
    if found is None:
        known = ", ".join(registries.diarizers()) or "none"
        raise DiarizerError(f"diarizer {name!r} is not installed (installed: {known}); or run with --speakers off")
    return found.value(Settings.model_validate_json(settings_json))


def get_diarizer(settings: Settings | None = None) -> Diarizer:
    """The `diarizer` setting's diarizer, loaded once per process and settings."""
    settings = settings or get_settings()
    return _diarizer(settings.diarizer, settings.model_dump_json())


def clear_cache() -> None:
    _loaded.clear()


registries.on_reset(clear_cache)
