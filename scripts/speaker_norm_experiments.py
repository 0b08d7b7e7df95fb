"""Per-speaker normalisation of the emotion features, measured on the timeline benchmark (issue 14).

    OMP_NUM_THREADS=1 python scripts/speaker_norm_experiments.py [--window-level] [--k 10 30 100 300]
    OMP_NUM_THREADS=1 python scripts/speaker_norm_experiments.py --per-recording [--shrink-k 30 100] [--cap 0.5 0.25 0.1]

Protocol: exactly `scripts/benchmark_timeline.py`'s (Emo-DB, EMOVO, RAVDESS 01-18 on six labels;
leave one speaker out over the 34 speakers; each held-out speaker's clips shuffled by the same seeded
generator and concatenated with 0.5 s pauses into recordings of >= 60 s; reference = silero speech of
each clip; frame accuracy / frame UAR over 10 ms reference speech frames, "none" outside segments).
Instead of calling `ser_core.analyze`, the recording is analysed in the same steps (`stream_audio`,
`pieces`, `speech_regions`, `backend.frames`, `window_spans` with `window_context`,
`backend.embed_windows`, the `ser_build_segments` hook), so the classifier's input can be swapped;
a check against `ser_core.analyze` on the first recordings is in the report ("analyze_check").

Variants (one fold head each; `shrinkage_lda`, as `ser train` fits it):
* plain: head on the raw utterance vectors, the recording's raw window vectors (the product).
* speaker_z: every training speaker's utterance vectors standardised by their own mean/std; the
  test recording's window vectors by the recording's own mean/std (one speaker per recording here).
* speaker_centre: the same with the speaker's mean removed only (no scaling).
* shrunk_k<K>: mean and variance blended with the fold's training population's,
  w = n / (n + K) with n the speaker's utterances (training) or the recording's windows (test).

Scenarios, all scored with every variant:
* mixed: the benchmark's recordings (all six emotions of the speaker).
* single: one recording per (held-out speaker, emotion) of all that speaker's clips of that emotion
  (shuffled), the failure mode; reported for recordings >= 30 s (primary) and >= 15 s.
* dominant: that emotion's clips plus enough of the speaker's neutral clips for at least 25 % of the
  time, shuffled (a speaker angry most of the time); emotions other than neutral, >= 30 s.
* loco: leave one corpus out: heads trained on the other two corpora, tested on the mixed and single
  recordings of the held-out corpus's speakers.

Feature modes (`--window-level` adds the second): "product_windows", the window vectors exactly as
`analyze` computes them (the handcrafted-v3 backend levels the whole piece before the frames), and
"window_levelled", a control where each window's audio is levelled alone, as each training clip is.

`--per-recording` (section "per_recording_stats"; the other sections are kept): can the product's
own adapted head (`ser_core.models.adaptation.Normalised`, built per fold by
`ser_core.training.api.Trainer(..., corpus_norm=True)` as `train` builds it: trained on each corpus
standardised by its own statistics) take a recording standardised by `SourceStats.of` its own
window vectors? Heads, on the same recordings and scenarios: (a) the plain head, raw windows;
(b) the adapted head, the recording's own statistics; (c) the per-speaker-trained head of
"speaker_z", the same statistics; (d) (b) and (c) with the statistics' mean and variance blended
with the fold's training population's (or, "_corpus", a typical training corpus's),
w = min(n / (n + k), cap), n the recording's windows (`--shrink-k`, `--cap`); and
"b0_adapted_typical_corpus", the adapted head on the typical corpus's statistics alone (w = 0).
Also per recording: accuracy minus (a)'s (mean, worst, 10th percentile, share losing > 0.1 / 0.2)
and each head's worst corpus / emotion cell against (a).

Writes reports/speaker-norm-experiments.json (one section per feature mode). Window vectors are
cached as .npz under --cache, keyed by the backend's model id (no pickle).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).parent))
from benchmark_timeline import CORPORA, HOP, LABELS, compose, label_at, recordings
from corpora import ROOT, corpora_dir

import ser_core
from ser_core.atomic_files import atomic_write_text
from ser_core.models.adaptation import Normalised, SourceStats
from ser_core.models.artifacts import Model, ModelMeta
from ser_core.pipeline.analysis import window_spans
from ser_core.pipeline.audio import SAMPLE_RATE, load_audio, stream_audio
from ser_core.pipeline.pieces import pieces
from ser_core.pipeline.vad import speech_regions
from ser_core.plugins.lookup import get_backend
from ser_core.plugins.manager import get_plugin_manager
from ser_core.settings import get_settings
from ser_core.training.api import Trainer, _fit, features_of
from ser_core.training.datasets import load_dataset
from ser_core.training.metrics import classification_report

FLOOR = 1e-6
CLASSIFIER = "shrinkage_lda"


# --- analysis in the product's steps, with the classifier input left open ------------------------


def embed_recording(path: Path, backend, settings, window_level: bool = False) -> dict[str, np.ndarray]:
    """Window vectors of a recording, as `analyze` computes them: per piece, VAD, frames, windows in
    each speech region (with context). `times`: the windows' own spans in recording seconds;
    `region`: a running id of the speech region each window is in (segments are built per region)."""
    vectors, times, region = [], [], []
    next_region = 0
    for offset, piece in pieces(stream_audio(path), settings.piece_seconds):
        if float(np.max(np.abs(piece))) < settings.silence_peak:
            continue
        speech = speech_regions(piece, settings.vad, settings.vad_merge_gap)
        frames = backend.frames(piece)
        spans = [
            window_spans(end - start, settings.window_seconds, settings.hop_seconds) + start
            for start, end in speech
        ]
        if not spans:
            continue
        pooled = np.concatenate(spans) + np.array([-settings.window_context, settings.window_context])
        pooled = np.clip(pooled, 0.0, len(frames) / backend.frame_rate)
        if window_level:  # control: each window's audio levelled alone, as a training clip is
            rows = []
            for a, b in pooled:
                part = piece[round(float(a) * SAMPLE_RATE) : round(float(b) * SAMPLE_RATE)]
                rows.append(
                    backend.embed_windows(backend.frames(part), np.array([[0.0, len(part) / SAMPLE_RATE]]))[0]
                )
            vectors.append(np.asarray(rows, dtype=np.float64))
        else:
            vectors.append(np.asarray(backend.embed_windows(frames, pooled), dtype=np.float64))
        for s in spans:
            times.append(s + offset / SAMPLE_RATE)
            region.append(np.full(len(s), next_region))
            next_region += 1
    dim = backend.dim
    return {
        "vectors": np.concatenate(vectors) if vectors else np.zeros((0, dim)),
        "times": np.concatenate(times) if times else np.zeros((0, 2)),
        "region": np.concatenate(region) if region else np.zeros(0, int),
    }


def segments_of(rec: dict[str, np.ndarray], probabilities: np.ndarray, labels: list[str], settings) -> list:
    hook = get_plugin_manager().hook.ser_build_segments
    out = []
    for r in np.unique(rec["region"]):
        rows = rec["region"] == r
        out += hook(
            times=rec["times"][rows], probabilities=probabilities[rows], labels=labels, settings=settings
        )
    return out


# --- normalisation ------------------------------------------------------------------------------


class Variant:
    """How vectors are standardised before the head: `mode` "plain", "z", "centre" or "shrunk"."""

    def __init__(self, name: str, mode: str, k: float = 0.0, cap: float = 1.0) -> None:
        self.name, self.mode, self.k, self.cap = name, mode, k, cap

    def stats(
        self, x: np.ndarray, population: tuple[np.ndarray, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        mean, var = x.mean(axis=0), x.var(axis=0)
        if self.mode == "centre":
            return mean, np.ones_like(mean)
        if self.mode == "scale":
            return np.zeros_like(mean), np.maximum(np.sqrt(var), FLOOR)
        if self.mode == "shrunk":
            w = min(len(x) / (len(x) + self.k), self.cap)
            mean = w * mean + (1 - w) * population[0]
            var = w * var + (1 - w) * population[1]
        return mean, np.maximum(np.sqrt(var), FLOOR)

    def apply(
        self, x: np.ndarray, groups: np.ndarray, population: tuple[np.ndarray, np.ndarray]
    ) -> np.ndarray:
        """`x` standardised group by group (each group one speaker / recording)."""
        if self.mode == "plain":
            return x
        out = np.empty_like(x, dtype=np.float64)
        for g in np.unique(groups):
            rows = groups == g
            mean, scale = self.stats(x[rows], population)
            out[rows] = (x[rows] - mean) / scale
        return out


def population_of(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(axis=0), x.var(axis=0)


# --- scoring ------------------------------------------------------------------------------------


class Tally:
    """Reference and predicted frame labels, pooled by key (overall, corpus, emotion...)."""

    def __init__(self) -> None:
        self.truth: dict[str, list[str]] = {}
        self.pred: dict[str, list[str]] = {}

    def add(self, keys: list[str], truth: list[str], pred: list[str]) -> None:
        for key in keys:
            self.truth.setdefault(key, []).extend(truth)
            self.pred.setdefault(key, []).extend(pred)

    def report(self, with_uar: bool = True) -> dict[str, dict]:
        out = {}
        for key in sorted(self.truth, key=lambda k: (k != "overall", k)):
            r = classification_report(self.truth[key], self.pred[key], [*LABELS, "none"])
            row = {"frame_accuracy": round(r["wa"], 4), "frames": len(self.truth[key])}
            if with_uar:
                row["frame_uar"] = round(r["uar"], 4)
            out[key] = row
        return out


def score(rec: dict, segments: list) -> tuple[list[str], list[str]]:
    truth, pred = [], []
    for a, b, label in zip(rec["ref_start"], rec["ref_end"], rec["ref_label"], strict=True):
        times = np.arange(a, b, HOP)
        got = label_at(times, segments)
        truth += [str(label)] * len(times)
        pred += [g or "none" for g in got]
    return truth, pred


# --- recordings ---------------------------------------------------------------------------------


def build_recording(
    clips, pause, tmp: Path, backend, settings, cache: Path | None, name: str, window_level: bool = False
) -> dict:
    target = cache / f"{name}.npz" if cache else None
    if target is not None and target.is_file():
        with np.load(target, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    signal, reference = compose(clips, pause)
    path = tmp / "recording.wav"
    sf.write(path, signal, SAMPLE_RATE)  # as the benchmark does: 16-bit WAV, read back by the pipeline
    rec = embed_recording(path, backend, settings, window_level)
    rec["ref_start"] = np.array([a for a, _, _ in reference])
    rec["ref_end"] = np.array([b for _, b, _ in reference])
    rec["ref_label"] = np.array([lab for _, _, lab in reference], dtype="U16")
    rec["seconds"] = np.array(len(signal) / SAMPLE_RATE)
    if target is not None:
        np.savez(target, **rec)
    return rec


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="fast")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pause", type=float, default=0.5)
    parser.add_argument("--min-seconds", type=float, default=60.0)
    parser.add_argument("--single-min-seconds", type=float, default=30.0)
    parser.add_argument("--single-floor-seconds", type=float, default=15.0)
    parser.add_argument("--k", type=float, nargs="*", default=[10.0, 30.0, 100.0, 300.0])
    parser.add_argument("--speakers", default="all", help="'all' or 'even' (every other speaker)")
    parser.add_argument("--check", type=int, default=3, help="recordings compared with ser_core.analyze")
    parser.add_argument("--max-speakers", type=int, default=0, help="smoke runs: at most this many speakers")
    parser.add_argument("--window-level", action="store_true", help="also the window-levelled control")
    parser.add_argument("--cache", default="/tmp/speaker_norm_cache")
    parser.add_argument(
        "--per-recording",
        action="store_true",
        help="only the product's adapted head vs the per-speaker head on the recording's own statistics "
        "(section 'per_recording_stats' of the report; the other sections are kept)",
    )
    parser.add_argument("--shrink-k", type=float, nargs="*", default=[30.0, 100.0], help="--per-recording: k")
    parser.add_argument(
        "--cap", type=float, nargs="*", default=[0.5, 0.25, 0.1], help="--per-recording: caps on w"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    settings = get_settings()
    backend = get_backend(args.profile)
    root = corpora_dir()
    items = [item for corpus in CORPORA for item in load_dataset(root / corpus, LABELS)]
    data = features_of(items, backend)
    out = ROOT / "reports" / "speaker-norm-experiments.json"
    if args.per_recording:
        previous = json.loads(out.read_text()) if out.is_file() else {}
        section = {
            "profile": args.profile,
            "seed": args.seed,
            "classifier": CLASSIFIER,
            "pause_seconds": args.pause,
            "min_recording_seconds": args.min_seconds,
            "single_min_seconds": args.single_min_seconds,
            "reference_timeline_fast_committed": _reference(),
            "version": ser_core.__version__,
        }
        section |= experiment_per_recording(args, data, backend, settings, started)
        section["wall_seconds"] = round(time.perf_counter() - started, 1)
        key = "per_recording_stats" + ("" if not args.max_speakers else f"_smoke{args.max_speakers}")
        atomic_write_text(out, json.dumps(previous | {key: section}, indent=2) + "\n")
        print(f"wrote {out} [{key}]")
        return
    modes = ["product_windows"] + (["window_levelled"] if args.window_level else [])
    report = {
        "profile": args.profile,
        "seed": args.seed,
        "classifier": CLASSIFIER,
        "pause_seconds": args.pause,
        "min_recording_seconds": args.min_seconds,
        "reference_timeline_fast_committed": _reference(),
        "version": ser_core.__version__,
    }
    for mode in modes:
        report[mode] = experiment(args, mode, data, backend, settings, started)
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    report["backend_model_id"] = backend.model_id
    if out.is_file():  # other sections (--per-recording) are kept
        report = {
            k: v for k, v in json.loads(out.read_text()).items() if k.startswith("per_recording_stats")
        } | report
    atomic_write_text(out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


def build_all(
    args, mode: str, data, backend, settings, started: float
) -> tuple[dict, list[str], dict | None]:
    """Pass 1: every chosen speaker's recordings (mixed, single-emotion, dominant) with their window
    vectors (cached under --cache, keyed by the backend's model id), the chosen speakers, and the
    check against `ser_core.analyze`."""
    window_level = mode == "window_levelled"
    prefix = "wl-" if window_level else ""
    speakers = np.array(data.speakers)
    labels = np.array(data.labels)
    cache = (
        Path(args.cache) / f"{args.profile}-{backend.model_id}-s{args.seed}-p{args.pause}-m{args.min_seconds}"
        if args.cache
        else None
    )
    if cache:
        cache.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(args.seed)  # the benchmark's: one permutation per speaker, in order
    rng_single = np.random.default_rng(args.seed + 1000)
    all_speakers = sorted(set(speakers))
    chosen = all_speakers if args.speakers == "all" else all_speakers[::2]
    if args.max_speakers:
        chosen = chosen[:: max(1, len(chosen) // args.max_speakers)][: args.max_speakers]

    # Pass 1: every recording's window vectors (mixed, single-emotion, dominant).
    recs: dict[str, list[tuple[str, dict]]] = {}  # speaker -> [(kind:emotion, rec)]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for speaker in all_speakers:
            test = speakers == speaker
            order = rng.permutation(np.flatnonzero(test))
            if speaker not in chosen:
                continue
            audio = {i: load_audio(data.items[i].path) for i in order}
            clips = [(audio[i], data.items[i].label) for i in order]
            durations = [len(s) / SAMPLE_RATE + args.pause for s, _ in clips]
            out = recs.setdefault(speaker, [])
            safe = speaker.replace(":", "_")
            for g, group in enumerate(recordings(len(clips), durations, args.min_seconds)):
                rec = build_recording(
                    [clips[i] for i in group],
                    args.pause,
                    tmp,
                    backend,
                    settings,
                    cache,
                    f"{prefix}mixed-{safe}-{g}",
                    window_level,
                )
                out.append(("mixed", rec))
            # Single-emotion and dominant recordings (their own generator, so the above is untouched).
            neutral = [i for i in order if data.items[i].label == "neutral"]
            for emotion in LABELS:
                own = [i for i in order if data.items[i].label == emotion]
                seconds = sum(len(audio[i]) / SAMPLE_RATE + args.pause for i in own)
                shuffled = list(rng_single.permutation(own)) if own else []
                if own and seconds >= args.single_floor_seconds:
                    rec = build_recording(
                        [(audio[i], emotion) for i in shuffled],
                        args.pause,
                        tmp,
                        backend,
                        settings,
                        cache,
                        f"{prefix}single-{safe}-{emotion}",
                        window_level,
                    )
                    out.append((f"single:{emotion}", rec))
                if emotion != "neutral" and own and seconds >= args.single_min_seconds and neutral:
                    extra, extra_s = [], 0.0
                    for i in rng_single.permutation(neutral):
                        if extra_s >= 0.25 * (seconds + extra_s):
                            break
                        extra.append(i)
                        extra_s += len(audio[i]) / SAMPLE_RATE + args.pause
                    mix = list(rng_single.permutation(shuffled + extra))
                    rec = build_recording(
                        [(audio[i], data.items[i].label) for i in mix],
                        args.pause,
                        tmp,
                        backend,
                        settings,
                        cache,
                        f"{prefix}dominant-{safe}-{emotion}",
                        window_level,
                    )
                    rec = {**rec, "neutral_share": np.array(extra_s / (seconds + extra_s))}
                    out.append((f"dominant:{emotion}", rec))
            print(
                f"{speaker:14s} recordings {len(out):3d}  {time.perf_counter() - started:6.0f} s", flush=True
            )

        # Check: this script's plain path against ser_core.analyze on the first recordings.
        check = (
            None
            if window_level
            else check_against_analyze(
                args,
                data,
                speakers,
                labels,
                all_speakers,
                rng_seed=args.seed,
                tmp=tmp,
                settings=settings,
                backend=backend,
                n=args.check,
            )
        )
    print(f"[{mode}] analyze check: {check}", flush=True)

    return recs, chosen, check


def experiment(args, mode: str, data, backend, settings, started: float) -> dict:
    """Every recording's window vectors (`mode` "product_windows": as `analyze` computes them;
    "window_levelled": each window levelled alone), then every variant's heads and scores."""
    x_all = np.asarray(data.vectors, dtype=np.float64)
    speakers = np.array(data.speakers)
    labels = np.array(data.labels)
    corpora = np.array([it.corpus for it in data.items])

    variants = [Variant("plain", "plain"), Variant("speaker_z", "z"), Variant("speaker_centre", "centre")]
    variants += [Variant("speaker_scale", "scale")]
    variants += [Variant(f"shrunk_k{int(k)}", "shrunk", k) for k in args.k]

    recs, chosen, check = build_all(args, mode, data, backend, settings, started)

    # Pass 2: heads and scores.
    def heads_for(train: np.ndarray) -> dict[str, tuple]:
        pop = population_of(x_all[train])
        out = {}
        for v in variants:
            z = v.apply(x_all[train], speakers[train], pop)
            out[v.name] = (v, _fit(z, list(labels[train]), CLASSIFIER, {}), pop)
        return out

    def evaluate(heads: dict, rec: dict) -> dict[str, list]:
        out = {}
        if len(rec["vectors"]) == 0:
            return {name: [] for name in names}
        probs = {}
        for name, (v, fitted, pop) in heads.items():
            z = v.apply(rec["vectors"], np.zeros(len(rec["vectors"]), int), pop)
            probs[name] = fitted.predict_proba(z)
            out[name] = segments_of(rec, probs[name], fitted.labels, settings)
        assert heads["plain"][1].labels == heads["speaker_z"][1].labels
        out["blend_plain_z"] = segments_of(
            rec, (probs["plain"] + probs["speaker_z"]) / 2, heads["plain"][1].labels, settings
        )
        return out

    names = [v.name for v in variants] + ["blend_plain_z"]
    mixed = {n: Tally() for n in names}
    single = {n: Tally() for n in names}
    single30 = {n: Tally() for n in names}
    dominant = {n: Tally() for n in names}
    dominant_parts = {n: Tally() for n in names}
    utter = {n: Tally() for n in names}
    single_label_share = {n: {} for n in names}  # emotion -> predicted-label frame counts (>= 30 s)
    n_single = {"ge30": 0, "ge15": 0}
    for speaker in chosen:
        test = speakers == speaker
        heads = heads_for(~test)
        corpus = corpora[test][0]
        utterance_level(heads, x_all[test], list(labels[test]), ["overall", corpus], utter)
        for kind, rec in recs[speaker]:
            segs = evaluate(heads, rec)
            long_enough = float(rec["seconds"]) >= args.single_min_seconds
            if kind.startswith("single"):
                n_single["ge15"] += 1
                n_single["ge30"] += int(long_enough)
            for name in names:
                truth, pred = score(rec, segs[name])
                if kind == "mixed":
                    mixed[name].add(["overall", corpus], truth, pred)
                elif kind.startswith("single"):
                    emotion = kind.split(":")[1]
                    single[name].add(["overall", corpus, emotion], truth, pred)
                    if long_enough:
                        single30[name].add(["overall", corpus, emotion, f"{corpus}:{emotion}"], truth, pred)
                        counts = single_label_share[name].setdefault(emotion, {})
                        for p in pred:
                            counts[p] = counts.get(p, 0) + 1
                else:
                    emotion = kind.split(":")[1]
                    dominant[name].add(["overall", corpus, emotion], truth, pred)
                    t, p = np.array(truth), np.array(pred)
                    for part in ("dominant", "neutral"):
                        rows = (t == "neutral") if part == "neutral" else (t != "neutral")
                        dominant_parts[name].add([f"{part} frames"], list(t[rows]), list(p[rows]))
        print(f"scored {speaker:14s} {time.perf_counter() - started:6.0f} s", flush=True)

    # Leave one corpus out.
    loco_mixed = {n: Tally() for n in names}
    loco_single = {n: Tally() for n in names}
    loco_utter = {n: Tally() for n in names}
    for held in CORPORA:
        train = corpora != held
        heads = heads_for(train)
        for speaker in [s for s in chosen if s.startswith(held)]:
            test = speakers == speaker
            utterance_level(heads, x_all[test], list(labels[test]), ["overall", held], loco_utter)
            for kind, rec in recs[speaker]:
                if kind.startswith("dominant") or (
                    kind.startswith("single") and float(rec["seconds"]) < args.single_min_seconds
                ):
                    continue
                segs = evaluate(heads, rec)
                for name in names:
                    truth, pred = score(rec, segs[name])
                    if kind == "mixed":
                        loco_mixed[name].add(["overall", held], truth, pred)
                    else:
                        loco_single[name].add(["overall", held, kind.split(":")[1]], truth, pred)
        print(f"loco {held} {time.perf_counter() - started:6.0f} s", flush=True)

    report = {
        "features": mode,
        "speakers": "all 34" if args.speakers == "all" else f"every other ({len(chosen)})",
        "variants": {v.name: {"mode": v.mode, "k": v.k} for v in variants},
        "analyze_check": check,
        "mixed_loso": {n: mixed[n].report() for n in names},
        "utterance_loso": {n: utter[n].report() for n in names},
        "single_emotion_ge30s": {n: single30[n].report(with_uar=False) for n in names},
        "single_emotion_ge15s": {n: single[n].report(with_uar=False) for n in names},
        "single_emotion_ge30s_predicted_share": {
            n: {
                e: {
                    lab: round(c / sum(cnt.values()), 3)
                    for lab, c in sorted(cnt.items(), key=lambda kv: -kv[1])
                }
                for e, cnt in single_label_share[n].items()
            }
            for n in names
        },
        "n_single_recordings": n_single,
        "dominant_ge30s": {
            n: dominant[n].report(with_uar=False) | dominant_parts[n].report(with_uar=False) for n in names
        },
        "loco_mixed": {n: loco_mixed[n].report() for n in names},
        "loco_utterance": {n: loco_utter[n].report() for n in names},
        "loco_single_ge30s": {n: loco_single[n].report(with_uar=False) for n in names},
    }
    for n in names:
        m, s = report["mixed_loso"][n], report["single_emotion_ge30s"][n]
        print(
            f"[{mode}] {n:16s} mixed acc {m['overall']['frame_accuracy']:.3f} uar {m['overall']['frame_uar']:.3f} | "
            + " ".join(f"{c} {m[c]['frame_accuracy']:.3f}" for c in CORPORA if c in m)
            + f" | single>=30s {s['overall']['frame_accuracy']:.3f} | loco {report['loco_mixed'][n]['overall']['frame_accuracy']:.3f}"
        )
    return report


# --- the product's adapted head on a recording's own statistics (--per-recording) ----------------


class Head:
    """One way of classifying a recording's window vectors: `kind` "plain" (the product's plain head,
    raw windows), "adapted" (the product's per-corpus-trained head) or "speaker" (the head trained on
    speakers standardised by their own statistics); `stats` "none", "own" (the recording's
    `SourceStats.of`) or "shrunk" (its mean and variance blended with `target`'s,
    w = min(n / (n + k), cap), n the recording's windows)."""

    def __init__(
        self, name: str, kind: str, stats: str, k: float = 0.0, cap: float = 1.0, target: str = "pool"
    ):
        self.name, self.kind, self.stats, self.k, self.cap, self.target = name, kind, stats, k, cap, target

    def source(self, x: np.ndarray, targets: dict[str, tuple[np.ndarray, np.ndarray]]) -> SourceStats | None:
        if self.stats == "none":
            return None
        own = SourceStats.of(x)
        if self.stats == "own":
            return own
        w = min(len(x) / (len(x) + self.k), self.cap)
        mean, var = targets[self.target]
        mean = w * own.mean + (1 - w) * mean
        var = w * own.scale**2 + (1 - w) * var
        return SourceStats(mean, np.maximum(np.sqrt(var), FLOOR), len(x))

    def describe(self) -> dict:
        return {"head": self.kind, "stats": self.stats, "k": self.k, "cap": self.cap, "target": self.target}


def per_recording_heads(ks: list[float], caps: list[float]) -> list[Head]:
    heads = [
        Head("a_plain", "plain", "none"),
        Head("b_adapted_own", "adapted", "own"),
        Head("c_speaker_own", "speaker", "own"),
    ]
    for kind, short in (("adapted", "b"), ("speaker", "c")):
        for cap in caps:
            for k in ks:
                heads.append(Head(f"d_{short}_k{int(k)}_cap{cap:g}", kind, "shrunk", k, cap, "pool"))
    # the adapted head was trained on corpora standardised by their own statistics: also shrink
    # toward a typical training corpus's (the average of their means and variances)
    for cap in caps:
        heads.append(Head(f"d_b_k{int(ks[0])}_cap{cap:g}_corpus", "adapted", "shrunk", ks[0], cap, "corpus"))
    # the limit w = 0: the adapted head on a typical training corpus's statistics, none of the recording's
    heads.append(Head("b0_adapted_typical_corpus", "adapted", "shrunk", 0.0, 0.0, "corpus"))
    return heads


class FoldModels:
    """The fold's heads: `Trainer(..., corpus_norm=True).fit` exactly as `ser_core.training.api.train`
    builds `Normalised` (no training copies, corpora unweighted: the timeline benchmark's plain
    fit), and the per-speaker-trained head of `experiment` (variant "speaker_z")."""

    def __init__(self, data, x_all: np.ndarray, train: np.ndarray) -> None:
        speakers = np.array(data.speakers)
        labels = np.array(data.labels)
        corpora = np.array([it.corpus for it in data.items])
        self.normalised: Normalised = Trainer(data, [], CLASSIFIER, {}, False, True).fit(train)
        assert self.normalised.adapted is not None
        pop = population_of(x_all[train])
        z = Variant("speaker_z", "z").apply(x_all[train], speakers[train], pop)
        self.speaker = _fit(z, list(labels[train]), CLASSIFIER, {})
        assert self.speaker.labels == self.normalised.labels
        per_corpus = [population_of(x_all[train & (corpora == c)]) for c in sorted(set(corpora[train]))]
        self.targets = {
            "pool": pop,
            "corpus": (
                np.mean([m for m, _ in per_corpus], axis=0),
                np.mean([v for _, v in per_corpus], axis=0),
            ),
        }

    @property
    def labels(self) -> list[str]:
        return self.normalised.labels

    def proba(self, head: Head, x: np.ndarray) -> np.ndarray:
        source = head.source(x, self.targets)
        if head.kind == "plain":
            return self.normalised.predict_proba(x)
        if head.kind == "adapted":
            return self.normalised.predict_proba(x, source)
        return self.speaker.predict_proba(source.standardise(x))


def _accuracy(truth: list[str], pred: list[str]) -> float | None:
    if not truth:
        return None
    return float(np.mean(np.array(truth) == np.array(pred)))


def _loss_vs_plain(per_rec: dict[str, list[float | None]], names: list[str]) -> dict[str, dict]:
    """Per-recording frame accuracy minus the plain head's: mean, worst, 10th percentile, and the
    share of recordings that lose more than 0.10 / 0.20."""
    base = per_rec["a_plain"]
    out = {}
    for n in names:
        d = np.array(
            [v - b for v, b in zip(per_rec[n], base, strict=True) if v is not None and b is not None]
        )
        if len(d) == 0:
            continue
        out[n] = {
            "recordings": len(d),
            "mean_diff": round(float(d.mean()), 4),
            "worst_diff": round(float(d.min()), 4),
            "p10_diff": round(float(np.percentile(d, 10)), 4),
            "share_lose_gt_0.10": round(float(np.mean(d < -0.10)), 3),
            "share_lose_gt_0.20": round(float(np.mean(d < -0.20)), 3),
        }
    return out


def _worst_cells(report: dict[str, dict[str, dict]], names: list[str]) -> dict[str, dict]:
    """Each head's worst cell (corpus, emotion or corpus:emotion) against the plain head's."""
    out = {}
    for n in names:
        cells = [
            (round(report[n][c]["frame_accuracy"] - report["a_plain"][c]["frame_accuracy"], 4), c)
            for c in report[n]
            if c != "overall" and c in report["a_plain"]
        ]
        if cells:
            diff, cell = min(cells)
            out[n] = {"cell": cell, "diff": diff, "frame_accuracy": report[n][cell]["frame_accuracy"]}
    return out


def experiment_per_recording(args, data, backend, settings, started: float) -> dict:
    """(a) the plain head on raw windows, (b) the product's per-corpus-trained adapted head on the
    windows standardised by the recording's own statistics, (c) the per-speaker-trained head the
    same way, (d) (b) and (c) with the statistics shrunk toward the fold's training population with
    a cap on the recording's weight; the same recordings and scenarios as `experiment`."""
    mode = "product_windows"
    x_all = np.asarray(data.vectors, dtype=np.float64)
    speakers = np.array(data.speakers)
    corpora = np.array([it.corpus for it in data.items])
    heads = per_recording_heads(args.shrink_k, args.cap)
    names = [h.name for h in heads]
    recs, chosen, check = build_all(args, mode, data, backend, settings, started)

    def evaluate(models: FoldModels, rec: dict) -> dict[str, list]:
        if len(rec["vectors"]) == 0:
            return {n: [] for n in names}
        return {
            h.name: segments_of(rec, models.proba(h, rec["vectors"]), models.labels, settings) for h in heads
        }

    scen = ("mixed", "single_ge30s", "single_ge15s", "dominant_ge30s", "loco_mixed", "loco_single_ge30s")
    tallies = {sc: {n: Tally() for n in names} for sc in scen}
    dominant_parts = {n: Tally() for n in names}
    per_rec = {sc: {n: [] for n in names} for sc in scen}
    windows = {sc: [] for sc in scen}

    def add(sc: str, keys: list[str], rec: dict, segs: dict) -> None:
        windows[sc].append(len(rec["vectors"]))
        for n in names:
            truth, pred = score(rec, segs[n])
            tallies[sc][n].add(keys, truth, pred)
            per_rec[sc][n].append(_accuracy(truth, pred))
            if sc == "dominant_ge30s":
                t, p = np.array(truth), np.array(pred)
                for part in ("dominant", "neutral"):
                    rows = (t == "neutral") if part == "neutral" else (t != "neutral")
                    dominant_parts[n].add([f"{part} frames"], list(t[rows]), list(p[rows]))

    for speaker in chosen:
        test = speakers == speaker
        models = FoldModels(data, x_all, ~test)
        corpus = corpora[test][0]
        for kind, rec in recs[speaker]:
            segs = evaluate(models, rec)
            long_enough = float(rec["seconds"]) >= args.single_min_seconds
            if kind == "mixed":
                add("mixed", ["overall", corpus], rec, segs)
            elif kind.startswith("single"):
                emotion = kind.split(":")[1]
                add("single_ge15s", ["overall", corpus, emotion], rec, segs)
                if long_enough:
                    add("single_ge30s", ["overall", corpus, emotion, f"{corpus}:{emotion}"], rec, segs)
            else:
                emotion = kind.split(":")[1]
                add("dominant_ge30s", ["overall", corpus, emotion, f"{corpus}:{emotion}"], rec, segs)
        print(f"scored {speaker:14s} {time.perf_counter() - started:6.0f} s", flush=True)

    for held in CORPORA:
        models = FoldModels(data, x_all, corpora != held)
        for speaker in [s for s in chosen if s.startswith(held)]:
            for kind, rec in recs[speaker]:
                if kind.startswith("dominant") or (
                    kind.startswith("single") and float(rec["seconds"]) < args.single_min_seconds
                ):
                    continue
                segs = evaluate(models, rec)
                if kind == "mixed":
                    add("loco_mixed", ["overall", held], rec, segs)
                else:
                    emotion = kind.split(":")[1]
                    add("loco_single_ge30s", ["overall", held, emotion, f"{held}:{emotion}"], rec, segs)
        print(f"loco {held} {time.perf_counter() - started:6.0f} s", flush=True)

    report: dict = {
        "features": mode,
        "backend_model_id": backend.model_id,
        "speakers": "all 34" if args.speakers == "all" else f"every other ({len(chosen)})",
        "heads": {h.name: h.describe() for h in heads},
        "fold_models": "Trainer(data, copies=[], classifier='shrinkage_lda', balance_corpora=False, "
        "corpus_norm=True).fit(train) as ser_core.training.api.train builds Normalised: 'classifier' "
        "= (a), 'adapted' = (b); (c) the per-speaker-trained head of the speaker_z variant",
        "analyze_check": check,
    }
    for sc in scen:
        with_uar = sc in ("mixed", "loco_mixed")
        rep_sc = {n: tallies[sc][n].report(with_uar=with_uar) for n in names}
        if sc == "dominant_ge30s":
            rep_sc = {n: rep_sc[n] | dominant_parts[n].report(with_uar=False) for n in names}
        w = np.array(windows[sc])
        report[sc] = {
            "recordings": len(w),
            "windows_per_recording": {"min": int(w.min()), "median": float(np.median(w)), "max": int(w.max())}
            if len(w)
            else None,
            "frame": rep_sc,
            "per_recording_vs_plain": _loss_vs_plain(per_rec[sc], names),
            "worst_cell_vs_plain": _worst_cells(rep_sc, names),
        }
    print(f"{'head':26s} " + " ".join(f"{sc:>17s}" for sc in scen))
    for n in names:
        print(
            f"{n:26s} "
            + " ".join(
                f"{report[sc]['frame'][n]['overall']['frame_accuracy']:17.3f}"
                for sc in scen
                if report[sc]["recordings"]
            )
        )
    return report


def utterance_level(heads: dict, x: np.ndarray, truth: list[str], keys: list[str], tallies: dict) -> None:
    """Each clip of one held-out speaker alone (standardised by the statistics of all their clips)."""
    probs = {}
    for name, (v, fitted, pop) in heads.items():
        probs[name] = fitted.predict_proba(v.apply(x, np.zeros(len(x), int), pop))
    probs["blend_plain_z"] = (probs["plain"] + probs["speaker_z"]) / 2
    labels = heads["plain"][1].labels
    for name, p in probs.items():
        tallies[name].add(keys, truth, [labels[i] for i in p.argmax(axis=1)])


def _reference() -> dict | None:
    path = ROOT / "reports" / "timeline-fast.json"
    if not path.is_file():
        return None
    ref = json.loads(path.read_text())
    return {
        k: {"frame_accuracy": v["frame_accuracy"], "frame_uar": v["frame_uar"]}
        for k, v in [("overall", ref["overall"]), *ref["corpora"].items()]
    }


def check_against_analyze(
    args, data, speakers, labels, all_speakers, rng_seed, tmp, settings, backend, n
) -> dict:
    """The first `n` mixed recordings (first speaker in order) through `ser_core.analyze` with the
    plain fold model, and through this script's steps: are the segments the same?"""
    if n <= 0:
        return {"recordings": 0}
    rng = np.random.default_rng(rng_seed)
    same = total = 0
    max_diff = 0.0
    for speaker in all_speakers:
        test = speakers == speaker
        order = rng.permutation(np.flatnonzero(test))
        fitted = _fit(np.asarray(data.vectors)[~test], list(labels[~test]), CLASSIFIER, {})
        model_path = tmp / "fold.npz"
        Model(ModelMeta.for_backend(args.profile, backend, fitted.labels), fitted).save(model_path)
        clips = [(load_audio(data.items[i].path), data.items[i].label) for i in order]
        durations = [len(s) / SAMPLE_RATE + args.pause for s, _ in clips]
        for group in recordings(len(clips), durations, args.min_seconds):
            signal, _ = compose([clips[i] for i in group], args.pause)
            path = tmp / "check.wav"
            sf.write(path, signal, SAMPLE_RATE)
            result = ser_core.analyze(path, profile=args.profile, model=model_path, transcript=False)
            rec = embed_recording(path, backend, settings)
            ours = segments_of(rec, fitted.predict_proba(rec["vectors"]), fitted.labels, settings)
            a = [(s.label, s.start, s.end) for s in result.segments]
            b = [(s.label, s.start, s.end) for s in ours]
            total += 1
            if len(a) == len(b) and all(x[0] == y[0] for x, y in zip(a, b, strict=True)):
                same += 1
                max_diff = max(
                    [max_diff] + [max(abs(x[1] - y[1]), abs(x[2] - y[2])) for x, y in zip(a, b, strict=True)]
                )
            if total >= n:
                return {
                    "recordings": total,
                    "same_labels_and_count": same,
                    "max_boundary_diff_s": round(max_diff, 4),
                }
    return {"recordings": total, "same_labels_and_count": same, "max_boundary_diff_s": round(max_diff, 4)}


if __name__ == "__main__":
    main()
