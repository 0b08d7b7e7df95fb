"""The built-in dataset layouts: labelled folders and the file-name conventions of Emo-DB, EMOVO,
RAVDESS, CREMA-D, TESS and ASED (docs/datasets.md), registered through the same hook a plugin's
layout would use. Detection tries them in this order."""

from __future__ import annotations

import re
from pathlib import Path

from ser_core.contract.hookspecs import hookimpl
from ser_core.errors import SerError
from ser_core.training.datasets import Parsed
from ser_core.training.labels import canonical

#: Per-corpus emotion code (as written in the original file names) -> canonical label.
CORPUS_LABELS: dict[str, dict[str, str]] = {
    "ravdess": {
        "01": "neutral",
        "02": "calm",
        "03": "happy",
        "04": "sad",
        "05": "angry",
        "06": "fearful",
        "07": "disgust",
        "08": "surprised",
    },
    "emodb": {
        "W": "angry",
        "L": "boredom",
        "E": "disgust",
        "A": "fearful",
        "F": "happy",
        "T": "sad",
        "N": "neutral",
    },
    "emovo": {
        "dis": "disgust",
        "gio": "happy",
        "neu": "neutral",
        "pau": "fearful",
        "rab": "angry",
        "sor": "surprised",
        "tri": "sad",
    },
    "crema-d": {
        "ANG": "angry",
        "DIS": "disgust",
        "FEA": "fearful",
        "HAP": "happy",
        "NEU": "neutral",
        "SAD": "sad",
    },
    "ased": {
        "n1": "neutral",
        "f2": "fearful",
        "h3": "happy",
        "s4": "sad",
        "a5": "angry",
    },
    "tess": {
        "angry": "angry",
        "disgust": "disgust",
        "fear": "fearful",
        "happy": "happy",
        "neutral": "neutral",
        "ps": "surprised",
        "sad": "sad",
    },
}

#: Layout names accepted by `detect` and as a ``layout:PATH`` prefix, in detection priority order.
LAYOUTS: tuple[str, ...] = ("folders", "ravdess", "emodb", "emovo", "crema-d", "tess", "ased", "csv")

_LAYOUT_ALIASES = {"folder": "folders", "crema": "crema-d", "cremad": "crema-d", "emo-db": "emodb"}

_RAVDESS = re.compile(r"(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)")
_EMODB = re.compile(r"(\d\d)([a-z]\d\d)([A-Z])([a-z]{0,2})")
_EMOVO = re.compile(r"([a-z]{3})-([fm]\d+)-([a-z]+\d*)", re.IGNORECASE)
_CREMA = re.compile(r"(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})")
_TESS = re.compile(r"([OY]AF)_(.+)_([A-Za-z]+)", re.IGNORECASE)
# emotion letter + number, sentence, repetition, gender, speaker; one name is upper case in v1
_ASED = re.compile(r"([a-z]\d)-(\d\d)-(\d\d)-(0[12])-(\d\d)", re.IGNORECASE)


def _code(corpus: str, code: str) -> str | None:
    return CORPUS_LABELS[corpus].get(code)


def _ravdess(path: Path, root: Path) -> Parsed | None:
    m = _RAVDESS.fullmatch(path.stem)
    if not m or (label := _code("ravdess", m[3])) is None:
        return None
    speech = m[2] == "01" and m[1] in ("01", "03")
    return Parsed(label if speech else None, f"ravdess:{m[7]}")


def _emodb(path: Path, root: Path) -> Parsed | None:
    m = _EMODB.fullmatch(path.stem)
    if not m or (label := _code("emodb", m[3])) is None:
        return None
    return Parsed(label, f"emodb:{m[1]}")


def _emovo(path: Path, root: Path) -> Parsed | None:
    m = _EMOVO.fullmatch(path.stem)
    if not m or (label := _code("emovo", m[1].lower())) is None:
        return None
    return Parsed(label, f"emovo:{m[2].lower()}")


def _crema(path: Path, root: Path) -> Parsed | None:
    m = _CREMA.fullmatch(path.stem)
    if not m or (label := _code("crema-d", m[3])) is None:
        return None
    return Parsed(label, f"crema-d:{m[1]}")


def _tess(path: Path, root: Path) -> Parsed | None:
    m = _TESS.fullmatch(path.stem)
    if not m or (label := _code("tess", m[3].lower())) is None:
        return None
    return Parsed(label, f"tess:{m[1].upper()}")


def _ased(path: Path, root: Path) -> Parsed | None:
    m = _ASED.fullmatch(path.stem)
    if not m or (label := _code("ased", m[1].lower())) is None:
        return None
    return Parsed(label, f"ased:{m[5]}")  # the speaker field alone names the person (01-65)


def _folders(path: Path, root: Path) -> Parsed | None:
    parts = path.relative_to(root).parts
    if len(parts) < 2:
        return None
    try:
        return Parsed(canonical(parts[0]), None)
    except SerError:
        return None


@hookimpl
def ser_register_dataset_layouts(register):
    register("folders", _folders, corpus=None, aliases=("folder",))
    register("ravdess", _ravdess)
    register("emodb", _emodb, aliases=("emo-db",))
    register("emovo", _emovo)
    register("crema-d", _crema, aliases=("crema", "cremad"))
    register("tess", _tess)
    register("ased", _ased)
