"""One input's work in a batch run, whatever engine runs it: analyse, render each missing output,
write them. Local processes do all three; Ray actors render and the driver writes."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ser_core.atomic_files import atomic_write_text
from ser_core.contract.results import AnalysisResult
from ser_core.errors import SerError
from ser_core.plugins.registries import on_reset
from ser_core.runs.budget import Runner, runner_for


@dataclass(frozen=True)
class Task:
    """An input, the (format, output path) pairs still missing, and the `analyze` arguments."""

    source: Path
    targets: tuple[tuple[str, Path], ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What became of an input: "analysed" or "failed", its run-report record, seconds of audio."""

    kind: str
    record: dict[str, Any]
    audio_seconds: float = 0.0

    @classmethod
    def failed(cls, source: Path, error: str) -> Outcome:
        return cls("failed", {"path": str(source), "error": error})


@dataclass(frozen=True)
class Rendered:
    """An outcome before writing: also the text of each missing output, in the task's order."""

    outcome: Outcome
    texts: list[str] = field(default_factory=list)


def run_group(tasks: Sequence[Task], group: int) -> Iterator[Outcome]:
    """Analyse each input and write its missing outputs, in the order they end, the analyses
    advancing `group` at a time (transcription batched, `ser_core.pipeline.grouped`); each input
    is written when it ends."""
    for task, done in rendered_group(tasks, group):
        yield written(task, done)


def run_chunk(tasks: Sequence[Task], group: int) -> list[Outcome]:
    """`run_group` in a worker process: every outcome once the chunk is done."""
    return list(run_group(tasks, group))


def chunks(todo: Sequence[Task], group: int, workers: int) -> list[list[Task]]:
    """The tasks in runs of at most `group`, and small enough that every worker gets one."""
    size = max(1, min(group, -(-len(todo) // max(1, workers))))
    return [list(todo[i : i + size]) for i in range(0, len(todo), size)]


def rendered_group(tasks: Sequence[Task], group: int) -> Iterator[tuple[Task, Rendered]]:
    """Analyse each input (all with the same `analyze` arguments) and render each missing output,
    in the order they end; a bad input is a failed outcome. An input's seconds are the time since
    the one before it ended: together they are the wall time."""
    if not tasks:
        return
    sources = [task.source for task in tasks]
    began = time.perf_counter()
    for index, _, result in runner(tasks[0].kwargs).analyze_grouped(sources, group):
        now = time.perf_counter()
        yield tasks[index], _render(tasks[index], result, now - began)
        began = now


def _render(task: Task, result: AnalysisResult | SerError, seconds: float) -> Rendered:
    from ser_core.pipeline.exports import render

    if isinstance(result, SerError):
        return Rendered(Outcome.failed(task.source, str(result)))
    try:
        texts = [render([result], fmt) for fmt, _ in task.targets]
    except SerError as exc:
        return Rendered(Outcome.failed(task.source, str(exc)))
    record = {
        "path": str(task.source),
        "status": result.status,
        "label": result.label,
        "outputs": [str(target) for _, target in task.targets],
        "seconds": round(seconds, 3),
    }
    return Rendered(Outcome("analysed", record, result.duration), texts)


def written(task: Task, done: Rendered) -> Outcome:
    """Write a rendered input's texts to its targets (atomically); a write error is its failure."""
    try:
        for (_, target), text in zip(task.targets, done.texts, strict=False):
            atomic_write_text(target, text)
    except SerError as exc:
        return Outcome.failed(task.source, str(exc))
    return done.outcome


_runners: dict[str, Runner] = {}


def _close_runners() -> None:
    for each in _runners.values():
        each.close()
    _runners.clear()


on_reset(_close_runners)  # new settings or plugins: new runners (their worker processes stopped)


def runner(kwargs: dict[str, Any]) -> Runner:
    """This process's runner (the profile's time budget) for these `analyze` arguments, reused."""
    fresh = runner_for(kwargs)
    return _runners.setdefault(repr((sorted(kwargs.items()), fresh.budget)), fresh)
