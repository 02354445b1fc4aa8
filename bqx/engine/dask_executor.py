"""The Dask distributed executor: the same `run_task`, on the workers of a Dask scheduler.

`DaskExecutor(workers, scheduler="tcp://HOST:PORT")` connects to a running scheduler;
without an address it starts, with the first task, a `distributed.LocalCluster` of `workers`
worker processes (one per core by default, one thread each, on 127.0.0.1, no dashboard). Workers read and write
the store through its path, so that path must be absolute and the same on every worker (a shared
filesystem); the manifest stays with the driver, which alone records results.

Before the first task of a family module set runs, every connected worker is asked whether it
sees the store and runs the same code as the driver (a worker with other code would write data
that does not match the fingerprints the driver records); a mismatch fails the tasks loudly.
"""

from __future__ import annotations

import os
import uuid
from typing import Any, Iterable

from bqx.engine.fingerprint import code_digest
from bqx.engine.worker import ChainSpec, TaskResult, TaskSpec, run_task
from bqx.errors import UsageError


def _probe(store: str, modules: tuple[str, ...]) -> dict[str, Any]:
    """What a worker sees: the store's bars directory, and the digest of the family modules' code."""
    seen = os.path.isdir(os.path.join(store, "bars"))
    try:
        code = code_digest(modules)
    except ImportError as exc:
        code = f"cannot import: {exc}"
    return {"store": seen, "code": code, "host": os.uname().nodename}


class DaskExecutor:
    """Runs tasks on a Dask cluster: an existing scheduler, or a local cluster started here."""

    def __init__(self, workers: int | None = None, scheduler: str | None = None):
        try:
            from distributed import Client
        except ImportError:  # pragma: no cover - the `dask` extra is not installed
            raise UsageError("the dask executor needs dask distributed",
                             hint="pip install 'bqx[dask]'") from None
        self.cluster: Any = None
        self._client: Any = None
        self._checked: dict[tuple[str, tuple[str, ...]], str | None] = {}
        if not scheduler:  # the local cluster starts with the first task (a run with nothing to do starts none)
            self.workers = max(1, workers or os.cpu_count() or 1)
            return
        try:
            self._client = Client(scheduler, timeout="30s")
            if not self._client.nthreads():
                self._client.wait_for_workers(1, timeout=60)
        except OSError as exc:  # refused, unreachable, or no worker within a minute
            if self._client is not None:
                self._client.close()
            raise UsageError(f"cannot use the Dask scheduler {scheduler}: {type(exc).__name__}: {exc}",
                             hint="Start it with `dask scheduler` and workers with `dask worker ADDRESS`.") from None
        self.workers = max(1, workers or sum(self._client.nthreads().values()))

    @property
    def client(self) -> Any:
        if self._client is None:
            from distributed import Client, LocalCluster

            # no dashboard; the scheduler's small HTTP server (health, metrics) on a free loopback port
            self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                        host="127.0.0.1", dashboard_address=None,
                                        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
            self._client = Client(self.cluster)
        return self._client

    def _check(self, store: str, modules: tuple[str, ...]) -> None:
        key = (store, modules)
        if key not in self._checked:
            want = code_digest(modules)
            problems = []
            for addr, seen in sorted(self.client.run(_probe, store, modules).items()):
                if not seen["store"]:
                    problems.append(f"worker {addr} on {seen['host']} does not see the store {store}")
                elif seen["code"].startswith("cannot import"):
                    problems.append(f"worker {addr} on {seen['host']} {seen['code']}")
                elif seen["code"] != want:
                    problems.append(f"worker {addr} on {seen['host']} runs other code for {', '.join(modules)} "
                                    f"({seen['code'][:12]}, the driver has {want[:12]})")
            self._checked[key] = "; ".join(problems) or None
        if self._checked[key]:
            raise UsageError(self._checked[key],
                             hint="The store must be a path every worker reaches (a shared filesystem), and every "
                                  "worker must run the same bqx (and user family modules) as the driver.")

    def submit(self, spec: TaskSpec | ChainSpec) -> Any:
        spec = spec.with_store(os.path.abspath(spec.store))
        self._check(spec.store, tuple(sorted({m for _, m in spec.families})))
        key = f"bqx-{spec.stage}-{spec.pair or 'all'}-{spec.month}-{uuid.uuid4().hex[:8]}"
        return self.client.submit(run_task, spec, key=key, pure=False, retries=0)

    def wait(self, handles: Iterable[Any]) -> list[Any]:
        from distributed import Future, wait

        handles = list(handles)
        # the run's own handles (a task it could not submit) are done already and are not Dask's
        done = [h for h in handles if not isinstance(h, Future)]
        if done:
            return done
        return list(wait(handles, return_when="FIRST_COMPLETED").done)

    def result(self, handle: Any) -> TaskResult | list[TaskResult]:
        try:
            return handle.result()
        finally:
            if hasattr(handle, "release"):
                handle.release()

    def close(self) -> None:
        try:
            if self._client is not None:
                self._client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()
