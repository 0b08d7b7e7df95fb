"""Issue 16 part 1, measurement only: can short recordings share Whisper's 30 s windows?

    python scripts/batch_window_experiments.py [--files 256]
        [--variants per-file-30s,per-file,clips-16,joined,windows-0.5,windows-1.0]

Every short file cost faster-whisper one padded 30 s encoder pass (0.39 s for Whisper base int8
on 2 cores), whatever its length. The variants, on RAVDESS 01-18 files spread over every actor
(language "en", beam 5, patience 3, batch 8, as `ser analyze` transcribes):

* `per-file-30s`: `FasterWhisperTranscriber.transcribe` on each file, windows padded to 30 s
  (`whisper.full_windows`: the path before issue 16; the baseline);
* `per-file`: the same with the shipped shorter windows (at least 15 s, `whisper.trimmed`);
* `clips-B`: each file's speech span (its VAD regions, 0.2 s padding) as one `clip_timestamps`
  clip of a joined signal, B clips decoded per batch (windows of at least 15 s): one file per
  window as before, but the encoder and the beam search run on B files at once; words by clip;
* `joined`: groups of `--group` files joined end to end with 1 s of silence between them, through
  the same `transcribe` (the pipeline's VAD packs the speech of many files into each window); every
  word goes to the file whose speech region it overlaps most (`whisper._owner`);
* `windows-G`: our own windows: each file's speech span (its VAD regions, 0.2 s padding) laid
  one after another with G seconds of silence between files, at most 30 s a window, each window one
  `clip_timestamps` clip; words re-spliced (`whisper.resplice`) and given to the file whose speech
  region they overlap most, in its own clock.

`joined` and `windows-G` also encode their windows at the shipped length (full windows are 30 s).
WER as in scripts/benchmark_transcript.py, on the words `analyze` keeps (`clamp_to_speech`: words
trimmed to speech, zero-length and repeated words dropped). Time: transcription only, every variant
in this one process, side by side. Writes reports/batch-window-experiments.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from benchmark_transcript import STATEMENTS, edit_distance, words
from corpora import ROOT, corpora_dir

from ser_core.atomic_files import atomic_write_text
from ser_core.builtin_plugins import whisper
from ser_core.builtin_plugins.whisper import _owner, _words, resplice, unheard
from ser_core.contract.results import Word
from ser_core.pipeline.alignment import clamp_to_speech
from ser_core.pipeline.audio import SAMPLE_RATE, load_audio
from ser_core.pipeline.vad import speech_regions
from ser_core.plugins.lookup import get_transcriber
from ser_core.settings import Settings

PAD = 0.2


def shifted(word: Word, by: float, start: float, length: float) -> Word:
    """`word` moved `by` seconds and kept inside [start, start + length]."""
    a = min(max(word.start + by, start), start + length)
    b = min(max(word.end + by, a), start + length)
    return word.model_copy(update={"start": round(a, 3), "end": round(b, 3)})


def speech_span(signal: np.ndarray, speech: np.ndarray) -> tuple[float, float]:
    """Seconds from the file's first speech region to its last, `PAD` added, inside the file."""
    return max(0.0, speech[0, 0] - PAD), min(len(signal) / SAMPLE_RATE, speech[-1, 1] + PAD)


def joined(transcriber, items, group: int) -> list[list[Word]]:
    out: list[list[Word]] = []
    gap = np.zeros(SAMPLE_RATE, np.float32)
    for first in range(0, len(items), group):
        chunk = items[first : first + group]
        parts, regions, owners, offsets = [], [], [], []
        at = 0.0
        for k, (signal, speech) in enumerate(chunk):
            offsets.append(at)
            regions.append(speech + at)
            owners += [k] * len(speech)
            parts += [signal, gap]
            at += (len(signal) + len(gap)) / SAMPLE_RATE
        speech = np.concatenate(regions)
        said = transcriber.transcribe(np.concatenate(parts), "en", speech)
        found: list[list[Word]] = [[] for _ in chunk]
        for word in said.words:
            k = owners[_owner(word, speech)]
            found[k].append(shifted(word, -offsets[k], 0.0, len(chunk[k][0]) / SAMPLE_RATE))
        out += found
    return out


def windows(transcriber, items, gap_seconds: float, group: int, settings) -> list[list[Word]]:
    out: list[list[Word]] = []
    gap = np.zeros(round(gap_seconds * SAMPLE_RATE), np.float32)
    options = {
        "word_timestamps": True,
        "beam_size": settings.whisper_beam_size,
        "patience": settings.whisper_patience,
        "batch_size": settings.whisper_batch_size,
    }
    for first in range(0, len(items), group):
        chunk = items[first : first + group]
        parts, clips, regions, owners, place = [], [], [], [], {}
        at, window_start = 0.0, None
        for k, (signal, speech) in enumerate(chunk):
            if not len(speech):
                continue
            a, b = speech_span(signal, speech)
            if window_start is not None and at + gap_seconds + (b - a) - window_start > 30.0:
                clips.append({"start": window_start, "end": at})
                window_start = None
            if window_start is None:
                window_start = at
            else:
                parts.append(gap)
                at += gap_seconds
            piece = signal[round(a * SAMPLE_RATE) : round(b * SAMPLE_RATE)]
            place[k] = (at, a, len(piece) / SAMPLE_RATE)
            for start, end in speech:
                regions.append([min(max(start - a, 0), b - a) + at, min(max(end - a, 0), b - a) + at])
                owners.append(k)
            parts.append(piece)
            at += len(piece) / SAMPLE_RATE
        if window_start is not None:
            clips.append({"start": window_start, "end": at})
        found: list[list[Word]] = [[] for _ in chunk]
        if clips:
            regions_array = np.array(regions)
            segments, _ = transcriber.pipeline.transcribe(
                np.concatenate(parts), language="en", clip_timestamps=clips, **options
            )
            for word in resplice(_words(segments), regions_array):
                k = owners[_owner(word, regions_array)]
                joined_at, start, length = place[k]
                found[k].append(shifted(word, start - joined_at, start, length))
        out += found
    return out


def clips(transcriber, items, batch: int, group: int, settings) -> list[list[Word]]:
    out: list[list[Word]] = []
    options = {
        "word_timestamps": True,
        "beam_size": settings.whisper_beam_size,
        "patience": settings.whisper_patience,
        "batch_size": batch,
    }
    for first in range(0, len(items), group):
        chunk = items[first : first + group]
        parts, spans, place = [], [], {}
        at = 0.0
        for k, (signal, speech) in enumerate(chunk):
            if not len(speech):
                continue
            a, b = speech_span(signal, speech)
            piece = signal[round(a * SAMPLE_RATE) : round(b * SAMPLE_RATE)]
            place[round(at * 100)] = (k, at, a, len(piece) / SAMPLE_RATE)  # by the clip's `seek`
            spans.append({"start": at, "end": at + len(piece) / SAMPLE_RATE})
            parts.append(piece)
            at += len(piece) / SAMPLE_RATE
        found: list[list[Word]] = [[] for _ in chunk]
        if spans:
            segments, _ = transcriber.pipeline.transcribe(
                np.concatenate(parts), language="en", clip_timestamps=spans, **options
            )
            for segment in segments:
                k, joined_at, start, length = place[min(place, key=lambda seek: abs(seek - segment.seek))]
                found[k] += [shifted(w, start - joined_at, start, length) for w in _words([segment])]
        out += found
    return out


def score(files, items, found) -> dict:
    errors = reference_words = wrong = silent = 0
    examples = []
    for path, (_, speech), said in zip(files, items, found, strict=True):
        kept = clamp_to_speech(said, speech)
        reference = words(STATEMENTS[path.stem.split("-")[4]])
        distance = edit_distance(reference, words(" ".join(w.text for w in kept)))
        errors += distance
        reference_words += len(reference)
        wrong += distance > 0
        silent += len(unheard(kept, speech))
        if distance and len(examples) < 6:
            examples.append({"file": path.name, "heard": " ".join(w.text for w in kept)})
    return {
        "wer": round(errors / reference_words, 4),
        "files_wrong": wrong,
        "speech_regions_without_words": silent,
        "examples": examples,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=256)
    parser.add_argument("--group", type=int, default=64, help="files transcribed together")
    parser.add_argument("--variants", default="per-file-30s,per-file,clips-16,joined,windows-0.5,windows-1.0")
    args = parser.parse_args()
    settings = Settings(whisper_model="base")
    every = sorted((corpora_dir() / "ravdess").rglob("*.flac"))
    files = every[:: max(1, len(every) // args.files)][: args.files]
    items = []
    for path in files:
        signal = load_audio(path)
        speech = np.asarray(speech_regions(signal, settings.vad, settings.vad_merge_gap), float).reshape(
            -1, 2
        )
        items.append((signal.astype(np.float32), speech))
    seconds = sum(len(s) for s, _ in items) / SAMPLE_RATE
    transcriber = get_transcriber("base", settings)
    transcriber.transcribe(items[0][0], "en", items[0][1])  # warm-up
    report: dict = {
        "files": len(files),
        "audio_seconds": round(seconds, 1),
        "group": args.group,
        "variants": {},
    }
    for name in args.variants.split(","):
        start = time.perf_counter()
        if name.startswith("per-file"):
            with whisper.full_windows() if name == "per-file-30s" else contextlib.nullcontext():
                found = [transcriber.transcribe(s, "en", sp).words for s, sp in items]
        elif name.startswith("clips-"):
            found = clips(transcriber, items, int(name.removeprefix("clips-")), args.group, settings)
        elif name == "joined":
            found = joined(transcriber, items, args.group)
        else:
            found = windows(transcriber, items, float(name.removeprefix("windows-")), args.group, settings)
        wall = time.perf_counter() - start
        row = {
            "seconds": round(wall, 1),
            "x_real_time": round(seconds / wall, 1),
            **score(files, items, found),
        }
        report["variants"][name] = row
        print(f"{name:12s} {row['x_real_time']:5.1f}x real time  WER {row['wer']:.4f}  "
              f"files wrong {row['files_wrong']}  regions without words {row['speech_regions_without_words']}",
              flush=True)  # fmt: skip
    out = ROOT / "reports" / "batch-window-experiments.json"
    atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
