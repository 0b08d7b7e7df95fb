"""Word error rate of the transcriber on the RAVDESS statements (two known sentences).

    python scripts/benchmark_transcript.py [--models tiny.en base] [--limit N]

Every RAVDESS file in ../shared/corpora/ravdess is transcribed on its own, exactly as `ser analyze`
does it (VAD speech regions -> faster-whisper batched pipeline, word timestamps, int8 on CPU).
WER = (substitutions + deletions + insertions) / reference words, over all files, on lower-cased
words without punctuation. Writes reports/transcript-wer.json.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from corpora import ROOT, corpora_dir

from ser_core.atomic_files import atomic_write_text
from ser_core.pipeline.audio import load_audio
from ser_core.pipeline.vad import speech_regions
from ser_core.plugins.lookup import get_transcriber
from ser_core.settings import Settings

STATEMENTS = {"01": "kids are talking by the door", "02": "dogs are sitting by the door"}


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    parser.add_argument("--limit", type=int, default=0, help="only the first N files (0: all)")
    args = parser.parse_args()
    files = sorted((corpora_dir() / "ravdess").rglob("*.flac"))
    if args.limit:
        files = files[:: max(1, len(files) // args.limit)][: args.limit]
    audio = [(f, load_audio(f)) for f in files]
    seconds = sum(len(x) for _, x in audio) / 16000
    report = {"files": len(files), "audio_seconds": round(seconds, 1), "models": {}}
    for name in args.models:
        settings = Settings(whisper_model=name)
        start = time.perf_counter()
        transcriber = get_transcriber(name, settings)
        load = time.perf_counter() - start
        errors = ref_words = exact = 0
        examples = []
        start = time.perf_counter()
        for path, signal in audio:
            reference = words(STATEMENTS[path.stem.split("-")[4]])
            said = transcriber.transcribe(signal, "en", speech_regions(signal, settings.vad, settings.vad_merge_gap))
            hypothesis = words(" ".join(w.text for w in said.words))
            distance = edit_distance(reference, hypothesis)
            errors += distance
            ref_words += len(reference)
            exact += distance == 0
            if distance and len(examples) < 5:
                examples.append({"file": path.name, "heard": " ".join(hypothesis)})
        wall = time.perf_counter() - start
        row = {
            "wer": round(errors / ref_words, 4),
            "sentence_exact": round(exact / len(files), 4),
            "rtf": round(wall / seconds, 4),
            "load_seconds": round(load, 2),
            "decoded_again_with_30s_windows": transcriber.looped,
            "speech_regions_decoded_again": transcriber.regions_redone,
            "errors": examples,
        }
        report["models"][name] = row
        print(f"{name:8s} WER {row['wer']:.3f}  exact {row['sentence_exact']:.3f}  RTF {row['rtf']:.3f}  "
              f"load {row['load_seconds']:.1f}s  ({len(files)} files, {seconds / 60:.1f} min)", flush=True)  # fmt: skip
    out = ROOT / "reports" / "transcript-wer.json"
    atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
