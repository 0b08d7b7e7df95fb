"""`ser`: a thin typer CLI over the library API, one module per command group."""

from __future__ import annotations

from ser_core.cli.app import app

# each module registers its commands on `app`, in the order `ser --help` lists them
from ser_core.cli import analyze, models, info, serve  # noqa: F401  isort: skip

__all__ = ["app", "main"]


def main() -> None:
    app()
