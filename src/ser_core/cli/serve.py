"""`ser serve`: the HTTP API on this machine."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ser_core.cli.app import app, err


def is_local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command(
    # escape: the help is rich markup, which would swallow "[serve]" as a style tag
    help=escape(
        "Serve the HTTP API (POST /v1/analyses, GET /v1/analyses/ID or ID.srt/.vtt/.csv/.html, ...). "
        "Binds 127.0.0.1; any other host needs --token. Needs pip install 'ser-core[serve]'."
    )
)
def serve(
    host: Annotated[
        str, typer.Option(help="Address to bind; other than localhost only with --token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    profile: Annotated[str | None, typer.Option(help="Profile of requests that name none.")] = None,
    jobs: Annotated[int, typer.Option(help="Analyses at a time (each worker holds the models once).")] = 1,
    token: Annotated[
        str | None,
        typer.Option(
            help="Require `Authorization: Bearer TOKEN` on every request.", envvar="SER_SERVE_TOKEN"
        ),
    ] = None,
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="A web origin whose pages may call the API (repeatable); default none.")
    ] = None,
    allow_paths: Annotated[
        Path | None,
        typer.Option(
            help='Also accept JSON {"path": ...} naming a file under this folder (no upload).',
            exists=True,
            file_okay=False,
        ),
    ] = None,
) -> None:
    if not is_local(host) and not token:
        err.print(
            f"[bold red]error:[/] binding {escape(host)} exposes the API beyond this machine: "
            "give --token TOKEN (clients send Authorization: Bearer TOKEN)",
            highlight=False,
        )
        raise typer.Exit(2)
    try:
        import uvicorn

        from ser_core.server.api import create_app
    except ImportError:
        err.print(
            "[bold red]error:[/] "
            + escape("ser serve needs FastAPI and uvicorn: pip install 'ser-core[serve]'"),
            highlight=False,
        )
        raise typer.Exit(10) from None
    if not is_local(host):
        err.print(f"serving on {escape(host)}:{port}: every request needs the bearer token", highlight=False)
    app_ = create_app(token=token, jobs=jobs, profile=profile, allow_paths=allow_paths, cors_origins=cors_origin)
    uvicorn.run(app_, host=host, port=port, log_level="info")
