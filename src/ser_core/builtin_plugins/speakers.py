"""The built-in diarizer "ge2e": 1.6 s windows of speech, each set to -30 dBFS and described by
the GE2E speaker encoder (Resemblyzer's weights, Apache-2.0, exported to ONNX by
scripts/export_ge2e.py and run with onnxruntime: no torch needed), projected by a linear
discriminant fit on the training corpora's speakers (`ge2e-lda.npz`, scripts/fit_speaker_projection.py:
it keeps what tells speakers apart and drops much of what one voice's emotions change), and
clustered by scikit-learn's agglomerative clustering (cosine distance, average linkage) to the
given number of speakers or to a distance threshold.

docs/performance.md ("Speakers") has the measurements behind each choice.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ser_core.atomic_files import atomic_write_bytes
from ser_core.contract.diarizer import Diarizer
from ser_core.contract.hookspecs import hookimpl
from ser_core.contract.signals import SAMPLE_RATE
from ser_core.errors import DiarizerError
from ser_core.settings import Settings

WEIGHTS = Path(__file__).parent / "weights" / "ge2e.onnx"
SHA256 = "6135f616f307c7ea9e3bcc84cb7587119fe65fdcbbee1a272451d21e38f9a142"
PROJECTION = Path(__file__).parent / "weights" / "ge2e-lda.npz"
PROJECTION_FORMAT = "ser_core.speaker_projection/1"
#: Each window's RMS level before the encoder, as Resemblyzer normalises its input.
LEVEL_DBFS = -30.0
N_FFT, FFT_HOP = 400, 160  # 25 ms every 10 ms: the encoder's training front end
WINDOW, HOP = 1.6, 0.4  # seconds: one vector per window, windows every HOP inside speech
#: Cosine distance (between projected vectors) under which clusters merge when the number of
#: speakers is estimated.
THRESHOLD = 0.8
#: When the number of speakers is estimated, a cluster with less than this share of the speech
#: joins its nearest neighbour.
MIN_SHARE = 0.0
#: Agglomerative clustering holds all pairwise distances: beyond this many vectors (about 13 min
#: of speech) a spread sample is clustered and every vector joins its nearest cluster centre.
MAX_CLUSTERED = 2000
BATCH = 64


def windows(speech: np.ndarray, duration: float) -> np.ndarray:
    """(n, 2) spans: WINDOW s every HOP s inside each speech region; one centred window (cut to
    the recording) for a region shorter than WINDOW."""
    out: list[tuple[float, float]] = []
    for start, end in np.asarray(speech, dtype=float).reshape(-1, 2):
        if end - start <= WINDOW:
            middle = (start + end) / 2
            out.append((max(0.0, middle - WINDOW / 2), min(duration, middle + WINDOW / 2)))
        else:
            out += [(s, s + WINDOW) for s in np.arange(start, end - WINDOW + 1e-9, HOP)]
    return np.array(out, dtype=float).reshape(-1, 2)


def rows_at_rms_level(pieces: np.ndarray) -> np.ndarray:
    """Each row scaled to LEVEL_DBFS RMS, as Resemblyzer prepares its input (silent rows left alone;
    not `pipeline.audio.at_level`, which sets the level of the speech frames only)."""
    rms = np.sqrt(np.mean(np.square(pieces, dtype=np.float64), axis=1, keepdims=True))
    gain = np.where(rms > 1e-6, 10 ** (LEVEL_DBFS / 20) / np.maximum(rms, 1e-6), 1.0)
    return (pieces * gain).astype(np.float32)


def power_spectra(pieces: np.ndarray) -> np.ndarray:
    """(n, frames, 201) power spectra of equal-length pieces: a periodic Hann window of N_FFT
    every FFT_HOP samples, centred with zero padding (librosa's `stft` defaults)."""
    from scipy.signal import get_window

    padded = np.pad(pieces, ((0, 0), (N_FFT // 2, N_FFT // 2)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT, axis=1)[:, ::FFT_HOP]
    spectrum = np.fft.rfft(frames * get_window("hann", N_FFT).astype(np.float32), axis=-1)
    return (np.abs(spectrum) ** 2).astype(np.float32)


@dataclass(frozen=True)
class Projection:
    """projected = unit((vector - mean) @ matrix), with what it was fit on."""

    mean: np.ndarray
    matrix: np.ndarray
    meta: dict[str, Any]

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        out = (np.asarray(vectors, dtype=np.float32) - self.mean) @ self.matrix
        return out / np.linalg.norm(out, axis=1, keepdims=True).clip(1e-9)

    def save(self, path: Path) -> None:
        """Plain arrays and a JSON string: loadable without pickle; written atomically."""
        meta = dict(self.meta, format=PROJECTION_FORMAT, encoder_sha256=SHA256)
        buffer = io.BytesIO()
        np.savez(
            buffer,
            mean=self.mean.astype(np.float32),
            matrix=self.matrix.astype(np.float32),
            meta=np.array(json.dumps(meta)),
        )
        atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> Projection:
        """Fail closed: another format, another encoder, or arrays that do not fit."""
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                mean, matrix = data["mean"], data["matrix"]
        except (OSError, KeyError, ValueError) as exc:
            raise DiarizerError(f"{path}: cannot read the speaker projection ({exc})") from None
        if meta.get("format") != PROJECTION_FORMAT or meta.get("encoder_sha256") != SHA256:
            raise DiarizerError(f"{path}: the speaker projection was made for another encoder or format")
        if (
            mean.shape != (256,)
            or matrix.ndim != 2
            or matrix.shape[0] != 256
            or not np.isfinite(matrix).all()
        ):
            raise DiarizerError(f"{path}: the speaker projection has shapes {mean.shape}, {matrix.shape}")
        return cls(mean, matrix, meta)


class GE2E(Diarizer):
    name = "ge2e"
    model_id = "resemblyzer-ge2e"

    def __init__(self, settings: Settings, projection: Path | None = PROJECTION) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise DiarizerError(
                "the ge2e diarizer needs onnxruntime: pip install onnxruntime (or run with --speakers off)"
            ) from None
        try:
            data = WEIGHTS.read_bytes()
        except OSError as exc:
            raise DiarizerError(
                f"{WEIGHTS}: cannot read the speaker encoder ({exc.strerror or exc})"
            ) from None
        if hashlib.sha256(data).hexdigest() != SHA256:
            raise DiarizerError(
                f"{WEIGHTS}: the speaker encoder's checksum does not match; reinstall ser-core"
            )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = settings.whisper_threads or 0
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        #: None: cluster the encoder's vectors as they are (fitting a projection starts there; the
        #: benchmark's per-fold projections replace it, so no fold is scored with a projection fit
        #: on its own speakers).
        self.projection = None if projection is None else Projection.load(projection)
        self.threshold, self.min_share = THRESHOLD, MIN_SHARE

    def embed(self, signal: np.ndarray, speech: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        spans = windows(speech, len(signal) / SAMPLE_RATE)
        size = int(WINDOW * SAMPLE_RATE)
        vectors = []
        for first in range(0, len(spans), BATCH):
            batch = np.zeros((len(spans[first : first + BATCH]), size), np.float32)
            for row, (start, _) in enumerate(spans[first : first + BATCH]):
                piece = signal[int(start * SAMPLE_RATE) : int(start * SAMPLE_RATE) + size]
                batch[row, : len(piece)] = piece  # a window past the end is padded with silence
            vectors.append(self.session.run(None, {"power": power_spectra(rows_at_rms_level(batch))})[0])
        return spans, np.concatenate(vectors) if vectors else np.zeros((0, 256), np.float32)

    def assign(self, vectors: np.ndarray, speakers: int | None) -> np.ndarray:
        from sklearn.cluster import AgglomerativeClustering

        if len(vectors) < 2 or speakers == 1:
            return np.zeros(len(vectors), int)
        if self.projection is not None:
            vectors = self.projection.apply(vectors)
        else:
            vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-9)
        sample = np.unique(np.linspace(0, len(vectors) - 1, min(len(vectors), MAX_CLUSTERED)).astype(int))
        if speakers is not None and speakers >= len(sample):
            return np.arange(len(vectors)) % speakers
        clustering = AgglomerativeClustering(
            n_clusters=speakers,
            distance_threshold=None if speakers else self.threshold,
            metric="cosine",
            linkage="average",
        )
        labels = clustering.fit_predict(vectors[sample])
        if speakers is None:
            labels = _without_small(vectors[sample], labels, self.min_share)
        if len(sample) == len(vectors):
            return labels
        return np.argmax(vectors @ _centres(vectors[sample], labels).T, axis=1)


def _centres(vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The unit mean vector of each cluster, in label order 0..max."""
    centres = np.stack([vectors[labels == k].mean(axis=0) for k in range(labels.max() + 1)])
    return centres / np.linalg.norm(centres, axis=1, keepdims=True).clip(1e-9)


def _without_small(vectors: np.ndarray, labels: np.ndarray, min_share: float) -> np.ndarray:
    """Clusters holding less than `min_share` of the vectors joined to the nearest larger one:
    a few odd windows (a laugh, a shout) are not a speaker of their own."""
    counts = np.bincount(labels)
    large = np.flatnonzero(counts >= min_share * len(labels))
    if len(large) == 0 or len(large) == len(counts):
        return labels
    nearest = large[np.argmax(vectors @ _centres(vectors, labels)[large].T, axis=1)]
    kept = np.where(np.isin(labels, large), labels, nearest)
    return np.unique(kept, return_inverse=True)[1]


@hookimpl
def ser_register_diarizers(register):
    register(
        GE2E.name,
        GE2E,
        description="GE2E speaker encoder (Resemblyzer's weights, ONNX), LDA projection, agglomerative clustering",
    )
