"""Who speaks when: the built-in diarizer (`--speakers`) on conversations composed from the corpora.

    python scripts/benchmark_speakers.py [--per 6] [--seed 0]

Protocol (leave one corpus out, so no speaker is scored by a projection fit on their voice):
* For each corpus C of Emo-DB, EMOVO, RAVDESS 01-18 and ASED, the speaker projection is fit on the
  other three (`fit_speaker_projection.fit`, the recipe of the shipped one) and `--per`
  conversations each of 1, 2, 3 and 4 speakers are composed from C's speakers only (one language,
  one microphone: the hard case, often same-gender pairs): turns of 1-4 clips, pauses 0.2-1.0 s,
  60-180 s. 1 speaker: their clips of mixed emotions, where any second speaker is a false split.
* Reference: each clip's speech as silero finds it on the clip alone, labelled with its speaker, so
  the score is about who speaks, not about pauses inside clips the VAD in the conversation leaves
  out. Metrics from pyannote.metrics (collar 0.25 s, no overlap in these recordings): DER and its
  parts (missed speech, false alarm, confusion), the speaker count, and the cost (embedding +
  clustering, real-time factor on this machine).
* The product's diarizer (`ser_core`'s ge2e: VAD regions, 1.6 s windows every 0.4 s at -30 dBFS,
  GE2E ONNX, projection, agglomerative clustering), with the true number of speakers and with the
  number estimated. The threshold and minimum cluster share of the estimate are chosen on the
  even-numbered conversations of every corpus (dev) from a grid, and reported on the odd ones
  (test) beside the shipped constants.

Writes reports/speakers.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from corpora import ROOT, corpora_dir
from fit_speaker_projection import CORPORA, fit

from ser_core.atomic_files import atomic_write_text
from ser_core.builtin_plugins import speakers as ge2e
from ser_core.contract.signals import SAMPLE_RATE
from ser_core.pipeline.audio import load_audio
from ser_core.pipeline.speakers import find_turns
from ser_core.pipeline.vad import speech_regions
from ser_core.settings import get_settings
from ser_core.training.datasets import load_dataset

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
MIN_SHARES = (0.0, 0.05, 0.1, 0.15)


def compose(clips: dict[str, list], n: int, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """A conversation of `n` of the speakers in `clips`, and its reference [(start, end, speaker)]."""
    speakers = list(rng.choice(sorted(clips), n, replace=False))
    target = rng.uniform(60.0, 180.0)
    parts, reference, now, last = [], [], 0.0, None
    while now < target:
        speaker = rng.choice([s for s in speakers if s != last] or speakers)
        for path in rng.choice(clips[speaker], int(rng.integers(1, 5))):
            pause = np.zeros(int(rng.uniform(0.2, 1.0) * SAMPLE_RATE), np.float32)
            clip = load_audio(path)
            begins = now + len(pause) / SAMPLE_RATE
            reference += [(begins + a, begins + b, speaker) for a, b in speech_regions(clip, "silero", 0.3)]
            parts += [pause, clip]
            now += (len(pause) + len(clip)) / SAMPLE_RATE
        last = speaker
    return np.concatenate(parts), reference


def annotation(turns):
    from pyannote.core import Annotation, Segment

    out = Annotation()
    for start, end, label in turns:
        out[Segment(float(start), float(end))] = str(label)
    return out


def score(reference: list, regions: np.ndarray, spans: np.ndarray, clusters: np.ndarray) -> dict:
    from pyannote.metrics.diarization import DiarizationErrorRate

    turns = find_turns(regions.tolist(), spans, clusters)
    parts = DiarizationErrorRate(collar=0.25, skip_overlap=True)(
        annotation(reference), annotation([(t.start, t.end, t.speaker) for t in turns]), detailed=True
    )
    total = parts["total"] or 1.0
    return {
        "der": round(parts["diarization error rate"], 4),
        "missed": round(parts["missed detection"] / total, 4),
        "false_alarm": round(parts["false alarm"] / total, 4),
        "confusion": round(parts["confusion"] / total, 4),
        "count": len({t.speaker for t in turns}),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per", type=int, default=6, help="conversations per corpus and number of speakers")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings = get_settings()
    diarizer = ge2e.GE2E(settings)
    rng = np.random.default_rng(args.seed)
    rows = []
    for corpus in CORPORA:
        diarizer.projection = fit([c for c in CORPORA if c != corpus])
        clips: dict[str, list] = {}
        for item in load_dataset(corpora_dir() / corpus):
            clips.setdefault(str(item.speaker), []).append(item.path)
        for n in (1, 2, 3, 4):
            for k in range(args.per):
                signal, reference = compose(clips, n, rng)
                seconds = len(signal) / SAMPLE_RATE
                regions = speech_regions(signal, settings.vad, settings.vad_merge_gap)
                began = time.perf_counter()
                spans, vectors = diarizer.embed(signal, regions)
                clusters = diarizer.assign(vectors, None)
                cost = time.perf_counter() - began
                row = {"corpus": corpus, "speakers": n, "seconds": round(seconds, 1), "dev": k % 2 == 0}
                row["rtf"] = round(cost / seconds, 5)
                row["shipped"] = score(reference, regions, spans, clusters)
                row["true_n"] = score(reference, regions, spans, diarizer.assign(vectors, n))
                for threshold in THRESHOLDS:
                    for share in MIN_SHARES:
                        diarizer.threshold, diarizer.min_share = threshold, share
                        row[f"t{threshold}/m{share}"] = score(reference, regions, spans, diarizer.assign(vectors, None))
                diarizer.threshold, diarizer.min_share = ge2e.THRESHOLD, ge2e.MIN_SHARE
                rows.append(row)
                print(corpus, n, k, row["seconds"], "true n", row["true_n"], "shipped", row["shipped"], flush=True)
    grid = [f"t{t}/m{m}" for t in THRESHOLDS for m in MIN_SHARES]
    # Dev: mean DER over every count (1-speaker conversations weigh as much as 4-speaker ones).
    chosen = min(grid, key=lambda g: np.mean([r[g]["der"] for r in rows if r["dev"]]))
    test = [r for r in rows if not r["dev"]]

    def table(key: str, subset: list[dict]) -> dict:
        out = {}
        for n in (1, 2, 3, 4):
            mine = [r[key] for r in subset if r["speakers"] == n]
            out[str(n)] = {
                metric: round(float(np.mean([m[metric] for m in mine])), 4)
                for metric in ("der", "missed", "false_alarm", "confusion")
            }
            out[str(n)]["der_median"] = round(float(np.median([m["der"] for m in mine])), 4)
            out[str(n)]["count_right"] = round(float(np.mean([m["count"] == n for m in mine])), 3)
            out[str(n)]["counts"] = [m["count"] for m in mine]
        out["count_right_all"] = round(float(np.mean([r[key]["count"] == r["speakers"] for r in subset])), 3)
        return out

    summary = {
        "shipped": {"threshold": ge2e.THRESHOLD, "min_share": ge2e.MIN_SHARE},
        "chosen_on_dev": chosen,
        "test": {"true_n": table("true_n", test), "shipped": table("shipped", test), "chosen": table(chosen, test)},
        "all": {"true_n": table("true_n", rows), "shipped": table("shipped", rows)},
        "per_corpus_true_n_2_speakers": {
            c: round(float(np.mean([r["true_n"]["der"] for r in rows if r["corpus"] == c and r["speakers"] == 2])), 4)
            for c in CORPORA
        },
        "rtf": round(float(np.mean([r["rtf"] for r in rows])), 5),
        "conversations": len(rows),
        "minutes": round(sum(r["seconds"] for r in rows) / 60, 1),
    }
    print(json.dumps(summary, indent=2))
    atomic_write_text(ROOT / "reports" / "speakers.json", json.dumps({"summary": summary, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
