"""Speakers: the built-in GE2E diarizer on espeak-ng voices, turns, summaries, and every format."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

import ser_core
from ser_core.builtin_plugins import speakers as ge2e
from ser_core.cli import app
from ser_core.contract.results import Segment, Turn
from ser_core.errors import DiarizerError
from ser_core.pipeline.audio import load_audio
from ser_core.pipeline.exports import render
from ser_core.pipeline.speakers import find_turns, parse_speakers, split_segments, summaries
from ser_core.settings import get_settings

from .conftest import SR, espeak

LINES = (
    "The weather today is quite pleasant and I will go for a long walk in the park.",
    "I cannot believe you did that again, this is the third time this week!",
    "Please send me the report before the meeting starts tomorrow morning.",
)
#: Two voices that differ as two people do: a low male and a higher female espeak-ng voice.
VOICES = {"A": ("en-us+m1", 20, 150), "B": ("en-us+f5", 90, 170)}


def _utterance(root, voice_key: str, i: int) -> np.ndarray:
    name, pitch, speed = VOICES[voice_key]
    path = root / f"{voice_key}{i}.wav"
    return load_audio(espeak(LINES[i % len(LINES)], path, pitch=pitch, speed=speed, voice_name=name))


def _conversation(root, order: str, name: str) -> tuple[str, list[tuple[float, float, str]]]:
    """Utterances by the voices in `order` ("ABAB"), 0.6 s apart; and who spoke when."""
    parts, truth, t = [], [], 0.3
    parts.append(np.zeros(int(0.3 * SR), np.float32))
    for i, who in enumerate(order):
        speech = _utterance(root, who, i)
        parts += [speech, np.zeros(int(0.6 * SR), np.float32)]
        truth.append((t, t + len(speech) / SR, who))
        t += len(speech) / SR + 0.6
    path = root / name
    sf.write(path, np.concatenate(parts), SR)
    return str(path), truth


@pytest.fixture(scope="module")
def dialogue(tmp_path_factory):
    return _conversation(tmp_path_factory.mktemp("dialogue"), "ABAB", "dialogue.wav")


@pytest.fixture(scope="module")
def monologue(tmp_path_factory):
    return _conversation(tmp_path_factory.mktemp("monologue"), "AAA", "monologue.wav")


def _speaker_of(result, start: float, end: float) -> str:
    held: dict[str, float] = {}
    for turn in result.turns:
        held[turn.speaker] = held.get(turn.speaker, 0.0) + max(0.0, min(end, turn.end) - max(start, turn.start))
    return max(held, key=held.get)


def test_two_voices_give_two_speakers(dialogue):
    path, truth = dialogue
    result = ser_core.analyze(path, speakers="auto")
    assert result.diarizer == "ge2e resemblyzer-ge2e"
    assert [s.speaker for s in result.speakers] == ["S1", "S2"]
    found = [_speaker_of(result, start, end) for start, end, _ in truth]
    assert found == ["S1", "S2", "S1", "S2"]  # A B A B, named in order of first appearance
    # Every segment and timeline row has the speaker of the turn it lies in.
    assert {s.speaker for s in result.segments} == {"S1", "S2"}
    for row in result.timeline:
        assert row.speaker == _speaker_of(result, row.start, row.end)
    talk = {s.speaker: s.talk_seconds for s in result.speakers}
    for name in ("S1", "S2"):
        spoken = sum(end - start for (start, end, who), got in zip(truth, found, strict=True) if got == name)
        assert talk[name] == pytest.approx(spoken, abs=1.0)
    assert sum(s.share for s in result.speakers) == pytest.approx(1.0, abs=1e-3)


def test_one_voice_gives_one_speaker(monologue):
    path, _ = monologue
    result = ser_core.analyze(path, speakers="auto")
    assert {t.speaker for t in result.turns} == {"S1"}
    assert [s.speaker for s in result.speakers] == ["S1"]
    assert result.speakers[0].share == 1.0


def test_a_given_count_is_kept(dialogue, monologue):
    assert len(ser_core.analyze(dialogue[0], speakers=1).speakers) == 1
    assert len(ser_core.analyze(monologue[0], speakers=2).speakers) == 2
    # Given the right count, the same answer as estimating it.
    auto = ser_core.analyze(dialogue[0], speakers="auto")
    assert ser_core.analyze(dialogue[0], speakers="2").turns == auto.turns


def test_speakers_are_off_by_default(dialogue):
    result = ser_core.analyze(dialogue[0])
    assert result.diarizer is None and result.turns == [] and result.speakers == []
    assert all(s.speaker is None for s in result.segments)


def test_the_setting_turns_them_on(dialogue, monkeypatch):
    monkeypatch.setenv("SER_SPEAKERS", "auto")
    get_settings.cache_clear()
    assert len(ser_core.analyze(dialogue[0]).speakers) == 2


def test_ids_hold_across_pieces(tmp_path, monkeypatch):
    """Pieces are analysed one by one; the speaker ids come from clustering the whole file."""
    path, truth = _conversation(tmp_path, "ABABBA", "long.wav")
    monkeypatch.setenv("SER_PIECE_SECONDS", "10")
    get_settings.cache_clear()
    result = ser_core.analyze(path, speakers="auto")
    found = [_speaker_of(result, start, end) for start, end, _ in truth]
    assert found == ["S1", "S2", "S1", "S2", "S2", "S1"]


def test_speaker_in_every_format(dialogue):
    path, _ = dialogue
    result = ser_core.analyze(path, speakers="auto", transcript=True)
    assert result.words and {w.speaker for w in result.words} == {"S1", "S2"}
    assert {s.speaker for s in result.sentences} == {"S1", "S2"}
    data = json.loads(render([result], "json"))
    assert {"S1", "S2"} == {row["speaker"] for row in data["timeline"]} == {t["speaker"] for t in data["turns"]}
    assert [s["speaker"] for s in data["speakers"]] == ["S1", "S2"]
    rows = list(csv.DictReader(io.StringIO(render([result], "csv"))))
    assert [r["speaker"] for r in rows] == [r.speaker for r in result.timeline]
    for fmt in ("srt", "vtt"):
        cues = [line for line in render([result], fmt).splitlines() if line.startswith("[")]
        assert [c[:4] for c in cues] == [f"[{r.speaker}]" for r in result.timeline]
    table = render([result], "table")
    assert "speaker" in table and "S1: " in table and "S2: " in table
    page = render([result], "html")
    assert page.count('class="lane"') == 2  # one lane per speaker, S2's below S1's
    bands = re.findall(r'class="segment" data-emotion="\w+" data-speaker="(S\d)" x="[\d.]+" y="([\d.]+)"', page)
    assert len(bands) == len(result.segments)
    lowest = {who: max(float(y) for w, y in bands if w == who) for who in ("S1", "S2")}
    highest = {who: min(float(y) for w, y in bands if w == who) for who in ("S1", "S2")}
    assert lowest["S1"] < highest["S2"]


def test_cli_speakers(dialogue, tmp_path):
    out = tmp_path / "talk.csv"
    run = CliRunner().invoke(app, ["analyze", dialogue[0], "--speakers", "2", "-f", "csv", "-o", str(out)])
    assert run.exit_code == 0, run.output
    assert {r["speaker"] for r in csv.DictReader(out.open())} == {"S1", "S2"}
    bad = CliRunner().invoke(app, ["analyze", dialogue[0], "--speakers", "two"])
    assert bad.exit_code == 2 and "--speakers" in bad.output


def test_unknown_diarizer_is_one_line(dialogue, monkeypatch, tmp_path):
    monkeypatch.setenv("SER_DIARIZER", "pyannote")
    get_settings.cache_clear()
    with pytest.raises(DiarizerError, match=r"diarizer 'pyannote' is not installed .*ge2e"):
        ser_core.analyze(dialogue[0], speakers="auto")
    out = tmp_path / "x.json"
    run = CliRunner().invoke(app, ["analyze", dialogue[0], "--speakers", "auto", "-o", str(out)])
    assert run.exit_code == DiarizerError.exit_code and not out.exists()


def test_a_changed_encoder_fails_closed(tmp_path, monkeypatch):
    bad = tmp_path / "ge2e.onnx"
    bad.write_bytes(ge2e.WEIGHTS.read_bytes()[:-1] + b"\0")
    monkeypatch.setattr(ge2e, "WEIGHTS", bad)
    with pytest.raises(DiarizerError, match="checksum does not match"):
        ge2e.GE2E(get_settings())


def test_power_spectra_match_librosa():
    """The encoder was trained on librosa's STFT; ours (numpy) must give the same frames."""
    librosa = pytest.importorskip("librosa")
    x = np.random.default_rng(0).standard_normal((2, 25600)).astype(np.float32)
    ours = ge2e.power_spectra(x)
    for row in range(2):
        theirs = np.abs(librosa.stft(x[row], n_fft=400, hop_length=160)) ** 2
        np.testing.assert_allclose(ours[row], theirs.T, rtol=1e-4, atol=1e-3)


def test_parse_speakers():
    assert parse_speakers("off") == (False, None) and parse_speakers(None) == (False, None)
    assert parse_speakers("auto") == (True, None) and parse_speakers("3") == (True, 3) and parse_speakers(2) == (True, 2)
    for bad in ("0", "x", "-1"):
        with pytest.raises(ValueError):
            parse_speakers(bad)


def test_turns_absorb_flickers_and_name_in_order():
    # Windows every 0.4 s over 0-8 s; cluster 7 speaks, one window of 3, then 3 takes over.
    spans = np.array([[t, t + 1.6] for t in np.arange(0, 6.5, 0.4)])
    clusters = np.array([7] * 5 + [3] + [7] * 4 + [3] * 7)
    turns = find_turns([(0.0, 8.0)], spans, clusters)
    assert [t.speaker for t in turns] == ["S1", "S2"]  # 7 first, so S1; the lone window is gone
    assert turns[0].start == 0.0 and turns[-1].end == 8.0 and turns[0].end == turns[1].start
    # Turns never cover a pause: two regions give turns inside each.
    turns = find_turns([(0.0, 3.0), (4.0, 8.0)], spans, clusters)
    assert all(not (3.0 < t.start < 4.0 or 3.0 < t.end < 4.0) for t in turns)


def _segment(start, end, label, confidence=0.8, speaker=None):
    return Segment(start=start, end=end, label=label, confidence=confidence, probabilities={label: confidence}, speaker=speaker)


def test_segments_split_at_speaker_changes():
    turns = [Turn(start=0, end=4, speaker="S1"), Turn(start=4, end=9, speaker="S2")]
    parts = split_segments([_segment(0, 6, "angry"), _segment(6, 9, "sad")], turns)
    assert [(s.start, s.end, s.label, s.speaker) for s in parts] == [
        (0, 4, "angry", "S1"),
        (4, 6, "angry", "S2"),
        (6, 9, "sad", "S2"),
    ]


def test_summary_early_late_and_moments():
    turns = [Turn(start=0, end=30, speaker="S1"), Turn(start=30, end=40, speaker="S2")]
    segments = [
        _segment(0, 10, "neutral", 0.9, "S1"),
        _segment(10, 20, "happy", 0.6, "S1"),
        _segment(20, 30, "angry", 0.7, "S1"),
        _segment(30, 40, "sad", 0.5, "S2"),
    ]
    found = {s.speaker: s for s in summaries(turns, segments, ["angry", "happy", "neutral", "sad"], 0.55)}
    s1 = found["S1"]
    assert (s1.talk_seconds, s1.share, s1.early, s1.late) == (30, 0.75, "neutral", "angry")
    assert [(m.emotion, m.start) for m in s1.moments] == [("happy", 10), ("angry", 20)]  # neutral is no moment
    assert found["S2"].label == "sad" and found["S2"].uncertain


def test_speakers_leave_the_emotions_alone(dialogue):
    """Turning speakers on cuts segments at speaker changes and names the speaker; the emotion
    at every moment, and the overall result, stay what they were."""
    off = ser_core.analyze(dialogue[0])
    on = ser_core.analyze(dialogue[0], speakers="auto")
    assert (on.label, on.probabilities, on.shares) == (off.label, off.probabilities, off.shares)

    def label_at(result, t):
        return next((s.label for s in result.segments if s.start <= t < s.end), None)

    for t in np.arange(0.0, off.duration, 0.05):
        assert label_at(on, t) == label_at(off, t)


def test_many_vectors_are_clustered_from_a_sample(monkeypatch):
    """Past MAX_CLUSTERED vectors (long recordings) a spread sample is clustered and every vector
    joins its nearest centre: memory stays bounded, the answer stays the same."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((2, 256))
    truth = rng.integers(0, 2, 600)
    vectors = centres[truth] + 0.3 * rng.standard_normal((600, 256))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    diarizer = ge2e.GE2E(get_settings(), projection=None)  # the clusters are in the raw vectors
    diarizer.threshold = 0.5
    whole = diarizer.assign(vectors, None)
    monkeypatch.setattr(ge2e, "MAX_CLUSTERED", 50)
    sampled = diarizer.assign(vectors, None)
    for found in (whole, sampled):
        assert len(set(found)) == 2
        assert all(len(set(found[truth == k])) == 1 for k in (0, 1))


def test_projection_round_trip_and_fails_closed(tmp_path):
    shipped = ge2e.Projection.load(ge2e.PROJECTION)
    assert shipped.meta["corpora"] and shipped.matrix.shape[0] == 256
    copy = tmp_path / "p.npz"
    shipped.save(copy)
    again = ge2e.Projection.load(copy)
    np.testing.assert_array_equal(again.matrix, shipped.matrix)
    vectors = np.random.default_rng(0).standard_normal((5, 256)).astype(np.float32)
    np.testing.assert_allclose(np.linalg.norm(again.apply(vectors), axis=1), 1.0, rtol=1e-5)
    # Made for another encoder: refused.
    meta = dict(shipped.meta, encoder_sha256="0" * 64, format=ge2e.PROJECTION_FORMAT)
    np.savez(tmp_path / "other.npz", mean=shipped.mean, matrix=shipped.matrix, meta=np.array(json.dumps(meta)))
    with pytest.raises(DiarizerError, match="another encoder"):
        ge2e.Projection.load(tmp_path / "other.npz")
    # Objects that would need pickle to load: refused, not unpickled.
    np.savez(tmp_path / "pickled.npz", mean=shipped.mean, matrix=shipped.matrix, meta=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DiarizerError, match="cannot read"):
        ge2e.Projection.load(tmp_path / "pickled.npz")
    with pytest.raises(DiarizerError, match="cannot read"):
        ge2e.Projection.load(tmp_path / "missing.npz")


def test_a_few_odd_windows_are_no_speaker():
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((3, 256))
    truth = np.r_[np.zeros(60, int), np.ones(60, int), np.full(3, 2)]  # 3 odd windows (a laugh, a shout)
    vectors = centres[truth] + 0.2 * rng.standard_normal((len(truth), 256))
    diarizer = ge2e.GE2E(get_settings(), projection=None)
    diarizer.threshold, diarizer.min_share = 0.5, 0.0
    assert len(set(diarizer.assign(vectors, None))) == 3
    diarizer.min_share = 0.05
    found = diarizer.assign(vectors, None)
    assert len(set(found)) == 2 and len(set(found[:60])) == 1 and len(set(found[60:120])) == 1
