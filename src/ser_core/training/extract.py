"""Utterance vectors for many files: parallel workers and a content-addressed feature cache.

A cache entry is keyed by the sha256 of the file's bytes and of the backend's id, model id and
settings, so a second run over the same corpus (training, evaluation) does not re-extract, and
changing any of them never reuses stale features.

`copy=Copy(k)` (k >= 1) gives the vectors of each file's k-th training copy instead: the file sent
through a random recording channel (`ser_core.training.channels.training_copies`), or with kind "crop" a
random 1-2 s of its speech (`ser_core.training.channels.speech_crop`), seeded by its bytes, kind and k.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ser_core.atomic_files import atomic_write_bytes
from ser_core.contract.backend import EmbeddingBackend
from ser_core.errors import DatasetError, SerError
from ser_core.models.adaptation import MAX_FILES, MIN_FILES, SourceStats
from ser_core.pipeline.audio import load_audio
from ser_core.plugins.lookup import get_backend_by_id
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
        "utterance": "speech-extent-40dB",  # how `embed` pools (see ser_core.contract.signals.speech_extent)
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Copy:
    """Which training copy to embed (index 0: the file itself), of which kind ("channel" or "crop"),
    and the talkers a channel copy's babble noise may use."""

    index: int = 0
    talkers: tuple[str, ...] = ()
    kind: str = "channel"

    def key(self) -> str:
        if not self.index:
            return ""
        from ser_core.training.channels import COPIES_VERSION

        names = hashlib.sha256("|".join(Path(t).name for t in self.talkers).encode()).hexdigest()
        return f"|copy{self.index}|{COPIES_VERSION}|{names}" + ("" if self.kind == "channel" else f"|{self.kind}")

    def seed(self, data: bytes) -> int:
        tag = f"copy{self.index}" + ("" if self.kind == "channel" else self.kind)
        return int.from_bytes(hashlib.sha256(data + tag.encode()).digest()[:4], "little")

    def make(self, signals: list[np.ndarray], seeds: list[int]) -> list[np.ndarray]:
        from ser_core.training import channels

        if self.kind == "crop":
            return [channels.speech_crop(x, np.random.default_rng(s)) for x, s in zip(signals, seeds, strict=True)]
        return channels.training_copies(signals, seeds, [_talker(t) for t in self.talkers])


def _cache_path(cache_dir: Path, backend: EmbeddingBackend, data: bytes, copy: Copy = Copy()) -> Path:
    spec = (backend_fingerprint(backend) + copy.key()).encode()
    key = hashlib.sha256(hashlib.sha256(data).digest() + spec).hexdigest()
    return cache_dir / "features" / backend.backend_id / key[:2] / f"{key}.npy"


def _cached(
    backend: EmbeddingBackend, data: bytes | None, cache_dir: Path | None, copy: Copy = Copy()
) -> tuple[np.ndarray | None, Path | None]:
    """The cached vector of a file's bytes (or None) and where it is or would be cached (None: no
    cache, or the file could not be read, which `load_audio` reports)."""
    if cache_dir is None or data is None:
        return None, None
    where = _cache_path(cache_dir, backend, data, copy)
    if where.is_file():
        try:
            vector = np.load(where, allow_pickle=False)
            if vector.shape == (backend.dim,):
                return vector, where
        except (OSError, ValueError):
            pass  # a damaged entry is recomputed and replaced
    return None, where


def _store(where: Path | None, vector: np.ndarray) -> None:
    if where is None:
        return
    buffer = io.BytesIO()
    np.save(buffer, vector, allow_pickle=False)
    try:
        atomic_write_bytes(where, buffer.getvalue())
    except SerError as exc:
        log.warning("feature cache not written: %s", exc)


Outcome = tuple[int, np.ndarray | None, bool, str | None]  # index, vector, cache hit, error


@lru_cache(maxsize=64)
def _talker(path: str) -> np.ndarray:
    return load_audio(path)


def _batch(
    backend: EmbeddingBackend, batch: list[tuple[int, str]], cache_dir: Path | None, copy: Copy = Copy()
) -> list[Outcome]:
    """Vectors of a batch of files: cache hits first, the rest decoded and embedded together."""
    out: list[Outcome] = []
    todo: list[tuple[int, np.ndarray, Path | None]] = []
    seeds: list[int] = []
    for index, path in batch:
        try:
            data: bytes | None = Path(path).read_bytes() if cache_dir is not None or copy.index else None
        except OSError:
            data = None  # load_audio reports the cause
        vector, where = _cached(backend, data, cache_dir, copy)
        if vector is not None:
            out.append((index, vector, True, None))
            continue
        try:
            todo.append((index, load_audio(path), where))
            seeds.append(copy.seed(data) if copy.index and data is not None else 0)
        except SerError as exc:
            out.append((index, None, False, str(exc)))
    if todo:
        signals = [signal for _, signal, _ in todo]
        if copy.index:
            signals = copy.make(signals, seeds)
        vectors = backend.embed_many(signals)
        for (index, _, where), vector in zip(todo, vectors, strict=True):
            vector = np.asarray(vector, dtype=np.float32)
            _store(where, vector)
            out.append((index, vector, False, None))
    return out


_worker_backend: EmbeddingBackend | None = None


def _init_worker(backend_id: str) -> None:
    global _worker_backend
    _worker_backend = get_backend_by_id(backend_id)


def _work(args: tuple[list[tuple[int, str]], Path | None, Copy]) -> list[Outcome]:
    batch, cache_dir, copy = args
    assert _worker_backend is not None
    return _batch(_worker_backend, batch, cache_dir, copy)


def _batches(paths: Sequence[str | Path], size: int) -> list[list[tuple[int, str]]]:
    """Files in batches of `size`, similar sizes together (so equal-length clips share a batch)."""
    order = list(range(len(paths)))
    if size > 1:
        order.sort(key=lambda i: _size(paths[i]))
    return [[(i, str(paths[i])) for i in order[k : k + size]] for k in range(0, len(order), size)]


def _size(path: str | Path) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return -1


def extract(
    paths: Sequence[str | Path],
    backend: EmbeddingBackend,
    jobs: int = 1,
    cache: bool | None = None,
    progress: Callable[[int], None] | None = None,
    copy: Copy = Copy(),
) -> Extracted:
    """Utterance vectors of `paths` (or of their training copies, see `Copy`); bad files are
    recorded in `failures`, never fatal."""
    settings = get_settings()
    use_cache = settings.feature_cache if cache is None else cache
    cache_dir = settings.cache_dir if use_cache else None
    vectors = np.zeros((len(paths), backend.dim), np.float32)
    ok = np.zeros(len(paths), bool)
    failures: dict[int, str] = {}
    hits = 0
    # copies go through codecs in batches (one ffmpeg run each), so batch them even for backends
    # that embed one signal at a time
    size = max(1, backend.batch_size, 16 if copy.index else 1)
    tasks = [(batch, cache_dir, copy) for batch in _batches(paths, size)]
    if jobs > 1 and len(tasks) > 1:
        # spawn, not fork: the parent may run threads (torch, onnxruntime), and forking a
        # multi-threaded process can deadlock the child.
        with ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(backend.backend_id,),
        ) as pool:
            results = pool.map(_work, tasks, chunksize=max(1, 8 // max(1, backend.batch_size)))
            hits = _gather(results, vectors, ok, failures, progress)
    else:
        global _worker_backend
        _worker_backend = backend
        hits = _gather(map(_work, tasks), vectors, ok, failures, progress)
    return Extracted(vectors, ok, failures, hits)


def _gather(
    results: Iterable[list[Outcome]],
    vectors: np.ndarray,
    ok: np.ndarray,
    failures: dict[int, str],
    progress: Callable[[int], None] | None,
) -> int:
    hits = 0
    for batch in results:
        for index, vector, hit, error in batch:
            if error is None:
                vectors[index], ok[index] = vector, True
                hits += hit
            else:
                failures[index] = error
        if progress is not None:
            progress(len(batch))
    return hits


def source_of(
    paths: Sequence[str | os.PathLike[str]],
    profile: str | None = None,
    jobs: int = 1,
    seed: int = 0,
) -> SourceStats:
    """The statistics of a batch of recordings from one source (a call centre, a microphone, a
    podcast), from the utterance vectors of at most `MAX_FILES` of them (feature cache used)."""
    from ser_core.plugins.lookup import get_backend

    backend = get_backend(profile or get_settings().default_profile)
    chosen = list(paths)
    if len(chosen) > MAX_FILES:
        rng = np.random.default_rng(seed)
        chosen = [chosen[i] for i in sorted(rng.choice(len(chosen), MAX_FILES, replace=False))]
    out = extract(chosen, backend, jobs=jobs)
    if out.ok.sum() < MIN_FILES:
        raise DatasetError(
            f"adapting to a source needs at least {MIN_FILES} readable recordings of it, "
            f"got {int(out.ok.sum())} of {len(chosen)}"
        )
    return SourceStats.of(out.vectors[out.ok])
