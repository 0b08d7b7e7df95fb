"""One canonical emotion label ontology, and the aliases corpora and users write for it."""

from __future__ import annotations

from collections.abc import Iterable

from ser_core.errors import SerError

#: Canonical labels, in a fixed order (artifacts and reports list labels in this order).
CANONICAL: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
    "boredom",
)

#: Lower-case aliases (English words, corpus codes are mapped in the adapters) -> canonical label.
ALIASES: dict[str, str] = {
    **{label: label for label in CANONICAL},
    "neu": "neutral",
    "hap": "happy",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sad",
    "anger": "angry",
    "ang": "angry",
    "fear": "fearful",
    "fea": "fearful",
    "disgusted": "disgust",
    "dis": "disgust",
    "surprise": "surprised",
    "sur": "surprised",
    "ps": "surprised",
    "pleasant_surprise": "surprised",
    "pleasant_surprised": "surprised",
    "bored": "boredom",
    "boring": "boredom",
}


def canonical(label: str) -> str:
    """Map a label or alias to the canonical ontology; raise on anything unknown."""
    key = label.strip().lower().replace("-", "_").replace(" ", "_")
    try:
        return ALIASES[key]
    except KeyError:
        raise SerError(f"unknown emotion label {label!r}; known: {', '.join(CANONICAL)}") from None


def ordered(labels: Iterable[str]) -> list[str]:
    """Canonicalise and sort labels in ontology order, without duplicates."""
    wanted = {canonical(label) for label in labels}
    return [label for label in CANONICAL if label in wanted]
