"""Ray as a batch engine (`ser analyze ... --output-dir OUT --engine ray`): model-holding actors,
one per CPU, analyse the inputs that `batch.run` hands over, through `tasks.rendered_group`, and return
the rendered output text; the driver writes it atomically, so outputs need no shared filesystem.
Workers read the inputs (and `--model`) from their paths: on a multi-node cluster those must be
on storage every node sees. `SER_*` variables of the driver reach every actor. Ray is imported
only here, and only when asked for."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

from ser_core.errors import EngineError
from ser_core.runs import tasks as work
from ser_core.runs.tasks import Outcome, Rendered, Task

log = logging.getLogger(__name__)
#: Calls queued per actor, so an actor never waits for the driver between inputs.
DEPTH = 2


def outcomes(
    todo: list[Task], jobs: int | None = None, address: str | None = None, group: int = 1
) -> Iterator[Outcome]:
    """`tasks.run_group`'s outcome per task, in the order they end, each output written by the
    driver. Without `address` a local cluster of `jobs` CPUs (default: all cores) is started and
    stopped; with one (`auto`, `HOST:PORT`, `ray://HOST:PORT`) that cluster is joined. An already
    connected Ray (`ray.init` by the caller) is used as it is. One actor per CPU, at most `jobs`;
    each call hands an actor `group` tasks, analysed together (`tasks.rendered_group`)."""
    try:
        import ray
    except ImportError:
        raise EngineError("--engine ray needs Ray: pip install 'ser-core[ray]'") from None
    return _outcomes(ray, todo, jobs, address, max(1, group))


def _outcomes(ray: Any, todo: list[Task], jobs: int | None, address: str | None, group: int) -> Iterator[Outcome]:
    if not todo:
        return
    with _connected(ray, jobs, address):
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        options = {
            "num_cpus": 1,
            "max_restarts": -1,  # a worker that dies is restarted; its input is retried once
            "max_task_retries": 1,
            "runtime_env": {"env_vars": {k: v for k, v in os.environ.items() if k.startswith("SER_")}},
        }
        actor = ray.remote(Worker).options(**options)
        workers = min(jobs or cpus, cpus, len(todo))
        parts = work.chunks(todo, group, workers)
        actors = [actor.remote(todo[0].kwargs) for _ in range(min(workers, len(parts)))]
        waiting = iter(parts)
        pending: dict[Any, tuple[Any, list[Task]]] = {}

        def submit(worker: Any) -> None:
            chunk = next(waiting, None)
            if chunk is not None:
                pending[worker.analyse.remote(chunk, group)] = (worker, chunk)

        try:
            for _ in range(DEPTH):
                for worker in actors:
                    submit(worker)
            while pending:
                [ref], _ = ray.wait(list(pending), num_returns=1)
                worker, chunk = pending.pop(ref)
                submit(worker)
                yield from _finish(ray, ref, chunk)
        finally:
            for worker in actors:
                ray.kill(worker)


@contextlib.contextmanager
def _connected(ray: Any, jobs: int | None, address: str | None) -> Iterator[None]:
    if ray.is_initialized():
        yield
        return
    try:
        if address:
            _reachable(address)
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            cpus = jobs or os.cpu_count() or 1
            ray.init(address="local", num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING)
    except EngineError:
        raise
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ...
        where = f"at {address}" if address else "(local)"
        hint = ""
        if address and address != "auto" and "RAY_AUTH_MODE" not in os.environ:
            hint = " (with token authentication also set RAY_AUTH_MODE=token and the cluster's token)"
        raise EngineError(f"Ray cluster {where}: {_line(exc)}{hint}") from None
    try:
        yield
    finally:
        ray.shutdown()


def _reachable(address: str) -> None:
    """Fail at once when HOST:PORT does not answer (Ray itself keeps retrying for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and the like: Ray judges them
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=10).close()
    except OSError as exc:
        raise EngineError(f"Ray cluster at {address}: cannot connect ({exc.strerror or exc})") from None


def _finish(ray: Any, ref: Any, chunk: list[Task]) -> Iterator[Outcome]:
    """The outcomes of one call: each output written here, or the failures recorded."""
    try:
        done = ray.get(ref)
    except ray.exceptions.RayTaskError:
        raise  # a bug, not a bad input: it stops the run, as in the local engine
    except ray.exceptions.RayError as exc:
        for task in chunk:
            error = f"{task.source}: the Ray worker analysing it died, also when retried ({type(exc).__name__})"
            yield Outcome.failed(task.source, error)
        return
    for task, rendered in done:
        yield work.written(task, rendered)


def _line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class Worker:
    """A Ray actor: loads the backend, model and transcriber once, then analyses input after input."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        try:
            _warm(kwargs)
        except Exception as exc:  # the same error comes back for each input, through tasks.rendered_group
            log.warning("loading the models failed: %s", exc)

    def analyse(self, tasks: list[Task], group: int) -> list[tuple[Task, Rendered]]:
        """`tasks.rendered_group`: each outcome and its output texts, written by the driver."""
        return list(work.rendered_group(tasks, group))


def _warm(kwargs: dict[str, Any]) -> None:
    from ser_core.pipeline.analysis import prepare

    prepare(**kwargs)
