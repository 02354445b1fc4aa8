"""Executors: run `run_task` on task specs. Serial (in-process) and a local process pool.

An executor has `submit(spec) -> handle`, `wait(handles) -> done handles` (at least one),
`result(handle) -> TaskResult` (a list of them for a `ChainSpec`) and `close()`. A Dask executor fits the same four methods
(`client.submit(run_task, spec)`, `distributed.wait(..., return_when="FIRST_COMPLETED")`,
`future.result()`): it is `bqx.engine.dask_executor`, which imports `distributed` only when one is made.

An executor whose workers can die may also have `restart()`: a fresh pool in place of a broken
one (`run` then submits again what was in flight; see `bqx.engine.retry`). The process pool's
workers are tied to the driver (`bqx.engine.lifeline`): they end when it dies.

Test hook: with `BQX_TEST_KILL_WORKER=stage:pair:month:times` a process-pool worker SIGKILLs
itself when it is handed that task (alone or in a chain), the first `times` times in the store
(counted in `<store>/logs/test-kill-worker.count`, for an s3:// store in a temporary file named
after its URL: `kill_counter`; 0 = every time).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

from bqx.engine.dask_executor import DaskExecutor
from bqx.engine.lifeline import bind_to_driver
from bqx.engine.worker import ChainSpec, TaskResult, TaskSpec, run_task


class Executor(Protocol):
    workers: int

    def submit(self, spec: TaskSpec | ChainSpec) -> Any: ...

    def wait(self, handles: Iterable[Any]) -> list[Any]: ...

    def result(self, handle: Any) -> TaskResult | list[TaskResult]: ...

    def close(self) -> None: ...


class SerialExecutor:
    """Runs each task in this process when it is submitted (tests, debugging)."""

    def __init__(self, workers: int | None = None):
        self.workers = 1

    def submit(self, spec: TaskSpec | ChainSpec) -> Future:
        fut: Future = Future()
        fut.set_result(run_task(spec))
        return fut

    def wait(self, handles: Iterable[Future]) -> list[Future]:
        return [h for h in handles if h.done()]

    def result(self, handle: Future) -> TaskResult | list[TaskResult]:
        return handle.result()

    def close(self) -> None:
        pass


class ProcessExecutor:
    """A local pool of `spawn`ed processes (polars and numba threads do not survive fork)."""

    def __init__(self, workers: int | None = None):
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=bind_to_driver, initargs=(os.getpid(),))

    def submit(self, spec: TaskSpec | ChainSpec) -> Future:
        return self.pool.submit(pool_task, spec)

    def wait(self, handles: Iterable[Future]) -> list[Future]:
        done, _ = wait(list(handles), return_when=FIRST_COMPLETED)
        return list(done)

    def result(self, handle: Future) -> TaskResult | list[TaskResult]:
        return handle.result()

    def restart(self) -> None:
        """A new pool in place of one a dead worker broke (its other workers are already stopped)."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.pool = self._new_pool()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


KILL_WORKER_ENV = "BQX_TEST_KILL_WORKER"


def pool_task(spec: TaskSpec | ChainSpec) -> TaskResult | list[TaskResult]:
    """What a pool worker runs: `run_task`, after the test hook."""
    if os.environ.get(KILL_WORKER_ENV):
        _test_kill(spec, os.environ[KILL_WORKER_ENV])
    return run_task(spec)


def _test_kill(spec: TaskSpec | ChainSpec, want: str) -> None:
    stage, pair, month, times = want.split(":")
    if not any((m.stage, m.pair or "", m.month) == (stage, pair, month) for m in spec.members):
        return
    counter = kill_counter(spec.store)
    counter.parent.mkdir(parents=True, exist_ok=True)
    with open(counter, "a+") as fh:
        fh.seek(0)
        if int(times) and len(fh.read().splitlines()) >= int(times):
            return
        fh.write(f"{os.getpid()}\n")
    os.kill(os.getpid(), signal.SIGKILL)


def kill_counter(store: str) -> Path:
    """The test hook's counter: `<store>/logs/test-kill-worker.count` in a local store; for an object store
    (which a worker never needs a local disk for) a file in the temporary directory named after the store URL."""
    from bqx.store.backend import is_url

    if not is_url(store):
        return Path(store) / "logs" / "test-kill-worker.count"
    import hashlib
    import tempfile

    digest = hashlib.sha1(store.rstrip("/").encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"bqx-test-kill-worker-{digest}.count"


_EXECUTORS: dict[str, Callable[..., Executor]] = {"serial": SerialExecutor, "process": ProcessExecutor, "dask": DaskExecutor}


def register_executor(name: str, factory: Callable[..., Executor]) -> None:
    _EXECUTORS[name] = factory


def make_executor(name: str, workers: int | None = None, **options: Any) -> Executor:
    """The executor called `name`; `options` go to its factory (the dask executor's `scheduler`)."""
    try:
        factory = _EXECUTORS[name]
    except KeyError:
        from bqx.errors import UsageError

        raise UsageError(f"unknown executor {name!r}; executors are: {', '.join(sorted(_EXECUTORS))}") from None
    return factory(workers, **options)
