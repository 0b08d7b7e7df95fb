"""`ser plugins`, `ser doctor` and `ser consent`: what is installed, what works, what is allowed."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ser_core.cli.app import (
    app,
    emit,
    err,
    fail,
    out,
)
from ser_core.errors import SerError
from ser_core.models.classifiers import DEFAULT_KIND


@app.command(help="List installed plugins: name, version, hooks and the profiles they serve.")
def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    from ser_core.plugins.lookup import all_profiles
    from ser_core.plugins.manager import plugin_infos, skipped_plugins

    infos = plugin_infos()
    skipped = [{"name": s.name, "reason": s.reason} for s in skipped_plugins()]
    if as_json:
        emit(json.dumps({"plugins": infos, "skipped": skipped}, indent=2), None)
        return
    table = Table(title="plugins")
    for column in ("name", "distribution", "version", "hooks", "profiles"):
        table.add_column(column)
    for info in infos:
        table.add_row(
            info["name"],
            info["distribution"],
            info["version"],
            "\n".join(info["hooks"]),
            ", ".join(info["profiles"]),
        )
    out.print(table)
    served = {p for info in infos for p in info["profiles"]}
    for profile in all_profiles().values():
        state = (
            "installed" if profile.name in served else f"not installed: {profile.install}"
        )
        out.print(f"profile {profile.name}: {escape(state)}", highlight=False, soft_wrap=True)
    from ser_core.plugins.lookup import classifier_kinds

    out.print(
        f"classifier kinds: {', '.join(sorted(classifier_kinds()))} (default {DEFAULT_KIND})", highlight=False
    )
    from ser_core.plugins.registries import diarizers
    from ser_core.settings import get_settings

    chosen = get_settings().diarizer
    out.print(f"diarizers: {', '.join(diarizers())} (SER_DIARIZER, now {chosen})", highlight=False)
    for s in skipped:
        out.print(f"[yellow]skipped plugin {s['name']}: {s['reason']}[/]", highlight=False)


@app.command(help="Check that `ser analyze` can run here; print each problem with the command that fixes it.")
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    from ser_core.operations.doctor import healthy, run_checks
    from ser_core.settings import get_settings

    checks = run_checks(get_settings())
    if as_json:
        emit(json.dumps({"ok": healthy(checks), "checks": [c.as_dict() for c in checks]}, indent=2), None)
    else:
        colour = {"ok": "green", "warn": "yellow", "fail": "bold red"}
        width = max(len(c.name) for c in checks)
        for c in checks:
            out.print(
                f"[{colour[c.status]}]{c.status:>4}[/]  {c.name:<{width}}  {escape(c.detail)}",
                highlight=False,
                soft_wrap=True,
            )
            if c.fix:
                out.print(
                    f"      {'':<{width}}  fix: [bold]{escape(c.fix)}[/]", highlight=False, soft_wrap=True
                )
        out.print(
            "ser analyze can run."
            if healthy(checks)
            else "[bold red]ser analyze cannot run; see the fixes above.[/]"
        )
    if not healthy(checks):
        raise typer.Exit(1)


consent_app = typer.Typer(help="Consents for restricted backends (their weights carry their own licence).")
app.add_typer(consent_app, name="consent")


@consent_app.command("list", help="Stored consents, and what the environment allows for this run.")
def consent_list() -> None:
    from ser_core.plugins import consent
    from ser_core.settings import get_settings

    settings = get_settings()
    consents = consent.store(settings)
    records = consents.read()
    if consents.problem is not None:
        err.print(f"[yellow]warning:[/] {escape(consents.problem)}; treated as no consent", highlight=False)
    out.print(f"consent file: {consents.path}", highlight=False)
    for backend_id, record in sorted(records.items()):
        out.print(
            f"  {backend_id}: licence {record.get('licence_id')}, granted {record.get('granted_at')}",
            highlight=False,
        )
    if not records:
        out.print("  (no stored consent)", highlight=False)
    if settings.enable_restricted_backends:
        out.print("this run: SER_ENABLE_RESTRICTED_BACKENDS allows every restricted backend", highlight=False)
    if settings.allowed_restricted_backends.strip():
        out.print(
            f"this run: SER_ALLOWED_RESTRICTED_BACKENDS={settings.allowed_restricted_backends}",
            highlight=False,
        )


@consent_app.command("revoke", help="Remove the stored consent for BACKEND (or every one with --all).")
def consent_revoke(
    backend: Annotated[str | None, typer.Argument(help="Backend id, e.g. emotion2vec.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Revoke every stored consent.")] = False,
) -> None:
    from ser_core.plugins import consent
    from ser_core.settings import get_settings

    if (backend is None) == (not all_):
        raise typer.BadParameter("name one BACKEND or pass --all")
    try:
        removed = consent.store(get_settings()).revoke(None if all_ else backend)
    except SerError as exc:
        raise fail(exc) from None
    out.print(f"revoked: {', '.join(removed)}" if removed else "nothing to revoke", highlight=False)


