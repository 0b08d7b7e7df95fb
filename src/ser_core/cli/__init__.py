"""`ser`: a thin typer CLI over the library API, one module per command group."""

from __future__ import annotations

from ser_core.cli import analyze, info, models  # noqa: F401 (their commands register on `app`)
from ser_core.cli.app import app

__all__ = ["app", "main"]


def main() -> None:
    app()
