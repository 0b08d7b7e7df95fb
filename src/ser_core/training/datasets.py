"""Read emotional-speech corpora into labelled items, from their original file-name layouts or a CSV manifest.

Every layout yields `Item`s with a canonical label (see `ser_core.training.labels`) and a speaker prefixed with
the corpus name (``"emodb:03"``), so speakers of two corpora never collide.
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ser_core.errors import DatasetError, SerError
from ser_core.pipeline.audio import AUDIO_EXTENSIONS
from ser_core.training.labels import CANONICAL, canonical, ordered

#: Share of a folder's audio files that must match one layout for `detect` to pick it.
MAJORITY = 0.8


@dataclass(frozen=True)
class Item:
    """One labelled recording."""

    path: Path
    label: str
    speaker: str | None
    corpus: str


@dataclass(frozen=True)
class Parsed:
    """What a file name says; `label` None means it matched the layout but is excluded (e.g. RAVDESS song)."""

    label: str | None
    speaker: str | None


@dataclass(frozen=True)
class Layout:
    """A folder layout: `parse(path, root)` says what one audio file's name or place means (a
    `Parsed`, or None when the file does not follow the layout); items get `corpus` (the layout's
    name unless registered otherwise; None: the folder's own name)."""

    name: str
    parse: Callable[[Path, Path], Parsed | None]
    corpus: str | None = None
    aliases: tuple[str, ...] = ()


def layouts() -> dict[str, Layout]:
    """Registered folder layouts (`ser_register_dataset_layouts`), in detection priority order:
    the built-ins first (`ser_core.builtin_plugins.layouts`), then plugins'."""
    from ser_core.plugins.registries import entries

    def build(name: str, parse: Callable[[Path, Path], Parsed | None], **info: Any) -> Layout:
        return Layout(name, parse, **{"corpus": name, **info})

    return entries("ser_register_dataset_layouts", build)


def layout_names() -> list[str]:
    """Every name `detect` may answer and a ``layout:PATH`` prefix may give (CSV manifests too)."""
    return [*layouts(), "csv"]


def _audio_files(root: Path) -> list[Path]:
    """Audio files under `root`, recursively (following links, once each), hidden files skipped, sorted.

    Raises DatasetError when there are none.
    """
    found: list[Path] = []
    seen: set[str] = set()
    for folder, dirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [
            Path(folder, n)
            for n in names
            if not n.startswith(".") and Path(n).suffix.lower() in AUDIO_EXTENSIONS
        ]
    if not found:
        raise DatasetError(
            f"{root}: no audio files found (extensions: {', '.join(sorted(AUDIO_EXTENSIONS))})"
        )
    return sorted(found)


def _split_spec(spec: str | os.PathLike[str]) -> tuple[str | None, Path]:
    """Split ``layout:PATH`` into (layout, path); a plain path gives (None, path)."""
    if not isinstance(spec, str):
        return None, Path(spec)
    m = re.fullmatch(r"([A-Za-z][\w-]+):(.+)", spec)
    if not m or Path(spec).exists():
        return None, Path(spec).expanduser()
    aliases = {alias: layout.name for layout in layouts().values() for alias in layout.aliases}
    name = aliases.get(m[1].lower(), m[1].lower())
    if name not in layout_names():
        raise DatasetError(f"{spec}: unknown dataset layout {m[1]!r}; supported: {', '.join(layout_names())}")
    return name, Path(m[2]).expanduser()


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise DatasetError(f"{path}: no such file or directory")


def _detect_dir(root: Path, files: list[Path]) -> str:
    known = layouts()
    counts = {name: sum(layout.parse(f, root) is not None for f in files) for name, layout in known.items()}
    best = max(known, key=lambda name: counts[name])  # ties go to the layout registered first
    if counts[best] >= MAJORITY * len(files):
        return best
    raise DatasetError(
        f"{root}: cannot tell the dataset layout ({len(files)} audio files, at most {counts[best]} match one "
        f"layout); supported: {', '.join(layout_names())}; name one explicitly as LAYOUT:PATH"
    )


def detect(path: str | os.PathLike[str]) -> str:
    """Name of the layout of `path` (one of `layout_names()`), from a ``layout:`` prefix or its file names."""
    layout, root = _split_spec(path)
    _check_exists(root)
    if layout is not None:
        return layout
    if root.is_file():
        if root.suffix.lower() == ".csv":
            return "csv"
        raise DatasetError(f"{root}: not a corpus folder or .csv manifest; supported: {', '.join(layout_names())}")
    files = _audio_files(root)
    return _detect_dir(root, files)


def _read_csv(manifest: Path) -> list[Item]:
    """Items from a CSV manifest with columns path, label and optional speaker, corpus."""
    if not manifest.is_file():
        raise DatasetError(f"{manifest}: CSV manifest is not a file")
    items: list[Item] = []
    try:
        with manifest.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [(h or "").strip().lower() for h in reader.fieldnames or []]
            if not {"path", "label"} <= set(header):
                raise DatasetError(
                    f"{manifest}: CSV header must contain path,label (found: {','.join(header)})"
                )
            reader.fieldnames = header
            for row in reader:
                where = f"{manifest}:{reader.line_num}"
                cells = {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)}
                if not any(cells.values()):
                    continue
                if not cells.get("path") or not cells.get("label"):
                    raise DatasetError(f"{where}: row needs both path and label")
                audio = Path(cells["path"]).expanduser()
                if not audio.is_absolute():
                    audio = (manifest.parent / audio).resolve()
                if not audio.is_file():
                    raise DatasetError(f"{where}: audio file {audio} not found")
                try:
                    label = canonical(cells["label"])
                except SerError as err:
                    raise DatasetError(f"{where}: {err}") from None
                corpus = cells.get("corpus") or manifest.stem
                speaker = f"{corpus}:{cells['speaker']}" if cells.get("speaker") else None
                items.append(Item(audio, label, speaker, corpus))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DatasetError(f"{manifest}: cannot read CSV manifest ({err})") from None
    return items


def _read_dir(root: Path, layout: str, files: list[Path]) -> list[Item]:
    """Items of the files matching `layout`; files that match no layout rule are skipped."""
    found = layouts()[layout]
    corpus = found.corpus or root.resolve().name or layout
    items = []
    for f in files:
        parsed = found.parse(f, root)
        if parsed is not None and parsed.label is not None:
            items.append(Item(f, parsed.label, parsed.speaker, corpus))
    return items


def load_datasets(specs: Sequence[str | os.PathLike[str]], labels: Sequence[str] | None = None) -> list[Item]:
    """The items of several datasets, one after another (see `load_dataset`)."""
    return [item for spec in specs for item in load_dataset(spec, labels)]


def load_dataset(spec: str | os.PathLike[str], labels: Sequence[str] | None = None) -> list[Item]:
    """Read a corpus folder, ``layout:PATH`` or CSV manifest into items sorted by path.

    `labels` keeps only those canonical labels (aliases accepted); None or empty keeps all.
    """
    layout, root = _split_spec(spec)
    _check_exists(root)
    wanted: list[str] | None = None
    if labels:
        try:
            wanted = ordered(labels)
        except SerError as err:
            raise DatasetError(f"{root}: {err}") from None
    if layout == "csv" or (layout is None and root.is_file()):
        if layout is None:
            detect(root)  # raises unless it is a .csv file
        items = _read_csv(root)
    else:
        if root.is_file():
            raise DatasetError(f"{root}: layout {layout!r} needs a folder, not a file")
        files = _audio_files(root)
        items = _read_dir(root, layout or _detect_dir(root, files), files)
    if not items:
        raise DatasetError(f"{root}: no labelled items found")
    if wanted is not None:
        found = ordered({i.label for i in items})
        items = [i for i in items if i.label in wanted]
        if not items:
            raise DatasetError(
                f"{root}: no items with labels {', '.join(wanted)} (found: {', '.join(found)})"
            )
    return sorted(items, key=lambda i: i.path)


def summary(items: Sequence[Item]) -> dict[str, Any]:
    """Counts per label (ontology order), per speaker and per corpus, and the number of files."""
    by_label = Counter(i.label for i in items)
    by_speaker = Counter(i.speaker for i in items if i.speaker is not None)
    return {
        "n_files": len(items),
        "labels": {label: by_label[label] for label in CANONICAL if by_label[label]},
        "speakers": dict(sorted(by_speaker.items())),
        "corpora": dict(sorted(Counter(i.corpus for i in items).items())),
    }
