"""Executors: run `run_task` on task specs. Serial (in-process) and a local process pool.

An executor has `submit(spec) -> handle`, `wait(handles) -> done handles` (at least one),
`result(handle) -> TaskResult` (a list of them for a `ChainSpec`) and `close()`. A Dask executor fits the same four methods
(`client.submit(run_task, spec)`, `distributed.wait(..., return_when="FIRST_COMPLETED")`,
`future.result()`): it is `bqx.engine.dask_executor`, which imports `distributed` only when one is made.

An executor whose workers can die may also have `restart()`: a fresh pool in place of a broken
one (`run` then submits again what was in flight; see `bqx.engine.retry`). The process pool's
workers are tied to the driver (`bqx.engine.lifeline`): they end when it dies.

Test hook: with `BQX_TEST_KILL_WORKER=stage:pair:month:times[:counter]` a process-pool or Dask
worker SIGKILLs itself when it is handed that task (alone or in a chain), the first `times` times
(0 = every time), counted in the file `counter` (default: `<store>/logs/test-kill-worker.count`,
for an s3:// store a temporary file named after its URL: `kill_counter`; Dask workers on other
machines need a `counter` they all reach).
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterable, Protocol

from bqx.engine.dask_executor import DaskExecutor
from bqx.engine.kill_hook import KILL_WORKER_ENV, kill_counter, pool_task  # noqa: F401 - the pool runs pool_task
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
