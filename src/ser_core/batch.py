"""Batch runs: many inputs (files, folders, globs), one output file per input and format, a run
report. Resumable: an input whose output already exists is skipped (outputs are written
atomically, so an existing one is complete). One bad input never stops the run."""

from __future__ import annotations

import glob
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ser_core.audio import _FFMPEG_EXTS, _SOUNDFILE_EXTS
from ser_core.errors import SerError
from ser_core.io import atomic_write_text

AUDIO_EXTENSIONS = _SOUNDFILE_EXTS | _FFMPEG_EXTS
EXTENSIONS = {"json": ".json", "csv": ".csv", "srt": ".srt", "vtt": ".vtt", "table": ".txt", "html": ".html"}
REPORT_NAME = "ser-run-report.json"


def expand(inputs: Iterable[str | Path], recursive: bool = False) -> list[tuple[Path, Path]]:
    """(input file, its path relative to the folder or glob it came from), in a stable order.
    Folders yield their audio files (`recursive`: subfolders too); a pattern with * ? [ is a glob;
    anything else is taken as a file (a missing one fails later, with its own error)."""
    found: list[tuple[Path, Path]] = []
    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            files = sorted(
                p for p in path.glob(pattern) if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
            )
            found += [(p, p.relative_to(path)) for p in files]
        elif any(char in text for char in "*?["):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=recursive))
            found += [(p, Path(p.name)) for p in matches if p.is_file()]
        else:
            found.append((path, Path(path.name)))
    return found


@dataclass
class RunReport:
    """What a batch run did: per input its outputs, or why it failed or was skipped."""

    output_dir: str
    format: str
    analysed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    audio_seconds: float = 0.0

    def write(self) -> Path:
        path = Path(self.output_dir) / REPORT_NAME
        atomic_write_text(path, json.dumps(self.__dict__, indent=2) + "\n")
        return path


def run(
    items: list[tuple[Path, Path]],
    output_dir: Path,
    fmt: str,
    analyze: Callable[[Path], Any],
    render: Callable[[Any], str],
    tick: Callable[[int], None] | None = None,
) -> RunReport:
    """Analyse each input whose output does not exist yet and write it; returns the report."""
    report = RunReport(str(output_dir), fmt)
    start = time.perf_counter()
    for source, relative in items:
        target = output_dir / relative.with_suffix(EXTENSIONS[fmt])
        if target.exists():
            report.skipped.append({"path": str(source), "output": str(target), "reason": "output exists"})
        else:
            began = time.perf_counter()
            try:
                result = analyze(source)
                atomic_write_text(target, render(result))
            except SerError as exc:
                report.failures.append({"path": str(source), "error": str(exc)})
            else:
                seconds = round(time.perf_counter() - began, 3)
                report.analysed.append({"path": str(source), "output": str(target), "seconds": seconds})
                report.audio_seconds += float(getattr(result, "duration", 0.0))
        if tick is not None:
            tick(1)
    report.seconds = round(time.perf_counter() - start, 3)
    report.audio_seconds = round(report.audio_seconds, 3)
    return report


def analyze_many(paths: Iterable[str | Path], **kwargs: Any) -> Iterator[tuple[Path, Any]]:
    """`(path, AnalysisResult)` per input, lazily; a bad input yields `(path, SerError)` and the
    iteration goes on. Keyword arguments are those of `ser_core.analyze`."""
    from ser_core.api import analyze

    for path in paths:
        try:
            yield Path(path), analyze(path, **kwargs)
        except SerError as exc:
            yield Path(path), exc
