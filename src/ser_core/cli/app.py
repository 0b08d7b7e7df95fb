"""The `ser` application: its options, consoles and the helpers every command shares."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ser_core import __version__
from ser_core.errors import SerError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Speech emotion recognition.")
out = Console()
err = Console(stderr=True)


class ReportFormat(StrEnum):
    json = "json"
    table = "table"


class Engine(StrEnum):
    local = "local"
    ray = "ray"


def fail(exc: SerError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    return typer.Exit(exc.exit_code)


@contextlib.contextmanager
def progress_bars(enabled: bool) -> Iterator[Callable[[str, int], Callable[[int], None]] | None]:
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:

        def start(description: str, total: int) -> Callable[[int], None]:
            task = bar.add_task(description, total=total)
            return lambda n: bar.advance(task, n)

        yield start


def emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    from ser_core.atomic_files import atomic_write_text

    atomic_write_text(output, text if text.endswith("\n") else text + "\n")


DatasetOption = Annotated[
    list[str], typer.Option("--dataset", "-d", help="Corpus folder or CSV manifest (repeatable).")
]
JobsOption = Annotated[int, typer.Option(help="Feature-extraction workers.")]
ProgressOption = Annotated[bool, typer.Option(help="Show progress bars.")]
ClassifierOption = Annotated[str, typer.Option(help="Classifier kind (see `ser plugins`).")]
AcceptOption = Annotated[
    bool, typer.Option(help="Accept the licence of this profile's restricted backend (stored).")
]
AcceptAllOption = Annotated[
    bool, typer.Option(help="Accept the licences of every installed restricted backend (stored).")
]


def store_consent(profile: str | None, accept: bool, accept_all: bool) -> None:
    """Store consent for restricted backends as asked on the command line."""
    if not (accept or accept_all):
        return
    from ser_core.plugins import consent
    from ser_core.settings import get_settings

    settings = get_settings()
    for backend_id in consent.grant_for(settings, None if accept_all else profile or settings.default_profile):
        err.print(f"consent stored for restricted backend {backend_id}", highlight=False)


@app.callback(invoke_without_command=True)
def _main(
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "warning",
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    logging.basicConfig(
        level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    if version:
        out.print(f"ser_core {__version__}")
        raise typer.Exit()


def split_list(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


