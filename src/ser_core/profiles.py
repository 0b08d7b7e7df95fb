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


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "fast", "handcrafted", "ser-backend-handcrafted", "handcrafted acoustic features + linear model"
        ),
        Profile("medium", "hf_xlsr", "ser-backend-hf", "wav2vec2-family embeddings (XLS-R, HuBERT, WavLM)"),
        Profile("accurate", "hf_whisper", "ser-backend-hf", "Whisper encoder embeddings"),
        Profile(
            "accurate-research",
            "emotion2vec",
            "ser-backend-emotion2vec",
            "emotion2vec embeddings (restricted licence, needs consent)",
            restricted=True,
        ),
    )
}


def get_profile(name: str) -> Profile:
    """The profile called `name`, or a one-line error listing the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ProfileError(f"unknown profile {name!r}; choose one of: {', '.join(PROFILES)}") from None
