"""Words on long emotional recordings: are they all there, once, in the right place?

    python scripts/benchmark_words.py [--corpora ravdess emodb emovo] [--blocks 3] [--clips 8]
                                      [--seed 0] [--pause 0.5] [--tag NAME] [--details 20]

Protocol (deterministic from the seed):
* Per corpus, for every emotion, `--blocks` blocks of up to `--clips` clips of one speaker in that
  emotion (speakers drawn without replacement), the blocks of all emotions shuffled and joined
  with `--pause` seconds of silence after every clip into one long recording per corpus.
* `ser_core.analyze(recording, transcript=True)`: the fast profile, the default Whisper model and
  every other default, language en (RAVDESS), de (Emo-DB), it (EMOVO).
* Each result word belongs to the clip whose stretch of the recording (the clip plus half the
  pause on each side) holds the word's midpoint.
* References. RAVDESS: the known statement of the clip: word recall (words of the reference found
  in order: longest common subsequence / reference words) and WER. Emo-DB and EMOVO: their texts
  are not in the corpora (and Emo-DB clips are cut to 2 s), so the reference is **the clip
  transcribed alone by the same model** (the batched pipeline with the clip as its only clip, no
  VAD, beam 5; cached in `<cache>/benchmark_words/`): word recall against that counts words the
  long recording loses or hears differently, not whether they are right. Every corpus also gets
  `vs_alone`; RAVDESS and EMOVO (its sentences, but n5) get `vs_text`, with `alone_*`: the clips
  transcribed alone against the same texts. `deleted`: reference words without a counterpart in
  the minimum edit alignment (lost words, whatever the recognition errors).
* Timeline: seconds of emotion segments outside every timeline row (speech missing from the
  exports).
* Counts: clips that got no word, zero-length words (end <= start), duplicated words (same text,
  overlapping or identical times), sentences spanning a pause longer than 0.5 s between two clips'
  speech (silero on each clip alone, less its 0.1 s padding), each counted in the emotion of the
  clip it starts in; `block_recall` ignores which clip of its block a word went to (lost vs
  misplaced); analyze RTF and CPU time, and speech regions the transcriber decoded twice.
Writes reports/words-<tag>.json (default tag: the Whisper model).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import defaultdict
from itertools import pairwise
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
from corpora import ROOT, corpora_dir

import ser_core
from ser_core.atomic_files import atomic_write_text
from ser_core.pipeline.audio import SAMPLE_RATE, load_audio
from ser_core.pipeline.vad import PAD, speech_regions
from ser_core.plugins.lookup import get_transcriber
from ser_core.settings import get_settings
from ser_core.training.datasets import load_dataset

LANGUAGES = {"ravdess": "en", "emodb": "de", "emovo": "it"}
STATEMENTS = {"01": "kids are talking by the door", "02": "dogs are sitting by the door"}
#: EMOVO's sentences (Costantini et al. 2014; n5, a list of numbers, left out: Whisper writes digits).
EMOVO = {
    "b1": "gli operai si alzano presto",
    "b2": "i vigili sono muniti di pistola",
    "b3": "la cascata fa molto rumore",
    "l1": "l'autunno prossimo tony partirà per la spagna nella prima metà di ottobre",
    "l2": "ora prendo la felpa di là ed esco per fare una passeggiata",
    "l3": "un attimo dopo s'è incamminato ed è inciampato",
    "l4": "vorrei il numero telefonico del signor piatti",
    "n1": "la casa forte vuole col pane",
    "n2": "la forza trova il passo e l'aglio rosso",
    "n3": "il gatto sta scorrendo nella pera",
    "n4": "insalata pastasciutta coscia d'agnello limoncello",
    "d1": "sabato sera cosa farà",
    "d2": "porti con te quella cosa",
}
SPANNED_PAUSE = 0.5


def tokens(text: str) -> list[str]:
    """Lower-case words without punctuation; apostrophes split ("l'aglio" -> "l", "aglio") because
    Whisper's word timestamps sometimes split there and sometimes not."""
    return re.findall(r"[^\W_]+", text.lower())


def counts(ref: list[str], hyp: list[str]) -> tuple[int, int, int, int]:
    """(hits, substitutions, deletions, insertions) of a minimum edit-distance alignment."""
    n, m = len(ref), len(hyp)
    cost = np.zeros((n + 1, m + 1), int)
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(
                cost[i - 1, j] + 1, cost[i, j - 1] + 1, cost[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1])
            )
    hits = subs = dels = ins = 0
    i, j = n, m
    while i or j:
        if i and j and cost[i, j] == cost[i - 1, j - 1] + (ref[i - 1] != hyp[j - 1]):
            hits, subs = hits + (ref[i - 1] == hyp[j - 1]), subs + (ref[i - 1] != hyp[j - 1])
            i, j = i - 1, j - 1
        elif i and cost[i, j] == cost[i - 1, j] + 1:
            dels, i = dels + 1, i - 1
        else:
            ins, j = ins + 1, j - 1
    return hits, subs, dels, ins


def common(ref: list[str], hyp: list[str]) -> int:
    """Length of the longest common subsequence: reference words found, in order."""
    row = [0] * (len(hyp) + 1)
    for r in ref:
        previous = 0
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], previous + 1 if r == h else max(row[j], row[j - 1])
    return row[-1]


def reference_text(corpus: str, path: Path) -> list[str] | None:
    """The words a clip is known to say, where the corpus fixes them (Emo-DB's are cut off at 2 s)."""
    if corpus == "ravdess":
        return tokens(STATEMENTS[path.stem.split("-")[4]])
    if corpus == "emovo" and path.stem.split("-")[2] in EMOVO:
        return tokens(EMOVO[path.stem.split("-")[2]])
    return None


def blocks_of(items: list, n_blocks: int, n_clips: int, rng: np.random.Generator) -> list[list]:
    """`n_blocks` blocks per emotion, each up to `n_clips` clips of one speaker, in shuffled order."""
    by_pair: dict[tuple[str, str], list] = defaultdict(list)
    for item in items:
        by_pair[(item.label, item.speaker)].append(item)
    blocks = []
    for label in sorted({item.label for item in items}):
        speakers = sorted(s for lab, s in by_pair if lab == label)
        for speaker in rng.permutation(speakers)[:n_blocks]:
            clips = by_pair[(label, speaker)]
            chosen = rng.permutation(len(clips))[:n_clips]
            blocks.append([clips[i] for i in sorted(chosen)])
    return [blocks[i] for i in rng.permutation(len(blocks))]


def alone(signals: list[np.ndarray], paths: list[Path], language: str, model: str) -> dict[str, str]:
    """Each clip transcribed on its own by the batched pipeline (one clip per 30 s window, no VAD),
    cached by file, model and language."""
    cache = get_settings().cache_dir / "benchmark_words" / f"alone-{model}-{language}.json"
    known = json.loads(cache.read_text()) if cache.is_file() else {}
    todo = [i for i, p in enumerate(paths) if str(p) not in known]
    if todo:
        transcriber = get_transcriber(model)
        for start in range(0, len(todo), 64):
            part = todo[start : start + 64]
            gap = np.zeros(SAMPLE_RATE, np.float32)
            audio, clips, t = [], [], 0
            for i in part:
                clips.append({"start": t / SAMPLE_RATE, "end": (t + len(signals[i])) / SAMPLE_RATE})
                audio += [signals[i], gap]
                t += len(signals[i]) + len(gap)
            segments, _ = transcriber.pipeline.transcribe(
                np.concatenate(audio),
                language=language,
                clip_timestamps=clips,
                beam_size=5,
                batch_size=8,
            )
            texts = [""] * len(part)
            for segment in segments:
                k = int(np.searchsorted([c["start"] for c in clips], segment.start + 1e-3, side="right")) - 1
                texts[k] = (texts[k] + " " + segment.text).strip()
            known.update({str(paths[i]): text for i, text in zip(part, texts, strict=True)})
        atomic_write_text(cache, json.dumps(known, indent=1, ensure_ascii=False) + "\n")
    return {str(p): known[str(p)] for p in paths}


def duplicated(words: list) -> int:
    """Words repeating a nearby word's text with overlapping or identical times."""
    count = 0
    for i, a in enumerate(words):
        for b in words[i + 1 : i + 4]:
            same = tokens(a.text) == tokens(b.text)
            if same and (b.start < a.end or (a.start, a.end) == (b.start, b.end)):
                count += 1
    return count


class Tally:
    """Sums for one group of clips (an emotion, a corpus, everything)."""

    def __init__(self) -> None:
        self.n: dict[str, int] = defaultdict(int)

    def add(self, **values: int) -> None:
        for key, value in values.items():
            self.n[key] += value

    def score(self, kind: str, ref: list[str], hyp: list[str]) -> None:
        _, subs, dels, ins = counts(ref, hyp)
        self.add(
            **{
                f"{kind}_ref": len(ref),
                f"{kind}_found": common(ref, hyp),
                f"{kind}_errors": subs + dels + ins,
            }
        )
        self.add(**{f"{kind}_deleted": dels})

    def scores(self, kind: str) -> dict:
        ref = max(self.n[f"{kind}_ref"], 1)
        return {
            "reference_words": self.n[f"{kind}_ref"],
            "word_recall": round(self.n[f"{kind}_found"] / ref, 4),
            "wer": round(self.n[f"{kind}_errors"] / ref, 4),
            "deleted": round(self.n[f"{kind}_deleted"] / ref, 4),
        }

    def row(self) -> dict:
        n = self.n
        out = {"clips": n["clips"], **self.scores("main")}
        out["block_recall"] = round(n["block_found"] / max(n["main_ref"], 1), 4)
        if n["text_ref"]:
            out["vs_text"] = self.scores("text")
            out["vs_text"]["alone_word_recall"] = round(n["ceiling_found"] / n["text_ref"], 4)
            out["vs_text"]["alone_wer"] = round(n["ceiling_errors"] / n["text_ref"], 4)
        out["vs_alone"] = self.scores("alone")
        out |= {
            "clips_without_words": n["empty"],
            "zero_length_words": n["zero"],
            "duplicated_words": n["dups"],
            "sentences_spanning_pause": n["spanning"],
            "words": n["words"],
        }
        return out


def run_corpus(corpus: str, args, tmp: Path, details: list) -> tuple[dict, dict]:
    items = load_dataset(corpora_dir() / corpus)
    rng = np.random.default_rng([args.seed, list(LANGUAGES).index(corpus)])  # whichever corpora run
    blocks = blocks_of(items, args.blocks, args.clips, rng)
    clips = [item for block in blocks for item in block]
    block_of = [b for b, block in enumerate(blocks) for _ in block]
    signals = [load_audio(item.path) for item in clips]
    language = LANGUAGES[corpus]
    model = get_settings().whisper_model
    alone_text = alone(signals, [c.path for c in clips], language, model)
    # The recording, each clip's stretch (half the pause either side) and its speech.
    pause = np.zeros(int(args.pause * SAMPLE_RATE), np.float32)
    parts, spans, speech, t = [], [], [], 0.0
    for signal in signals:
        length = len(signal) / SAMPLE_RATE
        spans.append((t, t + length))
        found = speech_regions(signal, "silero", 0.3)
        if len(found):  # without silero's padding, where there was room for it
            a, b = found[0, 0] + PAD * (found[0, 0] > 0), found[-1, 1] - PAD * (found[-1, 1] < length)
        speech.append((t + a, t + b) if len(found) else (t, t + length))
        parts += [signal, pause]
        t += length + args.pause
    recording = np.concatenate(parts)
    path = tmp / f"{corpus}.wav"
    sf.write(path, recording, SAMPLE_RATE)
    transcriber = get_transcriber()  # the instance analyze uses; counts regions decoded twice
    redone = getattr(transcriber, "regions_redone", 0), getattr(transcriber, "regions", 0)
    start, cpu = time.perf_counter(), time.process_time()
    result = ser_core.analyze(path, profile="fast", transcript=True, language=language)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    redone = (
        getattr(transcriber, "regions_redone", 0) - redone[0],
        getattr(transcriber, "regions", 0) - redone[1],
    )
    edges = np.array([a - args.pause / 2 for a, _ in spans[1:]])
    words = sorted(result.words, key=lambda w: (w.start, w.end))
    owner = [int(np.searchsorted(edges, (w.start + w.end) / 2)) for w in words]
    heard: list[list] = [[] for _ in clips]
    for w, k in zip(words, owner, strict=True):
        heard[k].append(w)
    emotions: dict[str, Tally] = defaultdict(Tally)
    block_hyp: dict[int, list[str]] = defaultdict(list)
    block_ref: dict[int, list[str]] = defaultdict(list)
    for k, item in enumerate(clips):
        hyp = [x for w in heard[k] for x in tokens(w.text)]
        mine = tokens(alone_text[str(item.path)])
        text = reference_text(corpus, item.path)
        ref = mine if corpus != "ravdess" else text
        block_hyp[block_of[k]] += hyp
        block_ref[block_of[k]] += ref
        tally = emotions[item.label]
        tally.score("main", ref, hyp)
        tally.score("alone", mine, hyp)
        if text:
            tally.score("text", text, hyp)
            tally.add(ceiling_errors=sum(counts(text, mine)[1:]), ceiling_found=common(text, mine))
        nxt = heard[k + 1][:3] if k + 1 < len(clips) else []
        tally.add(
            clips=1,
            empty=int(not hyp and bool(ref)),
            words=len(heard[k]),
            zero=sum(w.end <= w.start for w in heard[k]),
            dups=duplicated(heard[k]) + duplicated(heard[k][-1:] + nxt),
        )
        if common(ref, hyp) < len(ref) and sum(d["corpus"] == corpus for d in details) < args.details:
            details.append(
                {
                    "corpus": corpus,
                    "clip": item.path.name,
                    "emotion": item.label,
                    "at": round(spans[k][0], 2),
                    "reference": " ".join(ref),
                    "heard": " ".join(f"{w.text}@{w.start:.2f}-{w.end:.2f}" for w in heard[k]),
                }
            )
    for b, block in enumerate(blocks):
        emotions[block[0].label].add(block_found=common(block_ref[b], block_hyp[b]))
    gaps = [
        (end, nxt_start) for (_, end), (nxt_start, _) in pairwise(speech) if nxt_start - end > SPANNED_PAUSE
    ]
    starts = np.array([a for a, _ in spans])
    for sentence in result.sentences:
        if any(sentence.start < a and sentence.end > b for a, b in gaps):
            k = max(0, int(np.searchsorted(starts, sentence.start, side="right")) - 1)
            emotions[clips[k].label].add(spanning=1)
    return emotions, {
        "audio_seconds": len(recording) / SAMPLE_RATE,
        "analyze_seconds": seconds,
        "analyze_cpu_seconds": cpu,
        "regions_decoded_again": redone[0],
        "speech_regions": redone[1],
        "segment_seconds": sum(seg.end - seg.start for seg in result.segments),
        "segment_seconds_outside_rows": outside_rows(result),
    }


def outside_rows(result) -> float:
    """Seconds of emotion segments that no timeline row covers (speech missing from the table,
    CSV, SRT and HTML)."""
    rows = sorted((row.start, row.end) for row in result.timeline)
    missing = 0.0
    for seg in result.segments:
        covered = sum(max(0.0, min(seg.end, b) - max(seg.start, a)) for a, b in rows)
        missing += max(0.0, (seg.end - seg.start) - covered)
    return missing


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpora", nargs="+", default=list(LANGUAGES), choices=list(LANGUAGES))
    parser.add_argument("--blocks", type=int, default=3, help="blocks per emotion")
    parser.add_argument("--clips", type=int, default=8, help="clips per block")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pause", type=float, default=0.5)
    parser.add_argument("--tag", default=None, help="report name: reports/words-<tag>.json")
    parser.add_argument("--details", type=int, default=20, help="clips with lost words to list, per corpus")
    args = parser.parse_args()
    overall, corpora, timing, details = Tally(), {}, {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for corpus in args.corpora:
            emotions, timing[corpus] = run_corpus(corpus, args, Path(tmp), details)
            total = Tally()
            for tally in emotions.values():
                total.add(**tally.n)
                overall.add(**tally.n)
            corpora[corpus] = {"all": total.row()} | {e: t.row() for e, t in sorted(emotions.items())}
            row = corpora[corpus]["all"]
            print(f"{corpus}: recall {row['word_recall']:.3f} ({timing[corpus]['audio_seconds'] / 60:.1f} min, "
                  f"analyze {timing[corpus]['analyze_seconds']:.0f} s; segments {timing[corpus]['segment_seconds']:.1f} s, "
                  f"outside every timeline row {timing[corpus]['segment_seconds_outside_rows']:.1f} s)", flush=True)  # fmt: skip
    report = {
        "whisper_model": get_settings().whisper_model,
        "seed": args.seed,
        "pause_seconds": args.pause,
        "blocks_per_emotion": args.blocks,
        "clips_per_block": args.clips,
        "reference": "word_recall, wer, deleted: RAVDESS against its statements; Emo-DB and EMOVO against each "
        "clip transcribed alone by the same model (lost words, not correct words); vs_text: against the "
        "known texts (RAVDESS, EMOVO but n5), alone_wer: the clips transcribed alone against them",
        "overall": overall.row(),
        "corpora": corpora,
        "timing": {
            k: {key: round(v, 1) if isinstance(v, float) else v for key, v in t.items()}
            | {
                "rtf": round(t["analyze_seconds"] / t["audio_seconds"], 4),
                "cpu_rtf": round(t["analyze_cpu_seconds"] / t["audio_seconds"], 4),
            }
            for k, t in timing.items()
        },
        "lost_word_examples": details,
        "version": ser_core.__version__,
    }
    print(
        f"{'corpus':8s} {'emotion':10s} clips recall  block   WER  deleted  text-recall (alone)  text-WER (alone)"
        "  empty zero dup span"
    )
    for corpus, rows in corpora.items():
        for emotion, row in [
            *rows.items(),
            *([("overall", report["overall"])] if corpus == args.corpora[-1] else []),
        ]:
            text, nan = row.get("vs_text", {}), float("nan")
            print(f"{corpus if emotion != 'overall' else '':8s} {emotion:10s} {row['clips']:5d} {row['word_recall']:6.3f} "
                  f"{row['block_recall']:6.3f} {row['wer']:6.3f} {row['deleted']:6.3f}  {text.get('word_recall', nan):6.3f}  "
                  f"({text.get('alone_word_recall', nan):5.3f})  {text.get('wer', nan):6.3f}  ({text.get('alone_wer', nan):5.3f})  "
                  f"{row['clips_without_words']:5d} {row['zero_length_words']:4d} "
                  f"{row['duplicated_words']:3d} {row['sentences_spanning_pause']:4d}")  # fmt: skip
    out = ROOT / "reports" / f"words-{args.tag or report['whisper_model']}.json"
    atomic_write_text(out, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
