"""`ser train` and `ser evaluate`: fit a profile's model, score it, compare profiles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ser_core.cli.app import (
    AcceptAllOption,
    AcceptOption,
    ClassifierOption,
    DatasetOption,
    JobsOption,
    ProgressOption,
    ReportFormat,
    app,
    emit,
    err,
    fail,
    out,
    progress_bars,
    split_list,
    store_consent,
)
from ser_core.errors import SerError
from ser_core.models.classifiers import DEFAULT_KIND


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
        store_consent(profile, accept_restricted_backends, accept_all_restricted_backends)
        with progress_bars(progress) as bar:
            result = ser_core.train(
                dataset,
                profile=profile,
                labels=split_list(labels),
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
        raise fail(exc) from None
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
        raise fail(
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
        store_consent(profile, accept_restricted_backends, accept_all_restricted_backends)
        with progress_bars(progress) as bar:
            if model is not None:
                result = ser_core.evaluate_model(
                    model, dataset, profile=asked, jobs=jobs, report=report, progress=bar
                )
            else:
                result = ser_core.evaluate(
                    dataset,
                    profile=profile,
                    folds=folds,
                    labels=split_list(labels),
                    jobs=jobs,
                    report=report,
                    classifier=classifier,
                    progress=bar,
                )
    except SerError as exc:
        raise fail(exc) from None
    warning = _overlap_warning(result.get("training_overlap"))
    if warning:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    if format is ReportFormat.json:
        emit(json.dumps(result, indent=2, default=str), None)
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
            store_consent(name, *accept)
        thresholds = Thresholds.from_settings(**dict(zip(names, limits, strict=True)))
        with progress_bars(progress) as bar:
            result = compare(
                dataset, profiles, folds=folds, labels=split_list(labels), jobs=jobs, classifier=classifier,
                thresholds=thresholds, timeline_seconds=timeline_seconds, report=report, progress=bar,
            )
    except SerError as exc:
        raise fail(exc) from None
    if format is ReportFormat.json:
        emit(json.dumps(result, indent=2, default=str), None)
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


