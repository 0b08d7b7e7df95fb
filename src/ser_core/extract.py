"""Utterance vectors for many files: parallel workers and a content-addressed feature cache.

A cache entry is keyed by the sha256 of the file's bytes and of the backend's id, model id and
settings, so a second run over the same corpus (training, evaluation) does not re-extract, and
changing any of them never reuses stale features.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ser_core.audio import load_audio
from ser_core.backend import EmbeddingBackend, get_backend_by_id
from ser_core.errors import SerError
from ser_core.io import atomic_write_bytes
from ser_core.settings import get_settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Extracted:
    """Vectors in input order; `failures` maps an input index to its one-line error."""

    vectors: np.ndarray
    ok: np.ndarray
    failures: dict[int, str]
    cache_hits: int


def backend_fingerprint(backend: EmbeddingBackend) -> str:
    spec = {
        "backend": backend.backend_id,
        "model": backend.model_id,
        "config": backend.config(),
        "dim": backend.dim,
        "utterance": "speech-extent-40dB",  # how `embed` pools (see ser_core.vad.speech_extent)
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _cache_path(cache_dir: Path, backend: EmbeddingBackend, data: bytes) -> Path:
    key = hashlib.sha256(hashlib.sha256(data).digest() + backend_fingerprint(backend).encode()).hexdigest()
    return cache_dir / "features" / backend.backend_id / key[:2] / f"{key}.npy"


def _one(backend: EmbeddingBackend, path: str, cache_dir: Path | None) -> tuple[np.ndarray, bool]:
    cached = None
    if cache_dir is not None:
        try:
            data = Path(path).read_bytes()
        except OSError:
            data = None  # load_audio below reports the cause
        if data is not None:
            cached = _cache_path(cache_dir, backend, data)
            if cached.is_file():
                try:
                    vector = np.load(cached, allow_pickle=False)
                    if vector.shape == (backend.dim,):
                        return vector, True
                except (OSError, ValueError):
                    pass  # a damaged entry is recomputed and replaced
    vector = backend.embed(load_audio(path)).astype(np.float32)
    if cached is not None:
        buffer = io.BytesIO()
        np.save(buffer, vector, allow_pickle=False)
        try:
            atomic_write_bytes(cached, buffer.getvalue())
        except SerError as exc:
            log.warning("feature cache not written: %s", exc)
    return vector, False


_worker_backend: EmbeddingBackend | None = None


def _init_worker(backend_id: str) -> None:
    global _worker_backend
    _worker_backend = get_backend_by_id(backend_id)


def _work(args: tuple[int, str, Path | None]) -> tuple[int, np.ndarray | None, bool, str | None]:
    index, path, cache_dir = args
    assert _worker_backend is not None
    try:
        vector, hit = _one(_worker_backend, path, cache_dir)
        return index, vector, hit, None
    except SerError as exc:
        return index, None, False, str(exc)


def extract(
    paths: Sequence[str | Path],
    backend: EmbeddingBackend,
    jobs: int = 1,
    cache: bool | None = None,
    progress: Callable[[int], None] | None = None,
) -> Extracted:
    """Utterance vectors of `paths`; bad files are recorded in `failures`, never fatal."""
    settings = get_settings()
    use_cache = settings.feature_cache if cache is None else cache
    cache_dir = settings.cache_dir if use_cache else None
    vectors = np.zeros((len(paths), backend.dim), np.float32)
    ok = np.zeros(len(paths), bool)
    failures: dict[int, str] = {}
    hits = 0
    tasks = [(i, str(p), cache_dir) for i, p in enumerate(paths)]
    if jobs > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(
            max_workers=jobs, initializer=_init_worker, initargs=(backend.backend_id,)
        ) as pool:
            results = pool.map(_work, tasks, chunksize=8)
            hits = _gather(results, vectors, ok, failures, progress)
    else:
        global _worker_backend
        _worker_backend = backend
        hits = _gather(map(_work, tasks), vectors, ok, failures, progress)
    return Extracted(vectors, ok, failures, hits)


def _gather(
    results: Iterable[tuple[int, np.ndarray | None, bool, str | None]],
    vectors: np.ndarray,
    ok: np.ndarray,
    failures: dict[int, str],
    progress: Callable[[int], None] | None,
) -> int:
    hits = 0
    for index, vector, hit, error in results:
        if error is None:
            vectors[index], ok[index] = vector, True
            hits += hit
        else:
            failures[index] = error
        if progress is not None:
            progress(1)
    return hits
