"""`ser doctor`: can the default `ser analyze` run here, and what would fix it if not.

Each check reports `ok`, `warn` (something optional is missing) or `fail` (the default analysis
cannot run), with a detail and, for problems, the one command that fixes it. Checks have no side
effects: a split model pack is reported as "joined on first use", not joined.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from ser_core.errors import SerError
from ser_core.pipeline.model_packs import PACKS, is_model_dir
from ser_core.settings import Settings


@dataclass
class Check:
    name: str
    status: str  # "ok", "warn" or "fail"
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def run_checks(settings: Settings) -> list[Check]:
    return [
        _ffmpeg(),
        *_profiles(settings),
        *_consents(settings),
        *_transcriber(settings),
        _diarizer(settings),
        *_plugins(),
        _budgets(settings),
        _ray(),
        *_dirs(settings),
    ]


def healthy(checks: list[Check]) -> bool:
    return not any(check.status == "fail" for check in checks)


def _ffmpeg() -> Check:
    found = shutil.which("ffmpeg")
    if found:
        return Check("ffmpeg", "ok", found)
    return Check(
        "ffmpeg", "warn", "not on PATH: wav/flac/ogg work, mp3/m4a/video do not", "apt-get install ffmpeg"
    )


def _profiles(settings: Settings) -> list[Check]:
    """Per profile: is its backend installed, and is there a model made for that backend? Backends
    are not built (that can mean loading or downloading weights); the model's metadata is checked
    against what the backend registered."""
    from ser_core.pipeline.analysis import get_model
    from ser_core.plugins import registries

    backends = registries.backends()
    checks = []
    for profile in registries.profiles().values():
        default = profile.name == settings.default_profile
        name = f"profile {profile.name}" + (" (default)" if default else "")
        severity = "fail" if default else "warn"
        registered = backends.get(profile.backend_id)
        if registered is None:
            detail = f"backend {profile.backend_id} not installed"
            checks.append(Check(name, severity, detail, profile.install))
            continue
        model_id = registered.info.get("model_id", "?")
        try:
            model = get_model(profile.name)
        except SerError as exc:
            checks.append(Check(name, severity, str(exc), f"ser train --profile {profile.name} -d DATASET"))
            continue
        meta = model.meta
        if (meta.backend_id, meta.backend_model_id) != (profile.backend_id, model_id):
            detail = (
                f"model {model.path} was trained on {meta.backend_id} {meta.backend_model_id}, not {model_id}"
            )
            checks.append(Check(name, severity, detail, f"ser train --profile {profile.name} -d DATASET"))
            continue
        detail = f"backend {profile.backend_id} ({model_id}), model {model.path}"
        checks.append(Check(name, "ok", detail))
    return checks


def _consents(settings: Settings) -> list[Check]:
    """Restricted backends: consented or not, and whether the consent store is usable."""
    from ser_core.plugins import consent, registries

    backends = registries.backends()
    checks = []
    store = consent.store(settings)
    store.read()
    if store.problem is not None:
        checks.append(
            Check("consent file", "warn", f"{store.problem}; treated as no consent", f"rm {store.path}")
        )
    for profile in registries.profiles().values():
        if not profile.restricted or profile.backend_id not in backends:
            continue
        name = f"consent {profile.backend_id}"
        granted = consent.how(settings, profile.backend_id)
        if granted is None:
            fix = f"ser analyze FILE --profile {profile.name} --accept-restricted-backends"
            checks.append(Check(name, "warn", "restricted backend, no consent yet", fix))
        else:
            checks.append(Check(name, "ok", f"consented ({granted})"))
    return checks


def _diarizer(settings: Settings) -> Check:
    """The diarizer loads (its model is there and intact); a failure only matters with speakers on."""
    from ser_core.errors import SerError
    from ser_core.plugins.lookup import get_diarizer

    when = f"speakers {settings.speakers}" + (" (--speakers auto turns them on)" if settings.speakers == "off" else "")
    try:
        found = get_diarizer(settings)
    except SerError as exc:
        return Check("diarizer", "warn" if settings.speakers == "off" else "fail", str(exc), "pip install --force-reinstall ser-core")
    return Check("diarizer", "ok", f"{found.name} {found.model_id}; {when}")


def _transcriber(settings: Settings) -> list[Check]:
    severity = "fail" if settings.transcript else "warn"
    if importlib.util.find_spec("faster_whisper") is None:
        return [
            Check(
                "transcriber",
                severity,
                "faster-whisper is not installed",
                "pip install 'ser-core[transcribe]'",
            )
        ]
    checks = [Check("transcriber", "ok", f"faster-whisper; default model {settings.whisper_model!r}")]
    for pack in PACKS.values():
        dirs = pack.part_dirs()
        wanted = pack.name == settings.whisper_model
        name = f"model pack {pack.name}" + (" (default)" if wanted else "")
        if dirs is None:
            checks.append(Check(name, severity if wanted else "warn", "not installed", pack.pip))
        elif len(dirs) == 1:
            checks.append(Check(name, "ok", str(dirs[0])))
        else:
            joined = settings.cache_dir / "whisper" / pack.name
            state = str(joined) if is_model_dir(joined) else f"installed; joined into {joined} on first use"
            checks.append(Check(name, "ok", state))
    if settings.whisper_model not in PACKS and not is_model_dir(Path(settings.whisper_model).expanduser()):
        checks.append(
            Check(
                "whisper model",
                "warn",
                f"{settings.whisper_model!r} is not a pack or a local directory: faster-whisper downloads it "
                "(needs a network the first time)",
                "SER_WHISPER_MODEL=base",
            )
        )
    return checks


def _plugins() -> list[Check]:
    from ser_core.plugins.manager import plugin_infos, skipped_plugins

    names = ", ".join(f"{info['name']} {info['version']}" for info in plugin_infos())
    checks = [Check("plugins", "ok", names)]
    for skipped in skipped_plugins():
        checks.append(Check(f"plugin {skipped.name}", "warn", f"skipped: {skipped.reason}", "ser plugins"))
    return checks


def _budgets(settings: Settings) -> Check:
    """Each profile's time budget per input (`SER_<PROFILE>_TIMEOUT_SECONDS`, ...)."""
    from ser_core.plugins.lookup import all_profiles
    from ser_core.runs.budget import budget_for

    if settings.disable_timeouts:
        return Check("time budgets", "ok", "off (SER_DISABLE_TIMEOUTS)")
    parts = []
    for name in all_profiles():
        budget = budget_for(name, settings)
        limit = "no limit" if budget.timeout_seconds is None else f"{budget.timeout_seconds:g} s"
        parts.append(f"{name} {limit}" + (", isolated" if budget.isolate else ""))
    return Check("time budgets", "ok", "; ".join(parts) + " per attempt")


def _ray() -> Check:
    """The optional Ray engine for batches (`--engine ray`)."""
    from importlib import metadata

    try:
        version = metadata.version("ray")
    except metadata.PackageNotFoundError:
        return Check("engine ray", "warn", "not installed: batches run on the local engine", "pip install 'ser-core[ray]'")
    return Check("engine ray", "ok", f"ray {version} (ser analyze DIR --output-dir OUT --engine ray)")


def _dirs(settings: Settings) -> list[Check]:
    checks = []
    for label, path in (
        ("models dir", settings.models_dir),
        ("cache dir", settings.cache_dir),
        ("data dir", settings.data_dir),
    ):
        existing = next((p for p in (path, *path.parents) if p.exists()), None)
        if existing is None or not existing.is_dir():
            checks.append(Check(label, "fail", f"{path}: no existing parent folder", f"mkdir -p {path}"))
            continue
        free = shutil.disk_usage(existing).free / 2**30
        writable = _writable(existing)
        status = "ok" if writable and free >= 1 else ("fail" if not writable else "warn")
        detail = f"{path} ({'exists' if path.exists() else 'created on first use'}, {free:.1f} GiB free)"
        fix = "" if status == "ok" else (f"chmod u+w {existing}" if not writable else "free some disk space")
        checks.append(Check(label, status, detail, fix))
    return checks


def _writable(folder: Path) -> bool:
    import os

    return os.access(folder, os.W_OK | os.X_OK)
