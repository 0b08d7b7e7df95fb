"""Batch runs: many inputs (files, folders, globs), one output file per input and format, a run
report. Resumable: an input whose output already exists is skipped (outputs are written
atomically, so an existing one is complete). One bad input never stops the run. Each input is a
`ser_core.runs.tasks.Task`, run here in this process, in worker processes, or by `ser_core.runs.ray_engine`."""

from __future__ import annotations

import glob
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ser_core.atomic_files import atomic_write_text, check_writable
from ser_core.pipeline.audio import AUDIO_EXTENSIONS
from ser_core.pipeline.exports import exporter
from ser_core.runs.budget import runner_for
from ser_core.runs.tasks import Outcome, Task, chunks, run_chunk, run_group
from ser_core.settings import get_settings

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
            files = sorted(p for p in _files_in(path, recursive) if p.suffix.lower() in AUDIO_EXTENSIONS)
            found += [(p, p.relative_to(path)) for p in files]
        elif any(char in text for char in "*?["):
            matches = sorted(Path(p) for p in glob.glob(text, recursive=recursive))
            found += [(p, Path(p.name)) for p in matches if p.is_file()]
        else:
            found.append((path, Path(path.name)))
    return found


def _files_in(folder: Path, recursive: bool) -> Iterator[Path]:
    """Files in `folder` (`recursive`: and its subfolders, linked ones too, each real folder once, so
    a link loop cannot make the walk endless)."""
    seen: set[str] = set()
    for current, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(current)
        dirs[:] = sorted(dirs) if recursive and real not in seen else []
        if real in seen:
            continue
        seen.add(real)
        yield from (p for name in names if (p := Path(current, name)).is_file())


@dataclass
class RunReport:
    """What a batch run did: per input its outputs, or why it failed or was skipped."""

    output_dir: str
    formats: list[str]
    analysed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    audio_seconds: float = 0.0
    #: Stopped by Ctrl-C: the inputs not listed are left for the next run (outputs are atomic).
    interrupted: bool = False

    def write(self) -> Path:
        path = Path(self.output_dir) / REPORT_NAME
        atomic_write_text(path, json.dumps(self.__dict__, indent=2) + "\n")
        return path


def run(
    items: list[tuple[Path, Path]],
    output_dir: Path,
    formats: str | Sequence[str],
    kwargs: dict[str, Any],
    jobs: int | None = 1,
    tick: Callable[[int], None] | None = None,
    engine: str = "local",
    address: str | None = None,
) -> RunReport:
    """Analyse each input whose output does not exist yet (`ser_core.analyze(path, **kwargs)`),
    write it in each of `formats` (one analysis, one file per format), and return the report.
    `jobs` > 1 runs that many worker processes (each loads the models once). `engine="ray"`: Ray actors do the work (`ser_core.runs.ray_engine`; a local
    cluster of `jobs` CPUs, or the cluster at `address`; `jobs` None: every CPU)."""
    if engine not in ("local", "ray"):
        raise ValueError(f"engine {engine!r}: 'local' or 'ray'")
    check_writable(Path(output_dir) / REPORT_NAME)  # fail now, not after the work
    formats = [formats] if isinstance(formats, str) else list(formats)
    report = RunReport(str(output_dir), formats)
    start = time.perf_counter()
    todo = []
    for source, relative in items:
        targets = [(fmt, output_dir / relative.with_suffix(exporter(fmt).extension)) for fmt in formats]
        missing = tuple((fmt, target) for fmt, target in targets if not target.exists())
        if not missing:
            outputs = [str(target) for _, target in targets]
            report.skipped.append({"path": str(source), "outputs": outputs, "reason": "outputs exist"})
            if tick is not None:
                tick(1)
        else:
            todo.append(Task(source, missing, kwargs))
    try:
        _dispatch(todo, report, jobs, tick, engine, address)
    except KeyboardInterrupt:
        report.interrupted = True
    _in_input_order(todo, report)
    report.seconds = round(time.perf_counter() - start, 3)
    report.audio_seconds = round(report.audio_seconds, 3)
    return report


def _dispatch(
    todo: list[Task],
    report: RunReport,
    jobs: int | None,
    tick: Callable[[int], None] | None,
    engine: str,
    address: str | None,
) -> None:
    """Run the tasks, their analyses advancing `group_files` at a time in each process or actor
    (so short inputs share batched transcription); the report lists them in input order."""
    group = _group_size(todo)
    if engine == "ray":
        from ser_core.runs import ray_engine

        _collect(ray_engine.outcomes(todo, jobs, address, group), report, tick)
    elif jobs is not None and jobs > 1 and len(todo) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        parts = chunks(todo, group, jobs)
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            try:
                done = pool.map(run_chunk, parts, [group] * len(parts))
                _collect((outcome for outcomes in done for outcome in outcomes), report, tick)
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    else:
        _collect(run_group(todo, group), report, tick)


def _group_size(todo: list[Task]) -> int:
    """The `group_files` setting of the run's `analyze` arguments; 1 without a transcript (the
    only work grouping shares)."""
    kwargs = todo[0].kwargs if todo else {}
    settings = kwargs.get("settings") or get_settings()
    transcript = kwargs.get("transcript")
    return settings.group_files if (settings.transcript if transcript is None else transcript) else 1


def _in_input_order(todo: list[Task], report: RunReport) -> None:
    order = {str(task.source): i for i, task in enumerate(todo)}
    for records in (report.analysed, report.failures):
        records.sort(key=lambda record: order.get(record["path"], -1))


def _collect(
    outcomes: Iterable[Outcome],
    report: RunReport,
    tick: Callable[[int], None] | None,
) -> None:
    for outcome in outcomes:
        (report.analysed if outcome.kind == "analysed" else report.failures).append(outcome.record)
        report.audio_seconds += outcome.audio_seconds
        if tick is not None:
            tick(1)


def analyze_many(
    paths: Iterable[str | Path], adapt: bool = False, **kwargs: Any
) -> Iterator[tuple[Path, Any]]:
    """`(path, AnalysisResult)` per input, lazily; a bad input yields `(path, SerError)` and the
    iteration goes on. Keyword arguments are those of `ser_core.analyze`; each input is analysed
    under the profile's time budget (`ser_core.runs.budget`). With a transcript, up to
    `group_files` inputs are analysed together (their words decoded in shared batches), so a
    result may be computed before it is asked for. `adapt`: the inputs come from one source,
    whose statistics the features are standardised by (`ser_core.training.extract.source_of`; reads
    up to 200 of them first)."""
    if adapt:
        from ser_core.training.extract import source_of

        paths = list(paths)
        kwargs["source"] = source_of(paths, kwargs.get("profile"))
    group = (kwargs.get("settings") or get_settings()).group_files
    ended: dict[int, tuple[Path, Any]] = {}
    following = 0  # results in input order: those that end early wait for the ones before them
    with runner_for(kwargs) as guarded:
        for index, path, outcome in guarded.analyze_grouped(paths, group):
            ended[index] = Path(path), outcome
            while following in ended:
                yield ended.pop(following)
                following += 1
