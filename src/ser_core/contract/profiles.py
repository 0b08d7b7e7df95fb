"""Profiles: the names users pick (`--profile`), each served by one embedding backend that a plugin
registers (`ser_register_profiles`); this module holds the type and the lookup, no plugin's name."""

from __future__ import annotations

from dataclasses import dataclass

#: Seconds per analysis attempt when a profile does not say (hour-long recordings with a transcript).
DEFAULT_TIMEOUT_SECONDS = 1800.0


@dataclass(frozen=True)
class Profile:
    name: str
    backend_id: str
    distribution: str = ""
    description: str = ""
    restricted: bool = False
    #: Packages to install before the plugin (torch: so users pick their own build, CPU or CUDA).
    needs: str = ""
    #: Whether `distribution` is on PyPI; until then only a checkout's `plugins/` folder has it.
    published: bool = False
    #: Default time budget per input (`ser_core.runs.budget`).
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    #: A profile that holds up better on narrowband and codec audio, named in the result's warning.
    narrowband_alternative: str = ""

    @property
    def install(self) -> str:
        """One line that installs the profile's backend and works today (every install hint
        prints this): from PyPI once published, else from the `plugins/` folder of a checkout."""
        if not self.distribution:
            return f"install the plugin that provides the {self.backend_id!r} backend"
        first = f"pip install {self.needs} && " if self.needs else ""
        if self.published:
            return f"{first}pip install {self.distribution}"
        folder = "plugins/" + self.distribution.replace("-", "_")
        return (
            f"{first}pip install -e {folder}  "
            f"# from a ser_core checkout; once on PyPI: pip install {self.distribution}"
        )
