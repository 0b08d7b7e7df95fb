"""Results as files people use: JSON, CSV, SRT, WebVTT, a terminal table, and an HTML page with a
picture of the timeline (inline SVG, no scripts, no CDN: it opens offline).

Formats are registered by plugins (`ser_register_exporters`); these six by the built-in plugin
`ser_core.builtin_plugins.exporters`, through the same hook."""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ser_core.contract.results import AnalysisResult, TimelineRow
from ser_core.errors import OutputError

Failures = Sequence[dict[str, str]]


@dataclass(frozen=True)
class Exporter:
    """An output format: `render(results, failures)` gives the text of one output."""

    name: str
    render: Callable[[Sequence[AnalysisResult], Failures], str]
    extension: str = ".txt"
    #: Takes exactly one result (a subtitle file, a page): batches write one per input.
    single_file: bool = False
    description: str = ""


def exporters() -> dict[str, Exporter]:
    """Every registered output format, by name."""
    from ser_core.plugins.registries import entries

    return entries("ser_register_exporters", Exporter)


def exporter(name: str) -> Exporter:
    """The format called `name`, or a one-line error listing the known ones."""
    known = exporters()
    if name not in known:
        raise OutputError(f"unknown format {name!r}; choose one of: {', '.join(known)}")
    return known[name]


COLOURS = {
    "neutral": "#9e9e9e",
    "calm": "#80cbc4",
    "happy": "#fbc02d",
    "sad": "#1e88e5",
    "angry": "#e53935",
    "fearful": "#8e24aa",
    "disgust": "#43a047",
    "surprised": "#fb8c00",
    "boredom": "#8d6e63",
}


def render(results: Sequence[AnalysisResult], fmt: str, failures: Failures = ()) -> str:
    """One text for all `results` in format `fmt` (single-file formats take exactly one result)."""
    found = exporter(fmt)
    if found.single_file and len(results) != 1:
        raise ValueError(f"--format {fmt} writes one file per input; analyze one file at a time")
    return found.render(results, failures)


def json_text(results: Sequence[AnalysisResult], failures: Failures = ()) -> str:
    """One result as it is; several (or any failure) as {"results": [...], "failures": [...]}."""
    if len(results) == 1 and not failures:
        return results[0].model_dump_json(indent=2) + "\n"
    payload = {"results": [r.model_dump(mode="json") for r in results], "failures": list(failures)}
    return json.dumps(payload, indent=2) + "\n"


def status_note(result: AnalysisResult) -> str | None:
    """What a reader must know before trusting the label: no speech, or too little of it."""
    if result.status == "no_speech":
        return "no speech"
    if result.status == "too_short":
        return f"too short: {result.speech_seconds:.2f} s of speech"
    return None


def overall_text(result: AnalysisResult) -> str:
    """The overall result in one line: `angry (0.74)`, `no speech`, `sad (0.40), too short: ...`."""
    if result.label is None:
        return status_note(result) or "no label"
    note = status_note(result)
    sure = ", uncertain" if result.uncertain else ""
    return f"{result.label} ({result.confidence or 0.0:.2f}{sure})" + (f", {note}" if note else "")


def speech_shares(result: AnalysisResult) -> str:
    """`of the speech: neutral 60%, angry 40%`: what the label is the largest of."""
    held = [(k, v) for k, v in sorted(result.shares.items(), key=lambda kv: -kv[1]) if v > 0]
    return "of the speech: " + ", ".join(f"{k} {v:.0%}" for k, v in held) if held else ""


def row_text(result: AnalysisResult, row: TimelineRow) -> str:
    """A row's text; speech in which the transcriber heard no words says so."""
    return "(no words)" if result.transcriber and not row.words else row.text


def timeline_csv(results: Sequence[AnalysisResult]) -> str:
    """One line per timeline row; a file without speech gets one line with its status only."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["path", "status", "start", "end", "emotion", "confidence", "uncertain", "words", "text", "speaker"]
    writer.writerow(header)
    for result in results:
        if not result.timeline:
            writer.writerow([result.path, result.status] + [""] * (len(header) - 2))
        for row in result.timeline:
            writer.writerow(
                [
                    result.path,
                    result.status,
                    f"{row.start:.3f}",
                    f"{row.end:.3f}",
                    row.emotion or "",
                    _num(row.confidence),
                    "" if row.emotion is None else str(row.uncertain).lower(),
                    row.words,
                    row.text,
                    row.speaker or "",
                ]
            )
    return buffer.getvalue()


def words_csv(result: AnalysisResult) -> str:
    """The transcript, one word per row, with the emotion of its audio (`--save-transcript`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["start", "end", "text", "probability", "emotion", "confidence", "speaker"])
    for w in result.words:
        writer.writerow(
            [
                f"{w.start:.3f}",
                f"{w.end:.3f}",
                w.text,
                _num(w.probability),
                w.emotion or "",
                _num(w.confidence),
                w.speaker or "",
            ]
        )
    return buffer.getvalue()


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _stamp(seconds: float, separator: str) -> str:
    ms = round(seconds * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def cue_text(row: TimelineRow, text: str | None = None, note: str | None = None) -> str:
    """`[S1] [emotion confidence] text` (the speaker only when speakers are on); `uncertain` and
    `note` (e.g. too short) join the tag."""
    tag = f"{row.emotion or 'no emotion'}{'' if row.confidence is None else f' {row.confidence:.2f}'}"
    tag += ", uncertain" if row.uncertain else ""
    tag += f", {note}" if note else ""
    who = f"[{row.speaker}] " if row.speaker else ""
    return f"{who}[{tag}] {row.text if text is None else text}".strip()


def speaker_lines(result: AnalysisResult) -> list[str]:
    """One line per speaker: `S1: 48% of the speech (41.0 s), angry (0.62); first third neutral,
    last third angry; strongest: angry 0.91 at 12.0 s`."""
    lines = []
    for s in result.speakers:
        mood = "no label" if s.label is None else f"{s.label} ({s.confidence or 0.0:.2f}{', uncertain' if s.uncertain else ''})"
        change = f"; first third {s.early}, last third {s.late}" if s.early and s.late and s.early != s.late else ""
        strongest = ", ".join(f"{m.emotion} {m.confidence:.2f} at {m.start:.1f} s" for m in s.moments)
        lines.append(
            f"{s.speaker}: {s.share:.0%} of the speech ({s.talk_seconds:.1f} s), {mood}{change}"
            + (f"; strongest: {strongest}" if strongest else "")
        )
    return lines


def subtitles(result: AnalysisResult, vtt: bool) -> str:
    """SRT or WebVTT: one cue per timeline row, its text prefixed with `[emotion confidence]`; a
    file without speech gets one cue over its whole length saying so."""
    out = ["WEBVTT", ""] if vtt else []
    if vtt:
        out += [f"NOTE warning: {' '.join(w.replace('-->', '->').split())}\n" for w in result.warnings]
    note = status_note(result)
    if not result.timeline:
        rows = [TimelineRow(start=0.0, end=result.duration, emotion=None, confidence=None, text="")]
        texts = [f"[{note or 'no emotion'}]"]
    else:
        rows = result.timeline
        texts = [cue_text(row, row_text(result, row), note) for row in rows]
    for number, (row, text) in enumerate(zip(rows, texts, strict=True), 1):
        if not vtt:
            out.append(str(number))
        sep = "." if vtt else ","
        out.append(f"{_stamp(row.start, sep)} --> {_stamp(max(row.end, row.start + 0.001), sep)}")
        # A blank line ends a cue, and "-->" is not allowed inside WebVTT cue text.
        out.append(" ".join(text.replace("-->", "->").split()))
        out.append("")
    return "\n".join(out) + ("\n" if out else "")


#: How the table and the page mark a label that is more likely wrong than right.
UNCERTAIN_KEY = "? uncertain: more likely wrong than right"


def table(results: Sequence[AnalysisResult]) -> str:
    from rich.console import Console
    from rich.table import Table

    console = Console(record=True, width=120, file=io.StringIO())
    for result in results:
        shares = speech_shares(result)
        title = f"{result.path}: {overall_text(result)}" + (f"; {shares}" if shares else "")
        caption = "\n".join(
            speaker_lines(result)
            + ([UNCERTAIN_KEY] if any(row.uncertain for row in result.timeline) else [])
            + [f"warning: {w}" for w in result.warnings]
        )
        grid = Table(title=title, title_justify="left", caption=caption or None, caption_justify="left")
        who = bool(result.turns)
        for column in ("start", "end", "speaker", "emotion", "confidence", "text"):
            if column != "speaker" or who:
                grid.add_column(column, justify="right" if column in {"start", "end", "confidence"} else "left")
        for row in result.timeline:
            cells = [f"{row.start:.2f}", f"{row.end:.2f}"] + ([row.speaker or "-"] if who else [])
            grid.add_row(
                *cells,
                row.emotion or "-",
                ("" if row.confidence is None else f"{row.confidence:.2f}") + ("?" if row.uncertain else ""),
                row_text(result, row),
            )
        console.print(grid)
    return console.export_text()


# --- the HTML page ---------------------------------------------------------------------------------

PX_PER_SECOND = 40
WAVE_TOP, WAVE_HEIGHT = 10, 80
BAND_TOP, BAND_HEIGHT = 100, 40
WORDS_TOP = 160
LANE_GAP = 16  # between speakers' lanes


UNCERTAIN_ROW = ' class="uncertain"'


def page(result: AnalysisResult) -> str:
    """A self-contained HTML page: the timeline picture, then the timeline as a table."""
    e = html.escape
    labels = sorted({s.label for s in result.segments} | set(result.probabilities), key=list(COLOURS).index)
    legend = "".join(
        f'<span class="key"><i style="background:{COLOURS.get(label, "#607d8b")}"></i>{e(label)}</span>'
        for label in labels
    )
    who = bool(result.turns)
    rows = "".join(
        f"<tr{UNCERTAIN_ROW if r.uncertain else ''}><td>{r.start:.2f}</td><td>{r.end:.2f}</td>"
        + (f"<td>{e(r.speaker or '-')}</td>" if who else "")
        + f"<td>{e(r.emotion or '-')}</td><td>{_num(r.confidence)}{' uncertain' if r.uncertain else ''}</td>"
        f"<td>{e(row_text(result, r))}</td></tr>"
        for r in result.timeline
    )
    warnings = "".join(f'<p class="warning">Warning: {e(w)}.</p>' for w in result.warnings)
    shares = e(speech_shares(result))
    probs = ", ".join(
        f"{e(k)} {v:.2f}" for k, v in sorted(result.probabilities.items(), key=lambda kv: -kv[1])
    )
    summary = f"{shares}; mean probabilities: {probs}" if shares else ""
    speakers = "".join(f"<li>{e(line)}</li>" for line in speaker_lines(result))
    speakers = f'<ul class="speakers">{speakers}</ul>' if speakers else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{e(result.path)}: emotion timeline</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
.scroll {{ overflow-x: auto; border: 1px solid #ddd; }}
.key {{ margin-right: 1em; }} .key i {{ display: inline-block; width: 1em; height: 1em; margin-right: .3em; vertical-align: middle; }}
table {{ border-collapse: collapse; margin-top: 1em; }} td, th {{ border-bottom: 1px solid #eee; padding: .2em .6em; text-align: left; }}
svg text {{ font-size: 11px; }}
tr.uncertain td {{ color: #777; font-style: italic; }} .warning {{ color: #8a5300; }}
</style></head><body>
<h1>{e(result.path)}</h1>
{warnings}
<p>Overall: <b>{e(overall_text(result))}</b>{f" &mdash; {summary}" if summary else ""}.<br>
{result.duration:.1f} s, profile {e(result.profile)} ({e(result.backend_id)}: {e(result.backend_model_id)}){
        f", transcript by {e(result.transcriber)}, language {e(result.language or '?')}"
        if result.transcriber
        else ""
    }.</p>
<p>{legend}<span class="key">band height and opacity: confidence; hatched: uncertain (more likely wrong than right)</span></p>
<div class="scroll">{timeline_svg(result)}</div>
{speakers}
<table><thead><tr><th>start</th><th>end</th>{"<th>speaker</th>" if who else ""}<th>emotion</th><th>confidence</th><th>text</th></tr></thead>
<tbody>{rows}</tbody></table>
<p><small>ser_core {e(result.ser_core_version)}</small></p>
</body></html>
"""


def timeline_svg(result: AnalysisResult) -> str:
    """The picture: energy envelope, emotion bands (opacity = confidence) in one lane, or one lane
    per speaker when speakers are on, and the words under them."""
    e = html.escape
    lanes = [s.speaker for s in result.speakers] or [None]
    lane_step = BAND_HEIGHT + LANE_GAP
    words_top = WORDS_TOP + lane_step * (len(lanes) - 1)
    width = max(600, round(result.duration * PX_PER_SECOND)) + 20
    x = lambda t: 10 + t * PX_PER_SECOND  # noqa: E731
    top = lambda speaker: BAND_TOP + lane_step * lanes.index(speaker if speaker in lanes else lanes[0])  # noqa: E731
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{words_top + 60}" role="img">'
        '<defs><pattern id="uncertain" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="3" height="6" fill="#fff" fill-opacity="0.6"/></pattern></defs>'
    ]
    if result.envelope:
        step = 1.0 / result.envelope_rate
        points = " ".join(
            f"{x(i * step):.1f},{WAVE_TOP + WAVE_HEIGHT * (1 - v) / 2:.1f}"
            for i, v in enumerate(result.envelope)
        )
        lower = " ".join(
            f"{x(i * step):.1f},{WAVE_TOP + WAVE_HEIGHT * (1 + v) / 2:.1f}"
            for i, v in reversed(list(enumerate(result.envelope)))
        )
        parts.append(f'<polygon points="{points} {lower}" fill="#90a4ae"/>')
    spoken = [(t.start, t.end, t.speaker) for t in result.turns] or [(a, b, None) for a, b in result.speech]
    for start, end, speaker in spoken:  # under each lane: when its speaker talks
        parts.append(
            f'<rect x="{x(start):.1f}" y="{top(speaker) + BAND_HEIGHT + 2}" width="{(end - start) * PX_PER_SECOND:.1f}" height="3" fill="#455a64"/>'
        )
    for speaker in lanes if result.turns else []:
        parts.append(f'<text class="lane" x="2" y="{top(speaker) + 11}" fill="#333">{e(speaker or "")}</text>')
    for s in result.segments:
        height = BAND_HEIGHT * max(s.confidence, 0.1)
        y = top(s.speaker) + BAND_HEIGHT - height
        who = f"{e(s.speaker)}, " if s.speaker else ""
        lane = f' data-speaker="{e(s.speaker)}"' if s.speaker else ""
        parts.append(
            f'<rect class="segment" data-emotion="{e(s.label)}"{lane} '
            f'x="{x(s.start):.1f}" y="{y:.1f}" '
            f'width="{(s.end - s.start) * PX_PER_SECOND:.1f}" height="{height:.1f}" fill="{COLOURS.get(s.label, "#607d8b")}" '
            f'fill-opacity="{0.35 + 0.65 * s.confidence:.2f}"><title>{s.start:.2f}-{s.end:.2f} s: {who}{e(s.label)} '
            f"({s.confidence:.2f}{', uncertain' if s.uncertain else ''})</title></rect>"
        )
        if s.uncertain:
            parts.append(
                f'<rect class="uncertain" x="{x(s.start):.1f}" y="{y:.1f}" '
                f'width="{(s.end - s.start) * PX_PER_SECOND:.1f}" height="{height:.1f}" fill="url(#uncertain)"/>'
            )
    lines = word_lines([(x(w.start), w.text) for w in result.words])
    for w, line in zip(result.words, lines, strict=True):
        colour = COLOURS.get(w.emotion or "", "#222")
        parts.append(f'<text x="{x(w.start):.1f}" y="{words_top + WORD_LINE * line}" fill="{colour}">{e(w.text)}</text>')
    ticks = words_top + WORD_LINE * max(lines, default=0) + 25
    for t in range(0, int(result.duration) + 1, 5 if result.duration < 120 else 30):
        parts.append(f'<text x="{x(t):.1f}" y="{ticks}" fill="#777">{t}s</text>')
    parts.append("</svg>")
    parts[0] = parts[0].replace(f'height="{words_top + 60}"', f'height="{ticks + 10}"', 1)
    return "".join(parts)


#: Vertical step between word lines, and the width the picture gives one character (11 px text).
WORD_LINE, CHAR_PX = 14, 6.5


def word_lines(words: Sequence[tuple[float, str]]) -> list[int]:
    """A line for each (x, text) so that no two words on one line overlap: each goes on the first
    line whose last word ends before it starts, or a new line."""
    ends: list[float] = []
    out = []
    for x, text in words:
        line = next((i for i, end in enumerate(ends) if end <= x), len(ends))
        if line == len(ends):
            ends.append(0.0)
        ends[line] = x + CHAR_PX * len(text) + 4
        out.append(line)
    return out
