"""Who speaks when, on conversations composed from the corpora: the first measurements for issue 14,
torch prototypes (the product's diarizer is measured by benchmark_speakers.py).

    pip install torch==2.13.0 resemblyzer pyannote.metrics
    python scripts/speaker_prototypes.py [--conversations 12] [--seed 0] [--whisper]

Conversations of 2, 3 and 4 speakers (`--conversations` of each) take turns of 1-4 clips, with
pauses of 0.2-1.0 s, 60-180 s long; half draw all speakers from one corpus (one microphone and
language, often the same gender), half from any corpus. The reference is each clip's speech extent,
labelled with its speaker.

The diarizer measured here is a prototype: speech regions from the product's VAD, 1.6 s windows
every 0.4 s inside them, each embedded by the GE2E speaker encoder whose weights the `resemblyzer`
wheel ships (`pretrained.pt`, Apache-2.0; run here with torch, without importing resemblyzer),
and agglomerative clustering (scikit-learn, cosine distance, average linkage): to a distance
threshold ("auto", chosen on the even-numbered conversations, reported on the odd ones) or to the
true number of speakers ("oracle N"). Metrics: diarization error rate (pyannote.metrics, collar
0.25 s, no overlap in these recordings), speaker-count accuracy, and the real-time factor of
embedding + clustering.

Variants: `plain`; `level` (each window at -30 dBFS RMS before the encoder, as resemblyzer's own
preprocessing does); `level+smooth` (and each window's label the majority of the 5 around it);
`level+region` (one embedding per speech region, the mean of its windows, clustered); with
`level+spectral` (spectral clustering on a pruned cosine affinity, the count from the eigengap:
the same for every threshold column); with `--whisper`, `whisper` (the accurate profile's encoder states pooled per window, centred per
conversation; needs the hf plugin).

Writes reports/speaker-prototypes.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from corpora import ROOT, corpora_dir

from ser_core.atomic_files import atomic_write_text
from ser_core.contract.signals import SAMPLE_RATE, speech_extent
from ser_core.pipeline.audio import load_audio
from ser_core.pipeline.vad import speech_regions
from ser_core.settings import get_settings
from ser_core.training.datasets import load_dataset

CORPORA = ("emodb", "emovo", "ravdess", "ased")
WINDOW, HOP, STEP = 1.6, 0.4, 0.1  # seconds: encoder window, window hop, labelling resolution
VARIANTS = ("plain", "level", "level+smooth", "level+region", "level+spectral")


class GE2E:
    """The GE2E speaker encoder (3-layer LSTM over 40 mel bands, 256-d, L2-normalised) with the
    weights of the resemblyzer wheel."""

    def __init__(self) -> None:
        import torch

        spec = importlib.util.find_spec("resemblyzer")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("pip install resemblyzer (for its pretrained.pt)")
        weights = Path(spec.submodule_search_locations[0]) / "pretrained.pt"
        state = torch.load(weights, map_location="cpu", weights_only=True)["model_state"]
        self.torch = torch
        self.lstm = torch.nn.LSTM(40, 256, 3, batch_first=True)
        self.linear = torch.nn.Linear(256, 256)
        self.lstm.load_state_dict({k.removeprefix("lstm."): v for k, v in state.items() if k.startswith("lstm.")})
        self.linear.load_state_dict({k.removeprefix("linear."): v for k, v in state.items() if k.startswith("linear.")})
        self.lstm.eval()

    def mel(self, signal: np.ndarray) -> np.ndarray:
        import librosa

        power = librosa.feature.melspectrogram(y=signal, sr=SAMPLE_RATE, n_fft=400, hop_length=160, n_mels=40)
        return power.astype(np.float32).T  # (frames, 40), as resemblyzer computes it

    def embed(self, mels: np.ndarray) -> np.ndarray:
        """(n, frames, 40) -> (n, 256) unit vectors."""
        with self.torch.no_grad():
            _, (hidden, _) = self.lstm(self.torch.from_numpy(mels))
            raw = self.torch.relu(self.linear(hidden[-1]))
            return (raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-9)).numpy()


def compose(pool: dict[str, list], n_speakers: int, rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """A conversation and its reference [(start, end, speaker)]."""
    if rng.random() < 0.5:
        corpus = rng.choice([c for c in CORPORA if len({s for s, _ in pool[c]}) >= n_speakers])
        candidates = sorted({s for s, _ in pool[corpus]})
        speakers = list(rng.choice(candidates, n_speakers, replace=False))
        clips = {s: [p for sp, p in pool[corpus] if sp == s] for s in speakers}
    else:
        everyone = sorted({s for c in CORPORA for s, _ in pool[c]})
        speakers = list(rng.choice(everyone, n_speakers, replace=False))
        clips = {s: [p for c in CORPORA for sp, p in pool[c] if sp == s] for s in speakers}
    target = rng.uniform(60.0, 180.0)
    parts, reference, now, last = [], [], 0.0, None
    while now < target:
        speaker = rng.choice([s for s in speakers if s != last] or speakers)
        for path in rng.choice(clips[speaker], int(rng.integers(1, 5))):
            pause = np.zeros(int(rng.uniform(0.2, 1.0) * SAMPLE_RATE), np.float32)
            clip = load_audio(path)
            start, end = speech_extent(clip, pad=0.0)
            reference.append((now + len(pause) / SAMPLE_RATE + start, now + len(pause) / SAMPLE_RATE + end, speaker))
            parts += [pause, clip]
            now += (len(pause) + len(clip)) / SAMPLE_RATE
        last = speaker
    return np.concatenate(parts), reference


def windows(signal: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """(n, 2) windows of WINDOW s every HOP s inside each speech region (one for a short region)."""
    out = []
    duration = len(signal) / SAMPLE_RATE
    for start, end in regions:
        if end - start <= WINDOW:
            middle = (start + end) / 2
            out.append((max(0.0, middle - WINDOW / 2), min(duration, middle + WINDOW / 2)))
            continue
        out += [(s, s + WINDOW) for s in np.arange(start, end - WINDOW + 1e-9, HOP)]
    return np.array(out).reshape(-1, 2)


def hypothesis(regions: np.ndarray, spans: np.ndarray, labels: np.ndarray) -> list:
    """Speech in STEP s steps, each given the label of the window centred nearest to it, merged."""
    centres = spans.mean(axis=1)
    out: list = []
    for start, end in regions:
        for t in np.arange(start, end, STEP):
            label = f"S{labels[np.argmin(np.abs(centres - (t + STEP / 2)))] + 1}"
            if out and out[-1][2] == label and abs(out[-1][1] - t) < 1e-6:
                out[-1] = (out[-1][0], min(t + STEP, end), label)
            else:
                out.append((t, min(t + STEP, end), label))
    return out


def smoothed(labels: np.ndarray, spans: np.ndarray, width: int = 5) -> np.ndarray:
    """Each window's label replaced by the most common one among the `width` windows around it,
    within runs of overlapping windows (one speech region)."""
    out = labels.copy()
    breaks = np.flatnonzero(spans[1:, 0] >= spans[:-1, 1]) + 1
    for run in np.split(np.arange(len(labels)), breaks):
        for i, index in enumerate(run):
            near = labels[run[max(0, i - width // 2) : i + width // 2 + 1]]
            out[index] = np.bincount(near).argmax()
    return out


def by_region(vectors: np.ndarray, spans: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """One unit vector per run of overlapping windows (a speech region): the mean of its windows;
    and the window indices of each run, to give every window its region's label."""
    breaks = np.flatnonzero(spans[1:, 0] >= spans[:-1, 1]) + 1
    runs = np.split(np.arange(len(vectors)), breaks)
    means = np.stack([vectors[run].mean(axis=0) for run in runs])
    return means / np.linalg.norm(means, axis=1, keepdims=True).clip(1e-9), runs


def spectral(vectors: np.ndarray, n: int | None, keep: float = 0.3, most: int = 8) -> np.ndarray:
    """Spectral clustering of unit vectors (scikit-learn) on a pruned cosine affinity: each row keeps
    its `keep` share of strongest links, symmetrised; without `n` the count is the largest eigengap
    of the normalised Laplacian among the first `most` eigenvalues."""
    from scipy.sparse.csgraph import laplacian
    from sklearn.cluster import SpectralClustering

    if len(vectors) < 3:
        return np.zeros(len(vectors), int)
    affinity = np.clip(vectors @ vectors.T, 0.0, None)
    cut = np.quantile(affinity, 1 - keep, axis=1, keepdims=True)
    affinity = np.where(affinity >= cut, affinity, 0.0)
    affinity = np.maximum(affinity, affinity.T)
    if n is None:
        eigen = np.sort(np.linalg.eigvalsh(laplacian(affinity, normed=True)))[: most + 1]
        n = int(np.argmax(np.diff(eigen))) + 1
    if n < 2:
        return np.zeros(len(vectors), int)
    return SpectralClustering(n_clusters=n, affinity="precomputed", random_state=0).fit_predict(affinity)


def at_level(piece: np.ndarray, dbfs: float = -30.0) -> np.ndarray:
    """The window scaled to `dbfs` RMS, as resemblyzer normalises its input."""
    rms = float(np.sqrt(np.mean(np.square(piece)))) if len(piece) else 0.0
    return piece * (10 ** (dbfs / 20) / rms) if rms > 1e-6 else piece


def annotation(turns: list):
    from pyannote.core import Annotation, Segment

    found = Annotation()
    for start, end, label in turns:
        found[Segment(float(start), float(end))] = str(label)
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=12, help="per number of speakers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--whisper", action="store_true", help="also the accurate profile's Whisper-encoder states")
    args = parser.parse_args()
    from pyannote.metrics.diarization import DiarizationErrorRate
    from sklearn.cluster import AgglomerativeClustering

    root, settings, encoder = corpora_dir(), get_settings(), GE2E()
    variants = VARIANTS + (("whisper",) if args.whisper else ())
    whisper = None
    if args.whisper:
        from ser_core.plugins.lookup import get_backend

        whisper = get_backend("accurate")
    pool = {c: [(str(i.speaker), i.path) for i in load_dataset(root / c)] for c in CORPORA}
    rng = np.random.default_rng(args.seed)
    thresholds = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    rows = []
    for n in (2, 3, 4):
        for k in range(args.conversations):
            signal, reference = compose(pool, n, rng)
            began = time.perf_counter()
            regions = speech_regions(signal, settings.vad, settings.vad_merge_gap)
            spans = windows(signal, regions)
            size = int(WINDOW * SAMPLE_RATE)  # windows at the end of the recording padded with silence
            cut = [signal[int(a * SAMPLE_RATE) : int(a * SAMPLE_RATE) + size] for a, _ in spans]
            cut = [np.pad(piece, (0, size - len(piece))) for piece in cut]
            embedded = encoder.embed(np.stack([encoder.mel(piece) for piece in cut]))
            cost = time.perf_counter() - began
            levelled = encoder.embed(np.stack([encoder.mel(at_level(piece)) for piece in cut]))
            row = {"speakers": n, "seconds": round(len(signal) / SAMPLE_RATE, 1), "windows": len(spans), "dev": k % 2 == 0}
            truth = annotation(reference)
            regional, runs = by_region(levelled, spans)
            candidates = [("plain", embedded, False), ("level", levelled, False), ("level+smooth", levelled, True), ("level+region", regional, False)]
            if whisper is not None:  # windows pooled from the encoder states, centred per conversation
                states = whisper.embed_windows(whisper.frames(signal), spans)
                centred = states - states.mean(axis=0)
                candidates.append(("whisper", centred / np.linalg.norm(centred, axis=1, keepdims=True).clip(1e-9), False))
            for variant, labels in (("level+spectral", spectral(levelled, n)),):
                auto = spectral(levelled, None)
                row[variant] = {}
                for name, found in [("oracle", labels)] + [(f"t{t}", auto) for t in thresholds]:
                    der = DiarizationErrorRate(collar=0.25, skip_overlap=True)
                    row[variant][name] = {
                        "der": float(der(truth, annotation(hypothesis(regions, spans, found)))),
                        "count": len(set(found)),
                    }
            for variant, vectors, smooth in candidates:
                for name, clusterer in [("oracle", AgglomerativeClustering(n_clusters=n, metric="cosine", linkage="average"))] + [
                    (f"t{t}", AgglomerativeClustering(n_clusters=None, distance_threshold=t, metric="cosine", linkage="average"))
                    for t in thresholds
                ]:
                    t0 = time.perf_counter()
                    labels = clusterer.fit_predict(vectors) if len(vectors) > 1 else np.zeros(len(vectors), int)
                    if variant == "level+region":  # back from regions to their windows
                        labels = np.concatenate([np.full(len(run), label) for run, label in zip(runs, labels, strict=True)])
                    if smooth:
                        labels = smoothed(labels, spans)
                    der = DiarizationErrorRate(collar=0.25, skip_overlap=True)
                    row.setdefault(variant, {})[name] = {
                        "der": float(der(truth, annotation(hypothesis(regions, spans, labels)))),
                        "count": len(set(labels)),
                    }
                    if name == "oracle" and variant == "plain":
                        row["rtf"] = (cost + time.perf_counter() - t0) / (len(signal) / SAMPLE_RATE)
            rows.append(row)
            print(n, k, row["seconds"], {v: round(row[v]["oracle"]["der"], 3) for v in variants}, flush=True)
    summary: dict = {"rtf": float(np.mean([r["rtf"] for r in rows]))}
    for variant in variants:
        best = min(thresholds, key=lambda t, v=variant: np.mean([r[v][f"t{t}"]["der"] for r in rows if r["dev"]]))
        found: dict = {"threshold_chosen_on_dev": best}
        for n in (2, 3, 4):
            every = [r[variant] for r in rows if r["speakers"] == n]
            test = [r[variant] for r in rows if r["speakers"] == n and not r["dev"]]
            found[str(n)] = {
                "der_oracle_n_all": float(np.mean([r["oracle"]["der"] for r in every])),
                "der_oracle_n_test": float(np.mean([r["oracle"]["der"] for r in test])),
                "der_auto_test": float(np.mean([r[f"t{best}"]["der"] for r in test])),
                "count_right_auto_test": float(np.mean([r[f"t{best}"]["count"] == n for r in test])),
            }
        summary[variant] = found
    print(json.dumps(summary, indent=2))
    atomic_write_text(ROOT / "reports" / "speaker-prototypes.json", json.dumps({"summary": summary, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
