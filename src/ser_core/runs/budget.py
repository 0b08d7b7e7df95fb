"""Compute budgets per profile: a timeout per attempt, more attempts after a timeout, retries with
backoff after a transient failure, and optional process isolation with a hard kill.

Each profile reads its own variables, the profile's name upper-cased with "-" as "_":
`SER_FAST_TIMEOUT_SECONDS=600`, `SER_ACCURATE_ISOLATE=true`, `SER_ACCURATE_RESEARCH_TIMEOUT_RETRIES=0`.
`SER_DISABLE_TIMEOUTS=true` (or `ser analyze --disable-timeouts`) turns every timeout off.

Setup (loading the backend, the model and the transcriber) is never timed: the clock of an
attempt starts once they are loaded. In this process a timeout is checked between the pieces of
a recording (`SER_PIECE_SECONDS`); with `isolate`, each attempt runs in a worker process that is
killed the moment its time is up, which also stops a hung or runaway native library.
"""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic_settings import BaseSettings, SettingsConfigDict

from ser_core.contract.results import AnalysisResult
from ser_core.errors import AnalysisTimeout, AudioError, SerError, WorkerCrashed
from ser_core.settings import Settings, get_settings

if TYPE_CHECKING:
    from ser_core.pipeline.grouped import Done

log = logging.getLogger(__name__)

#: OS errors that may not happen on a second try (network filesystems, busy devices, memory).
TRANSIENT_ERRNOS = {errno.EIO, errno.EAGAIN, errno.EBUSY, errno.ETIMEDOUT, errno.ESTALE, errno.ENOMEM}


@dataclass(frozen=True)
class Budget:
    """How long one attempt may take (None: no limit) and how often to try again."""

    timeout_seconds: float | None
    timeout_retries: int = 1
    transient_retries: int = 2
    backoff_seconds: float = 1.0
    isolate: bool = False


class _BudgetVars(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore")

    timeout_seconds: float | None = None  # None: the profile's default
    timeout_retries: int = Budget.timeout_retries
    transient_retries: int = Budget.transient_retries
    backoff_seconds: float = Budget.backoff_seconds
    isolate: bool = Budget.isolate


def budget_for(profile: str, settings: Settings | None = None) -> Budget:
    """The budget of `profile` from its `SER_<PROFILE>_*` variables and the defaults."""
    settings = settings or get_settings()
    prefix = "SER_" + profile.upper().replace("-", "_") + "_"
    found = _BudgetVars(_env_prefix=prefix)  # type: ignore[call-arg]
    timeout = found.timeout_seconds
    if timeout is None:  # the profile's own default (registered with it), else the general one
        from ser_core.contract.profiles import DEFAULT_TIMEOUT_SECONDS
        from ser_core.plugins.lookup import all_profiles

        known = all_profiles().get(profile)
        timeout = known.timeout_seconds if known is not None else DEFAULT_TIMEOUT_SECONDS
    if settings.disable_timeouts or not timeout or timeout <= 0:
        timeout = None
    return Budget(
        timeout,
        max(0, found.timeout_retries),
        max(0, found.transient_retries),
        max(0.0, found.backoff_seconds),
        found.isolate,
    )


def is_transient(exc: SerError) -> bool:
    """A failure worth another try: a worker that died, or an input read that hit a passing OS error."""
    if isinstance(exc, WorkerCrashed):
        return True
    cause = exc.__cause__ or exc.__context__
    return isinstance(exc, AudioError) and isinstance(cause, OSError) and cause.errno in TRANSIENT_ERRNOS


class Runner:
    """Analyses inputs of one profile under its budget; `ser_core.analyze` keyword arguments are
    fixed for the runner's life (a worker process, when isolated, loads the models once)."""

    def __init__(self, budget: Budget, **kwargs: Any) -> None:
        self.budget = budget
        self.kwargs = kwargs
        self._worker: _Worker | None = None

    def analyze(
        self,
        path: str | os.PathLike[str],
        progress: Callable[[int], None] | None = None,
        failed: SerError | None = None,
    ) -> AnalysisResult:
        """`progress(pieces done)` after each piece (not from an isolated worker process);
        `failed`: how a first attempt made elsewhere ended (`analyze_grouped`)."""
        timeouts, transients, delay = self.budget.timeout_retries, self.budget.transient_retries, 0.0
        attempts = 0
        while True:
            attempts += 1
            try:
                if failed is not None:
                    error, failed = failed, None
                    raise error
                return self._attempt(path, progress)
            except AnalysisTimeout as exc:
                if timeouts == 0:
                    raise _after(exc, attempts) if attempts > 1 else exc from None
                timeouts -= 1
                log.warning("%s (attempt %d), trying again", exc, attempts)
            except SerError as exc:
                if transients == 0 or not is_transient(exc):
                    raise _after(exc, attempts) if attempts > 1 else exc from None
                transients -= 1
                delay = delay * 2 if delay else self.budget.backoff_seconds
                log.warning("%s (attempt %d), trying again in %g s", exc, attempts, delay)
                time.sleep(delay)

    def analyze_grouped(self, paths: Iterable[str | os.PathLike[str]], group: int) -> Iterator[Done]:
        """`(index, path, result or SerError)` per path (read lazily), in the order they end: up to
        `group` analyses at once, their transcription batched (`ser_core.pipeline.grouped`); a
        failure that the budget would try again is tried again alone. An isolated runner (a
        process per attempt, killed at its timeout) analyses one path at a time."""
        if self.budget.isolate or group < 2:
            yield from ((i, path, self._caught(path)) for i, path in enumerate(paths))
            return
        from ser_core.pipeline.grouped import analyze_grouped

        timeout = self.budget.timeout_seconds
        for index, path, outcome in analyze_grouped(paths, group, **self.kwargs, timeout=timeout):
            yield index, path, self._caught(path, outcome) if isinstance(outcome, SerError) else outcome

    def _caught(
        self, path: str | os.PathLike[str], failed: SerError | None = None
    ) -> AnalysisResult | SerError:
        try:
            return self.analyze(path, failed=failed)
        except SerError as exc:
            return exc

    def _attempt(self, path: str | os.PathLike[str], progress: Callable[[int], None] | None) -> AnalysisResult:
        if not self.budget.isolate:
            from ser_core.pipeline.analysis import analyze

            return analyze(path, **self.kwargs, timeout=self.budget.timeout_seconds, progress=progress)
        if self._worker is None or not self._worker.alive():
            self._worker = _Worker(self.kwargs, path)
        return self._worker.analyze(path, self.budget.timeout_seconds)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def runner_for(kwargs: dict[str, Any], settings: Settings | None = None) -> Runner:
    """A runner for `ser_core.analyze(**kwargs)` under the budget of the profile the arguments name."""
    settings = kwargs.get("settings") or settings or get_settings()
    profile = kwargs.get("profile") or settings.default_profile
    return Runner(budget_for(profile, settings), **kwargs)


def _after(exc: SerError, attempts: int) -> SerError:
    """The last error, its message saying how many attempts were made."""
    if isinstance(exc, AudioError):
        exc.cause = f"{exc.cause} ({attempts} attempts)"
        exc.args = (f"{exc.path}: {exc.cause}",)
    return exc


# --- the worker process -------------------------------------------------------------------------


class _Worker:
    """A spawned process that loads the models once (untimed), then analyses one path per request."""

    def __init__(self, kwargs: dict[str, Any], path: str | os.PathLike[str]) -> None:
        """Start it and wait (untimed) until it has loaded the models; `path`, the input it is
        started for, names errors of the setup."""
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, kwargs), daemon=True, name="ser-worker")
        self.process.start()
        child.close()
        kind, value = self._receive(None, path)
        if kind == "error":
            self.stop()
            raise value

    def alive(self) -> bool:
        return self.process.is_alive()

    def analyze(self, path: str | os.PathLike[str], timeout: float | None) -> AnalysisResult:
        try:
            self.conn.send(os.fspath(path))
        except OSError:
            self.kill()
            raise WorkerCrashed(path, f"the worker process died (exit code {self.process.exitcode})") from None
        kind, value = self._receive(timeout, path)
        if kind == "error":
            raise value
        return value

    def _receive(self, timeout: float | None, path: str | os.PathLike[str]) -> tuple[str, Any]:
        if not self.conn.poll(timeout):
            self.kill()
            raise AnalysisTimeout(path, timeout, f"analysis timed out after {timeout:g} s (worker killed)")
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            self.kill()
            code = self.process.exitcode
            raise WorkerCrashed(path, f"the worker process died (exit code {code})") from None

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self.conn.close()  # the worker sees EOF and returns
            finally:
                self.process.join(5)
        if self.process.is_alive():
            self.kill()


def _serve(conn: Connection, kwargs: dict[str, Any]) -> None:
    from ser_core.pipeline.analysis import analyze, prepare

    try:
        _, backend, fitted, _, _ = prepare(**kwargs)
        # Part of the untimed setup: first calls that import or compile lazily.
        noise = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.01
        fitted.predict_proba(backend.embed(noise)[None, :])
    except SerError as exc:
        conn.send(("error", exc))
        return
    conn.send(("ready", None))
    while True:
        try:
            path = conn.recv()
        except (EOFError, OSError):
            return
        try:
            conn.send(("ok", analyze(Path(path), **kwargs)))
        except SerError as exc:
            conn.send(("error", exc))
