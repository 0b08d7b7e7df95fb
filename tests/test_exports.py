"""Every export format, parsed back."""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser

import pytest

from ser_core.contract.results import AnalysisResult, Segment, Sentence, TimelineRow, Word
from ser_core.pipeline.exports import render, words_csv


@pytest.fixture
def result() -> AnalysisResult:
    segments = [
        Segment(start=0.5, end=2.0, label="angry", confidence=0.8, probabilities={"angry": 0.8, "sad": 0.2}),
        Segment(start=2.0, end=3.5, label="sad", confidence=0.7, probabilities={"angry": 0.3, "sad": 0.7}),
    ]
    words = [
        Word(start=0.6, end=1.0, text="Stop", probability=0.9, emotion="angry", confidence=0.8),
        Word(start=1.1, end=1.6, text="it,", probability=0.9, emotion="angry", confidence=0.8),
        Word(start=2.2, end=3.1, text='"please" --> <now>', probability=0.8, emotion="sad", confidence=0.7),
    ]
    return AnalysisResult(
        path="talk.wav", profile="fast", backend_id="handcrafted", backend_model_id="handcrafted-v2",
        model="m.npz", duration=3661.5, label="angry", confidence=0.6, probabilities={"angry": 0.6, "sad": 0.4},
        speech=[(0.5, 3.5)], segments=segments, transcriber="faster-whisper base", language="en", words=words,
        sentences=[Sentence(start=0.6, end=3.1, text="Stop it, please", emotion="angry", confidence=0.6,
                            probabilities={"angry": 0.6, "sad": 0.4})],
        timeline=[
            TimelineRow(start=0.6, end=1.6, emotion="angry", confidence=0.8, text="Stop it,", words=2),
            TimelineRow(start=2.2, end=3661.25, emotion="sad", confidence=0.7, text='"please" --> <now>', words=1),
        ],
        ser_core_version="0.1.0", envelope=[0.0, 0.5, 1.0, 0.2], envelope_rate=2.0,
    )  # fmt: skip


def test_json_round_trips(result):
    parsed = json.loads(render([result], "json"))
    assert AnalysisResult.model_validate(parsed).timeline == result.timeline
    assert "envelope" not in parsed  # picture data stays out of the JSON
    batch = json.loads(render([result, result], "json", failures=[{"path": "bad.wav", "error": "x"}]))
    assert len(batch["results"]) == 2 and batch["failures"][0]["path"] == "bad.wav"


def test_csv_one_row_per_timeline_entry(result):
    rows = list(csv.DictReader(io.StringIO(render([result], "csv"))))
    assert [(r["emotion"], r["text"]) for r in rows] == [("angry", "Stop it,"), ("sad", '"please" --> <now>')]
    assert float(rows[1]["end"]) == 3661.25 and rows[0]["path"] == "talk.wav"
    words = list(csv.DictReader(io.StringIO(words_csv(result))))
    assert [w["text"] for w in words] == ["Stop", "it,", '"please" --> <now>'] and words[0][
        "emotion"
    ] == "angry"


SRT_CUE = re.compile(r"(\d+)\n(\d\d:\d\d:\d\d,\d\d\d) --> (\d\d:\d\d:\d\d,\d\d\d)\n([^\n]+)\n")
VTT_CUE = re.compile(r"(\d\d:\d\d:\d\d\.\d\d\d) --> (\d\d:\d\d:\d\d\.\d\d\d)\n([^\n]+)\n")


def test_srt(result):
    text = render([result], "srt")
    cues = SRT_CUE.findall(text)
    assert "".join(m.group(0) + "\n" for m in SRT_CUE.finditer(text)) == text  # nothing but cues
    assert [c[0] for c in cues] == ["1", "2"]
    assert cues[0][1:] == ("00:00:00,600", "00:00:01,600", "[angry 0.80] Stop it,")
    assert cues[1][2] == "01:01:01,250" and cues[1][3] == '[sad 0.70] "please" -> <now>'


def test_vtt(result):
    text = render([result], "vtt")
    assert text.startswith("WEBVTT\n\n")
    cues = VTT_CUE.findall(text)
    assert cues[0] == ("00:00:00.600", "00:00:01.600", "[angry 0.80] Stop it,")
    assert "-->" not in cues[1][2]  # not allowed in WebVTT cue text


def test_table(result):
    text = render([result], "table")
    assert "talk.wav: angry (0.60)" in text and "Stop it," in text and "sad" in text


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_self_contained_and_shows_the_segments(result):
    page = render([result], "html")
    parser = _Collect()
    parser.feed(page)
    bands = [attrs for tag, attrs in parser.tags if tag == "rect" and attrs.get("class") == "segment"]
    assert [b["data-emotion"] for b in bands] == ["angry", "sad"]
    assert any(tag == "polygon" for tag, _ in parser.tags)  # the loudness envelope
    text = "".join(parser.text)
    assert "Stop" in text and '"please" --> <now>' in text  # words, escaped in the markup
    assert not any(tag in {"script", "link"} for tag, _ in parser.tags)
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page


def test_single_file_formats_refuse_several_results(result):
    with pytest.raises(ValueError, match="one file"):
        render([result, result], "srt")


def test_speech_without_words_is_in_every_format(result):
    """A stretch of speech the transcriber heard nothing in is a row of its own everywhere,
    marked as such; without a transcript at all, rows carry no such marker."""
    silent_row = TimelineRow(start=4.0, end=30.0, emotion="angry", confidence=0.99, text="", words=0)
    heard = result.model_copy(update={"timeline": [result.timeline[0], silent_row]})
    rows = list(csv.DictReader(io.StringIO(render([heard], "csv"))))
    assert [(r["start"], r["end"], r["emotion"], r["words"], r["text"]) for r in rows[1:]] == [
        ("4.000", "30.000", "angry", "0", "")
    ]
    assert SRT_CUE.findall(render([heard], "srt"))[1][1:] == (
        "00:00:04,000",
        "00:00:30,000",
        "[angry 0.99] (no words)",
    )
    assert VTT_CUE.findall(render([heard], "vtt"))[1][2] == "[angry 0.99] (no words)"
    assert "(no words)" in render([heard], "table")
    assert "<td>4.00</td><td>30.00</td><td>angry</td><td>0.9900</td><td>(no words)</td>" in render(
        [heard], "html"
    )
    untranscribed = heard.model_copy(update={"transcriber": None})
    assert SRT_CUE.findall(render([untranscribed], "srt"))[1][3] == "[angry 0.99]"


def test_table_and_page_say_what_the_label_is_the_largest_of(result):
    shared = result.model_copy(update={"shares": {"angry": 0.75, "sad": 0.25}})
    assert "talk.wav: angry (0.60); of the speech: angry 75%, sad 25%" in render([shared], "table")
    assert "of the speech: angry 75%, sad 25%; mean probabilities: angry 0.60, sad 0.40" in render(
        [shared], "html"
    )


def test_picture_words_never_overlap(result):
    """Short words close together (fast speech) each get room on some line of the picture."""
    from ser_core.pipeline.exports import CHAR_PX

    texts = ["I", "said", "no", "absolutely", "not", "today", "ok", "fine", "whatever", "you", "want"]
    crowded = [Word(start=0.1 * i, end=0.1 * i + 0.1, text=t, probability=0.9) for i, t in enumerate(texts)]
    page = render([result.model_copy(update={"words": crowded})], "html")
    placed = [
        (float(x), float(y), html_text)
        for x, y, html_text in re.findall(r'<text x="([\d.]+)" y="(\d+)" fill="#222">([^<]*)</text>', page)
    ]
    assert [text for _, _, text in placed] == texts
    for i, (x1, y1, t1) in enumerate(placed):
        for x2, y2, _ in placed[i + 1 :]:
            if y1 == y2:
                assert x2 >= x1 + CHAR_PX * len(t1), (t1, x1, x2)
    height = int(re.search(r'<svg[^>]* height="(\d+)"', page).group(1))
    assert height > max(y for _, y, _ in placed)


def test_table_rounds_confidence_as_the_subtitles_do(result):
    row = result.timeline[0].model_copy(update={"confidence": 0.6755})
    rounded = result.model_copy(update={"timeline": [row]})
    assert "0.68" in render([rounded], "table") and "[angry 0.68]" in render([rounded], "srt")
