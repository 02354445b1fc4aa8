"""Executors: run `run_task` on task specs. Serial (in-process) and a local process pool.

An executor has `submit(spec) -> handle`, `wait(handles) -> done handles` (at least one),
`result(handle) -> TaskResult` (a list of them for a `ChainSpec`) and `close()`. A Dask executor fits the same four methods
(`client.submit(run_task, spec)`, `distributed.wait(..., return_when="FIRST_COMPLETED")`,
`future.result()`): it is `bqx.engine.dask_executor`, which imports `distributed` only when one is made.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterable, Protocol

from bqx.engine.dask_executor import DaskExecutor
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
        self.pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, spec: TaskSpec | ChainSpec) -> Future:
        return self.pool.submit(run_task, spec)

    def wait(self, handles: Iterable[Future]) -> list[Future]:
        done, _ = wait(list(handles), return_when=FIRST_COMPLETED)
        return list(done)

    def result(self, handle: Future) -> TaskResult | list[TaskResult]:
        return handle.result()

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
