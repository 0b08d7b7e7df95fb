"""Consent for restricted backends: their weights carry their own licence, so nothing runs one
without the user's explicit yes.

A restricted backend runs only if one of these holds, checked in this order:
1. `SER_ENABLE_RESTRICTED_BACKENDS=true` (every restricted backend, this run);
2. `SER_ALLOWED_RESTRICTED_BACKENDS=a,b` names it (this run);
3. the consent store (JSON under the data dir, `SER_RESTRICTED_BACKENDS_CONSENT_FILE` to move it)
   has a record for it (`--accept-restricted-backends` writes one);
4. stdin is a terminal and the user answers yes to a prompt showing the licence summary (the
   answer is then stored).
Otherwise a one-line `ConsentError` names the three ways to consent. A store that cannot be read or
parsed counts as no consent, is reported, and is never overwritten.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ser_core.atomic_files import atomic_write_text
from ser_core.errors import ConsentError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Licence:
    """What a restricted backend's weights are licensed under; plugins register it."""

    licence_id: str
    summary: str


class ConsentStore:
    """`{"consents": {backend_id: {"licence_id", "granted_at", "ser_core_version"}}}` in one file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problem: str | None = None

    def read(self) -> dict[str, dict[str, Any]]:
        """The records; {} with `problem` set when the file is unreadable or malformed."""
        self.problem = None
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            self.problem = f"{self.path}: cannot read consent file ({exc.strerror or exc})"
            return {}
        try:
            data = json.loads(text)
            consents = data["consents"]
            if not isinstance(consents, dict) or not all(isinstance(v, dict) for v in consents.values()):
                raise ValueError("consents must map backend ids to records")
        except (ValueError, KeyError, TypeError) as exc:
            self.problem = f"{self.path}: malformed consent file ({type(exc).__name__}: {exc})"
            return {}
        return consents

    def _usable(self) -> dict[str, dict[str, Any]]:
        consents = self.read()
        if self.problem is not None:
            raise ConsentError(f"{self.problem}; not overwriting it: fix or delete it first")
        return consents

    def _write(self, consents: dict[str, dict[str, Any]]) -> None:
        atomic_write_text(self.path, json.dumps({"consents": consents}, indent=2, sort_keys=True) + "\n")

    def grant(self, backend_id: str, licence: Licence) -> None:
        from ser_core import __version__

        consents = self._usable()
        consents[backend_id] = {
            "licence_id": licence.licence_id,
            "granted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "ser_core_version": __version__,
        }
        self._write(consents)

    def revoke(self, backend_id: str | None = None) -> list[str]:
        """Remove one backend's consent (or all); returns the ids removed."""
        consents = self._usable()
        removed = [key for key in consents if backend_id is None or key == backend_id]
        if removed:
            self._write({key: value for key, value in consents.items() if key not in removed})
        return removed


def store(settings: Any) -> ConsentStore:
    return ConsentStore(settings.restricted_backends_consent_file)


def _names(value: str) -> set[str]:
    return {name.strip() for name in value.split(",") if name.strip()}


def how(settings: Any, backend_id: str) -> str | None:
    """Which consent lets `backend_id` run now without asking (None: none does)."""
    if settings.enable_restricted_backends:
        return "SER_ENABLE_RESTRICTED_BACKENDS"
    if backend_id in _names(settings.allowed_restricted_backends):
        return "SER_ALLOWED_RESTRICTED_BACKENDS"
    consents = store(settings)
    records = consents.read()
    if consents.problem is not None:
        log.warning("%s; treated as no consent", consents.problem)
    if backend_id in records:
        return f"consent file {consents.path}"
    return None


def grant_for(settings: Any, profile: str | None) -> list[str]:
    """Store consent to the restricted backend of `profile` (None: of every restricted profile)
    where it is installed; returns the backend ids consented to."""
    from ser_core.plugins import registries
    from ser_core.plugins.lookup import get_profile, licence_of

    profiles = [p for p in registries.profiles().values() if p.restricted] if profile is None else [get_profile(profile)]
    backends = registries.backends()
    granted = []
    for each in profiles:
        if each.restricted and each.backend_id in backends:
            store(settings).grant(each.backend_id, licence_of(backends[each.backend_id].info))
            granted.append(each.backend_id)
    return granted


def require(settings: Any, profile: str, backend_id: str, licence: Licence) -> None:
    """Return if the user consented to `backend_id` (see the module docstring), else raise."""
    if how(settings, backend_id) is not None:
        return
    if sys.stdin is not None and sys.stdin.isatty():
        sys.stderr.write(
            f"Profile {profile!r} runs the restricted backend {backend_id!r}.\n"
            f"Licence {licence.licence_id}: {licence.summary}\n"
            f"Do you accept it (stored in {settings.restricted_backends_consent_file})? [y/N] "
        )
        sys.stderr.flush()
        if sys.stdin.readline().strip().lower() in {"y", "yes"}:
            store(settings).grant(backend_id, licence)
            return
    raise ConsentError(
        f"profile {profile!r} uses the restricted backend {backend_id!r} (licence {licence.licence_id}), "
        f"which needs your consent: pass --accept-restricted-backends (stored), or set "
        f"SER_ALLOWED_RESTRICTED_BACKENDS={backend_id} or SER_ENABLE_RESTRICTED_BACKENDS=true (this run)"
    )
