"""One input's work in a batch run, whatever engine runs it: analyse, render each missing output,
write them. Local processes do all three; Ray actors render and the driver writes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ser_core.atomic_files import atomic_write_text
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


def run_one(task: Task) -> Outcome:
    """Analyse one input and write its missing outputs."""
    return written(task, rendered(task))


def rendered(task: Task) -> Rendered:
    """Analyse one input and render each missing output; a bad input is a failed outcome."""
    from ser_core.pipeline.exports import render

    began = time.perf_counter()
    try:
        result = runner(task.kwargs).analyze(task.source)
        texts = [render([result], fmt) for fmt, _ in task.targets]
    except SerError as exc:
        return Rendered(Outcome.failed(task.source, str(exc)))
    record = {
        "path": str(task.source),
        "status": result.status,
        "label": result.label,
        "outputs": [str(target) for _, target in task.targets],
        "seconds": round(time.perf_counter() - began, 3),
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
