"""The server's bounded pool: `jobs` analyses at a time, at most `queue` more waiting; past that a
submission is refused (the API answers 429), so a burst of uploads cannot pile up work or disk."""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ser_core.errors import SerError
from ser_core.pipeline.audio import duration_of
from ser_core.runs.tasks import runner
from ser_core.server.store import Record, Store
from ser_core.settings import get_settings

log = logging.getLogger(__name__)


class Full(Exception):
    """Every worker is busy and the queue is full."""


class Jobs:
    def __init__(self, store: Store, jobs: int = 1, queue: int = 16) -> None:
        self.store = store
        self.jobs = max(1, jobs)
        self.capacity = self.jobs + max(0, queue)
        self._slots = threading.BoundedSemaphore(self.capacity)
        self._pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="ser-serve")
        self._lock = threading.Lock()
        self.waiting = 0

    def reserve(self) -> None:
        """Take a place for one more analysis, or raise `Full` (before the upload is read)."""
        if not self._slots.acquire(blocking=False):
            raise Full
        with self._lock:
            self.waiting += 1

    def release(self) -> None:
        """Give back a reserved place that was not used (the upload was refused)."""
        with self._lock:
            self.waiting -= 1
        self._slots.release()

    def submit(self, record: Record, upload: Path) -> None:
        """Analyse `upload` (a reserved place must be held) and keep the outcome in the store."""
        self.store.save(record)
        self._pool.submit(self._run, dataclasses.replace(record), upload)

    def _run(self, record: Record, upload: Path) -> None:
        try:
            record.status = "running"
            seconds = duration_of(upload)
            piece = get_settings().piece_seconds
            record.pieces_total = None if seconds is None else max(1, math.ceil(seconds / piece))
            self.store.save(record)

            def progress(done: int) -> None:
                record.pieces_done = done
                if (
                    record.pieces_total is not None
                ):  # pieces end at quiet moments: a few more than the estimate
                    record.pieces_total = max(record.pieces_total, done)
                self.store.save(record)

            result = runner(record.options).analyze(upload, progress)
            result = result.model_copy(update={"path": record.name})
            envelope = {"envelope": result.envelope, "envelope_rate": result.envelope_rate}
            self.store.save_result(record.id, result.model_dump_json(indent=2), envelope)
            record.status = "done"
        except SerError as exc:
            record.status, record.error = "failed", str(exc).replace(str(upload), record.name)
        except Exception as exc:  # a bug must not kill the worker thread or lose the record
            log.exception("analysis %s failed", record.id)
            record.status, record.error = "failed", f"{record.name}: internal error ({type(exc).__name__})"
        finally:
            record.finished = time.time()
            try:
                self.store.remove_uploads(record.id)
                if self.store.folder(record.id).is_dir():  # not deleted meanwhile
                    self.store.save(record)
            finally:
                with self._lock:
                    self.waiting -= 1
                self._slots.release()

    def close(self) -> None:
        """Stop taking work (the runners are the process's own, closed by `registries.reset()`)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
