"""`ser analyze`: one recording, several, or a resumable batch (local processes or Ray)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ser_core.cli.app import (
    AcceptAllOption,
    AcceptOption,
    Engine,
    ProgressOption,
    app,
    emit,
    err,
    fail,
    progress_bars,
    store_consent,
)
from ser_core.errors import SerError

ANALYZE_HELP = """What was said in FILE, and in which emotion: utterance label with probabilities, emotion
segments over the speech, the transcript with word timestamps, and the merged timeline.

Examples:

  ser analyze talk.wav

  ser analyze talk.mp3 --format table

  ser analyze talk.wav --format srt --output talk.srt

  ser analyze talk.wav --format html --output talk.html

  ser analyze interview.m4a --language de --whisper-model base

  ser analyze call.wav --speakers 2 --format table

  ser analyze a.wav b.flac --no-transcript --format csv --output emotions.csv

  ser analyze calls/ --recursive --output-dir out -f json -f srt   (resumable batch + run report)

  ser analyze calls/ --output-dir out --engine ray --address auto   (batch on a Ray cluster)
"""


def _check_speakers(value: str | None) -> str | None:
    from ser_core.pipeline.speakers import parse_speakers

    if value is not None:
        try:
            parse_speakers(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    return value


@app.command(help=ANALYZE_HELP)
def analyze(
    files: Annotated[
        list[Path],
        typer.Argument(help="Audio files (wav, flac, ogg; mp3, m4a, video with ffmpeg), folders or globs."),
    ],
    profile: Annotated[str | None, typer.Option(help="fast, medium, accurate or accurate-research.")] = None,
    model: Annotated[str | None, typer.Option(help="Model artifact; default: the profile's model.")] = None,
    transcript: Annotated[
        bool | None, typer.Option("--transcript/--no-transcript", help="Transcribe (default: on).")
    ] = None,
    language: Annotated[
        str | None, typer.Option(help="Language code of the speech, or auto (default: settings).")
    ] = None,
    whisper_model: Annotated[
        str | None,
        typer.Option(help="Whisper model: a name (base, tiny.en, ...) or a CTranslate2 directory."),
    ] = None,
    speakers: Annotated[
        str | None,
        typer.Option(
            help="Who speaks when: off, auto (estimate how many) or the number of speakers "
            "(default: SER_SPEAKERS, off).",
            callback=_check_speakers,
        ),
    ] = None,
    format: Annotated[
        list[str] | None,
        typer.Option("--format", "-f", help="Output format: json (default), csv, srt, vtt, table, html, or one a plugin registers; batches take several."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    save_transcript: Annotated[
        bool, typer.Option(help="Also write each transcript as CSV into the transcripts directory.")
    ] = False,
    output_dir: Annotated[
        Path | None,
        typer.Option(help="Batch: one output per input here, a run report, inputs already done skipped."),
    ] = None,
    recursive: Annotated[bool, typer.Option(help="Look into subfolders of folder inputs.")] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            help="Batch: worker processes (each loads the models once); default 1, with Ray every CPU."
        ),
    ] = None,
    engine: Annotated[
        Engine,
        # escape: the help is rich markup, which would swallow "[ray]" as a style tag
        typer.Option(help=escape("Batch: local processes, or Ray actors (pip install 'ser-core[ray]').")),
    ] = Engine.local,
    address: Annotated[
        str | None,
        typer.Option(
            help="Batch with Ray: join this cluster (auto, HOST:PORT, ray://HOST:PORT), not a local one."
        ),
    ] = None,
    disable_timeouts: Annotated[
        bool,
        typer.Option(
            "--disable-timeouts", help="No time budget per input (SER_<PROFILE>_TIMEOUT_SECONDS)."
        ),
    ] = False,
    adapt: Annotated[
        bool,
        typer.Option(
            "--adapt",
            help="The inputs come from one source (a call centre, a microphone): standardise the "
            "features by their own statistics (10 or more recordings; best when emotions are mixed).",
        ),
    ] = False,
    progress: ProgressOption = True,
    accept_restricted_backends: AcceptOption = False,
    accept_all_restricted_backends: AcceptAllOption = False,
) -> None:
    import ser_core
    from ser_core.atomic_files import atomic_write_text, check_writable
    from ser_core.pipeline.exports import exporter, render, words_csv
    from ser_core.runs.batch import expand
    from ser_core.settings import get_settings

    if disable_timeouts:  # an environment variable, so that worker processes see it too
        os.environ["SER_DISABLE_TIMEOUTS"] = "true"
        get_settings.cache_clear()
    items = expand(files, recursive)
    files = [source for source, _ in items]
    kwargs = {
        "profile": profile,
        "model": model,
        "transcript": transcript,
        "language": language,
        "whisper_model": whisper_model,
        "speakers": speakers,
    }
    if output_dir is not None:
        try:
            store_consent(profile, accept_restricted_backends, accept_all_restricted_backends)
            _adapt(adapt, files, kwargs, jobs)
            formats = _formats(format)
            _batch(items, output_dir, formats, kwargs, progress, jobs, engine.value, address)
        except SerError as exc:
            raise fail(exc) from None
        return
    if engine is not Engine.local or address is not None:
        raise typer.BadParameter(
            "--engine ray and --address are for batch runs (--output-dir)", param_hint="--engine"
        )
    if not files:
        raise typer.BadParameter("no audio files found", param_hint="FILES")
    if format is not None and len(format) > 1:
        raise typer.BadParameter("several formats need --output-dir (one file each)", param_hint="--format")
    fmt = _formats(format)[0]
    if exporter(fmt).single_file and len(files) > 1:
        raise typer.BadParameter(f"--format {fmt} takes one input file", param_hint="--format")
    results: list[ser_core.AnalysisResult] = []
    failures: list[dict[str, str]] = []
    try:
        store_consent(profile, accept_restricted_backends, accept_all_restricted_backends)
        if output is not None:
            check_writable(output)  # fail now, not after the work
        _adapt(adapt, files, kwargs, jobs)
        for path, result in ser_core.analyze_many(files, **kwargs):
            if isinstance(result, SerError):
                # a bad input is recorded and the others go on; a bad model or profile stops all
                if len(files) == 1 or not isinstance(result, ser_core.errors.AudioError):
                    raise result
                err.print(f"[bold red]error:[/] {escape(str(result))}", highlight=False, soft_wrap=True)
                failures.append({"path": str(path), "error": str(result)})
                continue
            results.append(result)
            for warning in result.warnings:
                err.print(f"[yellow]warning:[/] {escape(str(path))}: {escape(warning)}", highlight=False, soft_wrap=True)
            if save_transcript and result.transcriber is not None:
                target = get_settings().transcripts_dir / f"{Path(path).stem}.csv"
                atomic_write_text(target, words_csv(result))
                err.print(f"transcript: {target}", highlight=False)
        emit(render(results, fmt, failures), output)
    except SerError as exc:
        raise fail(exc) from None
    if failures:
        raise typer.Exit(3)


def _formats(asked: list[str] | None) -> list[str]:
    """The output formats asked for (default json), each one a registered exporter."""
    from ser_core.pipeline.exports import exporters

    known = exporters()
    for name in asked or []:
        if name not in known:
            raise typer.BadParameter(f"unknown format {name!r}; choose one of: {', '.join(known)}", param_hint="--format")
    return list(asked or ["json"])


def _adapt(adapt: bool, files: list[Path], kwargs: dict[str, Any], jobs: int | None) -> None:
    """With `adapt`, the statistics of the inputs' source into `kwargs` (the analysis takes them)."""
    if not adapt:
        return
    from ser_core.training.extract import source_of

    kwargs["source"] = source_of(files, kwargs["profile"], jobs or 1)
    err.print(f"adapting to the statistics of {kwargs['source'].n_files} of the recordings", highlight=False)


def _batch(
    items: list[tuple[Path, Path]],
    output_dir: Path,
    formats: list[str],
    kwargs: dict[str, Any],
    bar: bool,
    jobs: int | None,
    engine: str = "local",
    address: str | None = None,
) -> None:
    from ser_core.runs import batch

    with progress_bars(bar) as start:
        tick = start("analysing", len(items)) if start else None
        report = batch.run(items, output_dir, formats, kwargs, jobs, tick, engine, address)
    where = report.write()
    for failure in report.failures:
        err.print(f"[bold red]error:[/] {escape(failure['error'])}", highlight=False, soft_wrap=True)
    table = Table(title=f"ser analyze -> {output_dir}")
    for column in ("analysed", "no speech", "skipped (done before)", "failed", "audio", "wall"):
        table.add_column(column, justify="right")
    table.add_row(
        str(len(report.analysed)),
        str(sum(record.get("status") == "no_speech" for record in report.analysed)),
        str(len(report.skipped)),
        str(len(report.failures)),
        f"{report.audio_seconds / 60:.1f} min",
        f"{report.seconds:.1f} s",
    )
    err.print(table)
    err.print(f"run report: {where}", highlight=False)
    if report.interrupted:
        err.print("interrupted: run the same command again to analyse the rest", highlight=False)
        raise typer.Exit(130)
    if report.failures:
        raise typer.Exit(3)


