"""The built-in output formats, registered through the same hook as a plugin's."""

from __future__ import annotations

from ser_core.contract.hookspecs import hookimpl
from ser_core.pipeline import exports


@hookimpl
def ser_register_exporters(register):
    register("json", exports.json_text, extension=".json", description="the whole result (one, or results and failures)")
    register("csv", lambda results, failures: exports.timeline_csv(results), extension=".csv", description="timeline rows of every input")
    register("srt", lambda results, failures: exports.subtitles(results[0], vtt=False), extension=".srt", single_file=True, description="subtitles, one cue per timeline row")
    register("vtt", lambda results, failures: exports.subtitles(results[0], vtt=True), extension=".vtt", single_file=True, description="WebVTT subtitles with warnings as NOTEs")
    register("table", lambda results, failures: exports.table(results), extension=".txt", description="a terminal table")
    register("html", lambda results, failures: exports.page(results[0]), extension=".html", single_file=True, description="a page with a picture of the timeline")
