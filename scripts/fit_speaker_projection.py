"""Fit the built-in diarizer's speaker projection on the corpora (ships as
src/ser_core/builtin_plugins/weights/ge2e-lda.npz).

    python scripts/fit_speaker_projection.py [--corpora emodb emovo ravdess ased] [--dims 64] [--out PATH]

Every clip's speech (its extent, no padding) is cut into the diarizer's own windows (1.6 s every
0.4 s, each at -30 dBFS) and embedded by its GE2E encoder; a linear discriminant analysis
(scikit-learn, eigen solver, automatic shrinkage) with each corpus's speaker as the class keeps
the `--dims` directions that best separate speakers relative to how much one speaker varies, and
a speaker's clips span every emotion of the corpus, so the directions emotions move a voice
along are the ones it gives least weight. The projection is at most (speakers - 1) wide.

`fit(corpora)` is what the speaker benchmark calls per fold, so no fold is scored with a
projection fit on its own speakers. Window vectors are cached in the cache dir (npz).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from corpora import corpora_dir

from ser_core.atomic_files import atomic_write_bytes
from ser_core.builtin_plugins import speakers as ge2e
from ser_core.contract.signals import speech_extent
from ser_core.pipeline.audio import load_audio
from ser_core.settings import get_settings
from ser_core.training.datasets import load_dataset

CORPORA = ("emodb", "emovo", "ravdess", "ased")


def clip_windows(corpus: str) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, speakers) of every window of every clip of `corpus` (speakers as corpus:id)."""
    key = hashlib.sha256(
        f"{ge2e.SHA256}{ge2e.WINDOW}{ge2e.HOP}{ge2e.LEVEL_DBFS}{corpus}".encode()
    ).hexdigest()[:16]
    cache = get_settings().cache_dir / "speaker-windows" / f"{corpus}-{key}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            return data["vectors"], data["speakers"]
    diarizer = ge2e.GE2E(get_settings(), projection=None)
    vectors, speakers = [], []
    for item in load_dataset(corpora_dir() / corpus):
        signal = load_audio(item.path)
        start, end = speech_extent(signal, pad=0.0)
        _, found = diarizer.embed(signal, np.array([[start, end]]))
        vectors.append(found)
        speakers += [f"{corpus}:{item.speaker}"] * len(found)
    out = np.concatenate(vectors).astype(np.float32), np.array(speakers)
    buffer = io.BytesIO()
    np.savez(buffer, vectors=out[0], speakers=out[1])
    atomic_write_bytes(cache, buffer.getvalue())
    return out


def fit(corpora: tuple[str, ...] | list[str], dims: int = 64) -> ge2e.Projection:
    """The projection fit on the clips of `corpora`."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    parts = [clip_windows(corpus) for corpus in corpora]
    x = np.concatenate([v for v, _ in parts])
    speakers = np.concatenate([s for _, s in parts])
    n_speakers = len(set(speakers))
    k = min(dims, n_speakers - 1)
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(x, speakers)
    meta = {
        "corpora": list(corpora),
        "speakers": n_speakers,
        "windows": len(x),
        "dims": k,
        "method": "lda-eigen-shrinkage-auto",
    }
    return ge2e.Projection(x.mean(axis=0).astype(np.float32), lda.scalings_[:, :k].astype(np.float32), meta)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpora", nargs="+", default=list(CORPORA))
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument("--out", type=Path, default=ge2e.PROJECTION)
    args = parser.parse_args()
    projection = fit(args.corpora, args.dims)
    projection.save(args.out)
    print(args.out, projection.meta)


if __name__ == "__main__":
    main()
