"""The one place that maps a profile to its embedding backend and the distribution providing it."""

from __future__ import annotations

from dataclasses import dataclass

from ser_core.errors import ProfileError


@dataclass(frozen=True)
class Profile:
    name: str
    backend_id: str
    distribution: str
    description: str
    restricted: bool = False
    #: Packages to install before the plugin (torch: so users pick their own build, CPU or CUDA).
    needs: str = ""
    #: Whether `distribution` is on PyPI; until then only a checkout's `plugins/` folder has it.
    published: bool = False

    @property
    def install(self) -> str:
        """One line that installs the profile's backend and works today (every install hint
        prints this): from PyPI once published, else from the `plugins/` folder of a checkout."""
        first = f"pip install {self.needs} && " if self.needs else ""
        if self.published:
            return f"{first}pip install {self.distribution}"
        folder = "plugins/" + self.distribution.replace("-", "_")
        return (
            f"{first}pip install -e {folder}  "
            f"# from a ser_core checkout; once on PyPI: pip install {self.distribution}"
        )


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "fast", "handcrafted", "ser-backend-handcrafted", "handcrafted acoustic features + linear model"
        ),
        Profile(
            "medium",
            "hf_xlsr",
            "ser-backend-hf",
            "wav2vec2-family embeddings (XLS-R, HuBERT, WavLM)",
            needs="torch",
        ),
        Profile("accurate", "hf_whisper", "ser-backend-hf", "Whisper encoder embeddings", needs="torch"),
        Profile(
            "accurate-research",
            "emotion2vec",
            "ser-backend-emotion2vec",
            "emotion2vec embeddings (restricted licence, needs consent)",
            restricted=True,
            needs="torch",
        ),
    )
}


def get_profile(name: str) -> Profile:
    """The profile called `name`, or a one-line error listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ProfileError(f"unknown profile {name!r}; choose one of: {', '.join(PROFILES)}") from None
