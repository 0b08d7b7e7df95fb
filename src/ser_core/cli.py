"""`ser`: a thin typer CLI over the library API."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ser_core import __version__
from ser_core.errors import SerError
from ser_core.models.classifiers import DEFAULT_KIND

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Speech emotion recognition.")
out = Console()
err = Console(stderr=True)


class ReportFormat(StrEnum):
    json = "json"
    table = "table"


class Engine(StrEnum):
    local = "local"
    ray = "ray"


def _fail(exc: SerError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    return typer.Exit(exc.exit_code)


@contextlib.contextmanager
def _progress(enabled: bool) -> Iterator[Callable[[str, int], Callable[[int], None]] | None]:
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:

        def start(description: str, total: int) -> Callable[[int], None]:
            task = bar.add_task(description, total=total)
            return lambda n: bar.advance(task, n)

        yield start


def _emit(text: str, output: Path | None) -> None:
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


def _accept(profile: str | None, accept: bool, accept_all: bool) -> None:
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


ANALYZE_HELP = """What was said in FILE, and in which emotion: utterance label with probabilities, emotion
segments over the speech, the transcript with word timestamps, and the merged timeline.

Examples:

  ser analyze talk.wav

  ser analyze talk.mp3 --format table

  ser analyze talk.wav --format srt --output talk.srt

  ser analyze talk.wav --format html --output talk.html

  ser analyze interview.m4a --language de --whisper-model base

  ser analyze a.wav b.flac --no-transcript --format csv --output emotions.csv

  ser analyze calls/ --recursive --output-dir out -f json -f srt   (resumable batch + run report)

  ser analyze calls/ --output-dir out --engine ray --address auto   (batch on a Ray cluster)
"""


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
    }
    if output_dir is not None:
        try:
            _accept(profile, accept_restricted_backends, accept_all_restricted_backends)
            _adapt(adapt, files, kwargs, jobs)
            formats = _formats(format)
            _batch(items, output_dir, formats, kwargs, progress, jobs, engine.value, address)
        except SerError as exc:
            raise _fail(exc) from None
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
        _accept(profile, accept_restricted_backends, accept_all_restricted_backends)
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
        _emit(render(results, fmt, failures), output)
    except SerError as exc:
        raise _fail(exc) from None
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

    with _progress(bar) as start:
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


@app.command(help="Train a profile's classifier on labelled corpora and save the model artifact.")
def train(
    dataset: DatasetOption,
    profile: Annotated[str | None, typer.Option(help="Profile to train (default: SER_DEFAULT_PROFILE).")] = None,
    labels: Annotated[
        str | None, typer.Option(help="Comma-separated label subset, e.g. angry,happy,sad.")
    ] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Artifact path (default: models dir).")
    ] = None,
    jobs: JobsOption = 1,
    holdout: Annotated[float, typer.Option(help="Share of speakers held out for the report.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the held-out speaker draw.")] = 0,
    classifier: ClassifierOption = DEFAULT_KIND,
    augment: Annotated[
        int,
        typer.Option(
            help="Copies of each clip through random telephone/codec/noise/room channels "
            "(robust to such audio; needs ffmpeg, rooms need ser-core\\[augment])."
        ),
    ] = 0,
    crops: Annotated[
        int, typer.Option(help="Copies of random 1-2 s of each clip's speech (for short utterances).")
    ] = 0,
    balance_corpora: Annotated[
        bool, typer.Option(help="Every corpus weighs the same in the fit, whatever its size.")
    ] = False,
    corpus_norm: Annotated[
        bool,
        typer.Option(
            "--corpus-norm/--no-corpus-norm",
            help="Standardise each corpus's features by its own statistics (lets `analyze --adapt` "
            "standardise a batch by its own).",
        ),
    ] = True,
    progress: ProgressOption = True,
    accept_restricted_backends: AcceptOption = False,
    accept_all_restricted_backends: AcceptAllOption = False,
) -> None:
    import ser_core

    try:
        _accept(profile, accept_restricted_backends, accept_all_restricted_backends)
        with _progress(progress) as bar:
            result = ser_core.train(
                dataset,
                profile=profile,
                labels=_split(labels),
                out=out_path,
                jobs=jobs,
                holdout=holdout,
                seed=seed,
                classifier=classifier,
                progress=bar,
                augment=augment,
                balance_corpora=balance_corpora,
                crops=crops,
                corpus_norm=corpus_norm,
            )
    except SerError as exc:
        raise _fail(exc) from None
    heldout = result.report["heldout"]
    if heldout:
        err.print(
            f"held-out speakers: UAR {heldout['uar']:.3f}  WA {heldout['wa']:.3f}  "
            f"macro-F1 {heldout['macro_f1']:.3f} ({heldout['n_files']} files)"
        )
    calibration = result.report.get("calibration")
    if calibration:
        views = ", ".join(
            f"{name} {view['temperature']:.2f} (ECE {view['ece_raw']:.3f} -> {view['ece_scaled']:.3f})"
            for name, view in calibration["views"].items()
        )
        err.print(f"calibration: temperature {calibration['temperature']:.2f}; {views}", highlight=False)
        if calibration.get("adapted"):
            err.print(f"adapted head (--adapt): temperature {calibration['adapted']['temperature']:.2f}", highlight=False)
    for key, what in (("leave_one_corpus_out", "leave-one-corpus-out"), ("leave_one_corpus_out_adapted", "  adapted")):
        if result.report.get(key):
            cells = ", ".join(f"{name} {row['uar']:.3f}" for name, row in result.report[key].items())
            mean = sum(row["uar"] for row in result.report[key].values()) / len(result.report[key])
            err.print(f"{what} UAR: {cells}; mean {mean:.3f}", highlight=False)
    err.print(f"model: {result.path}\nreport: {result.report_path}")


@app.command(help="Speaker-independent evaluation (or scoring an existing model on another corpus).")
def evaluate(
    dataset: DatasetOption,
    profile: Annotated[
        list[str] | None,
        typer.Option(help="Profile to evaluate; give it twice or more to compare on the same folds."),
    ] = None,
    cv: Annotated[
        str, typer.Option(help="Cross-validation: 'speaker' (the only honest choice).")
    ] = "speaker",
    folds: Annotated[
        int | None, typer.Option(help="Speaker-grouped K folds instead of leave-one-speaker-out.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Score this model ('default' = shipped) instead of CV.")
    ] = None,
    labels: Annotated[str | None, typer.Option(help="Comma-separated label subset.")] = None,
    report: Annotated[Path | None, typer.Option(help="Write the JSON report here.")] = None,
    jobs: JobsOption = 1,
    format: Annotated[
        ReportFormat, typer.Option("--format", "-f", help="Terminal output.")
    ] = ReportFormat.table,
    classifier: ClassifierOption = DEFAULT_KIND,
    require_pass: Annotated[
        bool, typer.Option(help="Comparing: exit 1 unless every check of the quality gate passes.")
    ] = False,
    min_uar_delta: Annotated[float | None, typer.Option(help="Gate: least UAR gain over the first profile.")] = None,
    min_macro_f1_delta: Annotated[
        float | None, typer.Option(help="Gate: least macro-F1 gain over the first profile.")
    ] = None,
    max_segments_per_minute: Annotated[
        float | None, typer.Option(help="Gate: most timeline segments per minute of speech recording.")
    ] = None,
    min_median_segment_seconds: Annotated[
        float | None, typer.Option(help="Gate: shortest acceptable median segment length.")
    ] = None,
    timeline_seconds: Annotated[
        float, typer.Option(help="Comparing: length of each fold's long recording for timeline statistics.")
    ] = 120.0,
    progress: ProgressOption = True,
    accept_restricted_backends: AcceptOption = False,
    accept_all_restricted_backends: AcceptAllOption = False,
) -> None:
    import ser_core

    if cv != "speaker":
        raise _fail(
            SerError(f"--cv {cv!r} is not supported: only speaker-independent evaluation ('speaker')")
        )
    if model is not None and profile is not None and len(profile) > 1:
        raise typer.BadParameter("--model scores one model: give at most one --profile", param_hint="--profile")
    asked = profile[0] if profile else None  # scoring a model without --profile: the model's own
    from ser_core.settings import get_settings

    profiles = profile or [get_settings().default_profile]
    if len(profiles) > 1 and model is None:
        _compare(
            dataset, profiles, folds, labels, report, jobs, format, classifier, progress, require_pass,
            (min_uar_delta, min_macro_f1_delta, max_segments_per_minute, min_median_segment_seconds),
            timeline_seconds, (accept_restricted_backends, accept_all_restricted_backends),
        )
        return
    profile = profiles[0]
    try:
        _accept(profile, accept_restricted_backends, accept_all_restricted_backends)
        with _progress(progress) as bar:
            if model is not None:
                result = ser_core.evaluate_model(
                    model, dataset, profile=asked, jobs=jobs, report=report, progress=bar
                )
            else:
                result = ser_core.evaluate(
                    dataset,
                    profile=profile,
                    folds=folds,
                    labels=_split(labels),
                    jobs=jobs,
                    report=report,
                    classifier=classifier,
                    progress=bar,
                )
    except SerError as exc:
        raise _fail(exc) from None
    warning = _overlap_warning(result.get("training_overlap"))
    if warning:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    if format is ReportFormat.json:
        _emit(json.dumps(result, indent=2, default=str), None)
        return
    out.print(escape(_report_header(result)), highlight=False, soft_wrap=True)
    out.print(_report_table(result))


def _overlap_warning(overlap: dict[str, Any] | None) -> str | None:
    """One line when a scored model met speakers it was trained on: the numbers then flatter it."""
    if not overlap or not overlap.get("known") or not overlap["files"]:
        return None
    return (
        f"{overlap['speakers']} speaker(s) / {overlap['files']} file(s) ({overlap['share']:.0%} of the data) "
        "were in the model's training data: this is not a cross-corpus or speaker-independent score"
    )


def _compare(
    dataset: list[Path],
    profiles: list[str],
    folds: int | None,
    labels: str | None,
    report: Path | None,
    jobs: int,
    format: ReportFormat,
    classifier: str,
    progress: bool,
    require_pass: bool,
    limits: tuple[float | None, float | None, float | None, float | None],
    timeline_seconds: float,
    accept: tuple[bool, bool],
) -> None:
    from ser_core.training.compare import Thresholds, compare

    names = ("min_uar_delta", "min_macro_f1_delta", "max_segments_per_minute", "min_median_segment_seconds")
    try:
        for name in dict.fromkeys(profiles):
            _accept(name, *accept)
        thresholds = Thresholds.from_settings(**dict(zip(names, limits, strict=True)))
        with _progress(progress) as bar:
            result = compare(
                dataset, profiles, folds=folds, labels=_split(labels), jobs=jobs, classifier=classifier,
                thresholds=thresholds, timeline_seconds=timeline_seconds, report=report, progress=bar,
            )
    except SerError as exc:
        raise _fail(exc) from None
    if format is ReportFormat.json:
        _emit(json.dumps(result, indent=2, default=str), None)
    else:
        out.print(_compare_table(result))
    failed = [c for c in result["gate"]["checks"] if not c["passed"]]
    if require_pass and failed:
        what = "; ".join(f"{c['profile']} {c['check']} {c['value']:g} (limit {c['threshold']:g})" for c in failed)
        err.print(f"[bold red]quality gate failed:[/] {escape(what)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _compare_table(result: dict[str, Any]) -> Table:
    table = Table(title=f"profiles on the same folds ({result['cv']})")
    for column in ("profile", "UAR", "WA", "macro-F1", "dUAR", "dF1", "seg/min", "median seg s"):
        table.add_column(column, justify="left" if column == "profile" else "right")
    for row in result["profiles"]:
        delta = row.get("delta", {})
        table.add_row(
            row["profile"],
            f"{row['uar']:.3f}",
            f"{row['wa']:.3f}",
            f"{row['macro_f1']:.3f}",
            f"{delta['uar']:+.3f}" if delta else "-",
            f"{delta['macro_f1']:+.3f}" if delta else "-",
            f"{row['timeline']['segments_per_minute']:.2f}",
            f"{row['timeline']['median_segment_seconds']:.2f}",
        )
    gate = "passed" if result["gate"]["passed"] else "failed"
    table.caption = f"quality gate: {gate} ({len(result['gate']['checks'])} checks)"
    return table


def _report_header(result: dict[str, Any]) -> str:
    """What was evaluated: the model file (scoring a model) and the profile, so a report can never
    be mistaken for another model's."""
    if "model" in result:
        return f"model {result['model']} (profile {result['profile']})"
    return f"profile {result['profile']} ({result.get('backend_id', '?')} {result.get('backend_model_id', '')})"


def _report_table(result: dict[str, Any]) -> Table:
    title = f"UAR {result['uar']:.3f}   WA {result['wa']:.3f}   macro-F1 {result['macro_f1']:.3f}   ({result['n_files']} files"
    title += f", {result['cv']})" if "cv" in result else ")"
    labels = result["labels"]
    table = Table(title=title)
    overlap = result.get("training_overlap")
    if overlap is not None and not overlap["known"]:
        table.caption = "training speakers: unknown (the model does not record them)"
    elif overlap is not None:
        table.caption = (
            f"training speakers among the scored: {overlap['speakers']} ({overlap['files']} files, "
            f"{overlap['share']:.0%})"
        )
    table.add_column("true \\ predicted")
    for label in labels:
        table.add_column(label[:7], justify="right")
    table.add_column("recall", justify="right")
    table.add_column("F1", justify="right")
    for label, row in zip(labels, result["confusion"], strict=True):
        scores = result["per_class"][label]
        table.add_row(label, *map(str, row), f"{scores['recall']:.3f}", f"{scores['f1']:.3f}")
    return table


@app.command(help="List installed plugins: name, version, hooks and the profiles they serve.")
def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    from ser_core.plugins.lookup import all_profiles
    from ser_core.plugins.manager import plugin_infos, skipped_plugins

    infos = plugin_infos()
    skipped = [{"name": s.name, "reason": s.reason} for s in skipped_plugins()]
    if as_json:
        _emit(json.dumps({"plugins": infos, "skipped": skipped}, indent=2), None)
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
        _emit(json.dumps({"ok": healthy(checks), "checks": [c.as_dict() for c in checks]}, indent=2), None)
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
        raise _fail(exc) from None
    out.print(f"revoked: {', '.join(removed)}" if removed else "nothing to revoke", highlight=False)


def _split(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


def main() -> None:
    app()
