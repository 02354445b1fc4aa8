"""The Dask distributed executor: the same `run_task`, on the workers of a Dask scheduler.

`DaskExecutor(workers, scheduler="tcp://HOST:PORT")` connects to a running scheduler;
without an address it starts, with the first task, a `distributed.LocalCluster` of `workers`
worker processes (one per core by default, one thread each, on 127.0.0.1, no dashboard).

No shared disk is needed with an object store: a task carries the store's URL (`s3://bucket/prefix`)
and the worker reads its inputs from and writes its partitions to that URL, so a worker needs
the URL, the credentials in its environment and the same code, nothing of the driver's disk. A
local store path is made absolute and must then be the same path on every worker (a shared
filesystem). The manifest stays with the driver, which alone records results, and only from
tasks that came back whole: a worker writes each object in one step (one PUT, or a temp file
renamed), so a task killed half-way leaves no partial partition behind.

Before the first task of a family module set runs, every connected worker is asked whether it
reaches the store and runs the same code as the driver (a worker with other code would write data
that does not match the fingerprints the driver records); a mismatch fails the tasks loudly.
Every task checks the code again on the worker it lands on, so a worker that joins later (a
replacement) is held to the same rule.

Worker loss: when a worker dies (SIGKILL, the OOM killer, a lost host) the scheduler takes the
tasks it held back. The local cluster's scheduler gives up such a task at once
(`allowed_failures=0`) and this executor submits it again, up to the run's `task_retries` times,
saying so through `on_retry`; a task whose workers died more often fails with the same reason
as a dead process-pool worker. A scheduler you started keeps its own `allowed-failures` (Dask
default 3): it reruns the task silently that often, and each `KilledWorker` it then reports
counts as `allowed_failures + 1` deaths here. The cluster itself carries on, so there is nothing
to restart.
"""

from __future__ import annotations

import functools
import os
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from bqx.engine.fingerprint import code_digest
from bqx.engine.kill_hook import pool_task
from bqx.engine.retry import dead_worker_reason
from bqx.engine.worker import ChainSpec, TaskResult, TaskSpec
from bqx.io import env_seconds
from bqx.errors import UsageError
from bqx.store.backend import backend_for, is_url

Spec = TaskSpec | ChainSpec
NO_WORKERS_TIMEOUT = 300.0  # seconds a run waits for a worker when its scheduler has none left



def store_reachable(store: str) -> bool:
    """Whether this process reaches the store: its bars directory is there (a path), or its bars objects
    are listed (a URL: the endpoint answers and the credentials are good)."""
    if not is_url(store):
        return os.path.isdir(os.path.join(store, "bars"))
    return bool(backend_for(store).list_files("bars"))


def _probe(store: str, modules: tuple[str, ...]) -> dict[str, Any]:
    """What a worker sees: the store's bars, and the digest of the family modules' code."""
    try:
        seen: bool | str = store_reachable(store)
    except Exception as exc:  # noqa: BLE001 - an unreachable endpoint, missing credentials, no backend
        seen = f"{type(exc).__name__}: {exc}"
    return {"store": seen, "code": _code_here(modules), "host": os.uname().nodename}


_digest_lock = threading.Lock()


@functools.lru_cache(maxsize=64)
def _code_here(modules: tuple[str, ...]) -> str:
    """This worker's digest of `modules`, once per process. Locked: a probe (on the worker's event loop)
    and a task (on its thread) may ask at once, and Python 3.11's `ast` is not safe in two threads at once."""
    with _digest_lock:
        try:
            return code_digest(modules)
        except ImportError as exc:
            return f"cannot import: {exc}"


def dask_task(spec: Spec, code: str) -> TaskResult | list[TaskResult]:
    """What a Dask worker runs: the code check for this worker, then the pool's task (test hook included)."""

    modules = tuple(sorted({m for _, m in spec.families}))
    here = _code_here(modules)
    if here != code:
        why = (f"Dask worker on {os.uname().nodename} (pid {os.getpid()}) "
               + (here if here.startswith("cannot import") else
                  f"runs other code for {', '.join(modules)} ({here[:12]}, the driver has {code[:12]})")
               + "; every worker must run the same bqx (and user family modules) as the driver")
        return _failed(spec, why)
    return pool_task(spec)


def _failed(spec: Spec, error: str) -> TaskResult | list[TaskResult]:
    results = [TaskResult(m.stage, m.pair, m.month, False, error=error, fingerprint=m.fingerprint, pid=os.getpid())
               for m in spec.members]
    return results if isinstance(spec, ChainSpec) else results[0]


def _label(spec: Spec) -> str:
    return " ".join(x for x in (spec.stage, spec.pair, spec.month) if x)


@dataclass(eq=False)
class DaskHandle:
    """One submitted unit: its spec, its current future (a new one after a lost worker), and its deaths."""

    spec: Spec
    future: Any
    deaths: int = 0
    last_worker: str = ""  # the address of the last worker that died holding it
    given_up: bool = False  # its workers died more often than the executor's `retries`
    why: str = ""  # why it was given up without running, when not for its workers' deaths


class DaskExecutor:
    """Runs tasks on a Dask cluster: an existing scheduler, or a local cluster started here.

    `retries`: how often a task whose worker died is submitted again (the run's `task_retries`).
    `on_retry(spec, deaths, worker)`, when set, is told of each such resubmission.
    """

    def __init__(self, workers: int | None = None, scheduler: str | None = None, retries: int = 2):
        try:
            from distributed import Client
        except ImportError:  # pragma: no cover - the `dask` extra is not installed
            raise UsageError("the dask executor needs dask distributed",
                             hint="pip install 'bqx[dask]'") from None
        self.cluster: Any = None
        self._client: Any = None
        self._checked: dict[tuple[str, tuple[str, ...]], str | None] = {}
        self._codes: dict[tuple[str, ...], str] = {}  # the driver's digest of each family module set
        self.retries = max(0, int(retries))
        self.on_retry: Callable[[Spec, int, str], None] | None = None
        self.lost = 0  # tasks given back by the scheduler because their worker died (each a KilledWorker)
        # a scheduler left with no worker fails what is pending after this long (0: wait for workers forever)
        self.no_workers_timeout = env_seconds("BQX_DASK_NO_WORKERS_TIMEOUT", NO_WORKERS_TIMEOUT)
        self.poll_seconds = min(5.0, self.no_workers_timeout / 4) if self.no_workers_timeout else 5.0
        self._workerless_since: float | None = None
        self._finished = threading.Event()  # set by a submitted future's done-callback
        self._workerless_why = ""  # set when pending units were given up for want of workers
        self.resubmitted: list[tuple[str, int]] = []  # (task or chain, its deaths so far), per resubmission
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

            # no dashboard; the scheduler's small HTTP server (health, metrics) on a free loopback port;
            # a task whose worker dies comes back at once (KilledWorker), for `retries` to count
            self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                        host="127.0.0.1", dashboard_address=None,
                                        scheduler_kwargs={"dashboard_address": "127.0.0.1:0", "allowed_failures": 0})
            self._client = Client(self.cluster)
        return self._client

    def _check(self, store: str, modules: tuple[str, ...]) -> None:
        key = (store, modules)
        if key not in self._checked:
            want = self._code(modules)
            problems = []
            # a worker that dies while it is asked is left out (whoever runs a task checks its code then)
            for addr, seen in sorted(self.client.run(_probe, store, modules, on_error="return").items()):
                if isinstance(seen, OSError):  # CommClosedError and the like: the worker is gone
                    continue
                if isinstance(seen, BaseException):
                    problems.append(f"worker {addr} could not be asked: {type(seen).__name__}: {seen}")
                elif seen["store"] is not True:
                    why = f" ({seen['store']})" if isinstance(seen["store"], str) else ""
                    problems.append(f"worker {addr} on {seen['host']} does not see the store {store}{why}")
                elif seen["code"].startswith("cannot import"):
                    problems.append(f"worker {addr} on {seen['host']} {seen['code']}")
                elif seen["code"] != want:
                    problems.append(f"worker {addr} on {seen['host']} runs other code for {', '.join(modules)} "
                                    f"({seen['code'][:12]}, the driver has {want[:12]})")
            self._checked[key] = "; ".join(problems) or None
        if self._checked[key]:
            where = ("The store URL must answer from every worker (endpoint and credentials in the workers' "
                     "environment)" if is_url(store) else
                     "A local store must be a path every worker reaches (a shared filesystem; or use an s3:// store)")
            raise UsageError(self._checked[key],
                             hint=f"{where}, and every worker must run the same bqx (and user family modules) as the driver.")

    def submit(self, spec: Spec) -> DaskHandle:
        if not is_url(spec.store):  # a local store: the same absolute path on every worker
            spec = spec.with_store(backend_for(spec.store).url)
        modules = tuple(sorted({m for _, m in spec.families}))
        self._check(spec.store, modules)
        return DaskHandle(spec, self._submit(spec))

    def _submit(self, spec: Spec) -> Any:
        from distributed import Client

        key = f"bqx-{spec.stage}-{spec.pair or 'all'}-{spec.month}-{uuid.uuid4().hex[:8]}"
        code = self._code(tuple(sorted({m for _, m in spec.families})))
        client: Client = self.client
        future = client.submit(dask_task, spec, code, key=key, pure=False, retries=0)
        future.add_done_callback(self._wake)
        return future

    def _code(self, modules: tuple[str, ...]) -> str:
        if modules not in self._codes:
            self._codes[modules] = code_digest(modules)
        return self._codes[modules]

    def _deaths(self, future: Any) -> tuple[int, str]:
        """(workers that died holding this future's task, the last one), or (0, "") when it did not end that way."""
        from distributed.scheduler import KilledWorker

        if future.status != "error":
            return 0, ""
        exc = future.exception()
        if not isinstance(exc, KilledWorker):
            return 0, ""
        last = getattr(exc.last_worker, "address", str(exc.last_worker))
        return exc.allowed_failures + 1, last

    def _settle(self, handle: DaskHandle) -> bool:
        """Whether a done future is the unit's last word; False when its worker died and it was submitted again."""
        n, worker = self._deaths(handle.future)
        if not n:
            return True
        self.lost += 1
        handle.deaths += n
        handle.last_worker = worker
        if handle.deaths > self.retries:  # given up: its workers died more often than `retries` allows
            handle.given_up = True
            return True
        handle.future.release()  # run it again, on a live worker
        handle.future = self._submit(handle.spec)
        self.resubmitted.append((_label(handle.spec), handle.deaths))
        if self.on_retry is not None:
            self.on_retry(handle.spec, handle.deaths, worker)
        return False

    def _no_workers_for(self, now: float) -> float:
        """Seconds since the scheduler last had a worker (0 while it has one)."""
        if self._client is None or self._client.nthreads():
            self._workerless_since = None
            return 0.0
        if self._workerless_since is None:
            self._workerless_since = now
        return now - self._workerless_since

    def _give_up_workerless(self, pending: dict[Any, DaskHandle], waited: float) -> list[DaskHandle]:
        """Every pending unit, given up: the scheduler has had no worker for `waited` seconds. Until a
        worker is back, the units submitted after these are given up at once, with the same reason."""
        if not self._workerless_why:
            self._workerless_why = (
                f"no Dask worker was connected to the scheduler for {waited:.0f} s (every worker died or left, and "
                f"none came back; BQX_DASK_NO_WORKERS_TIMEOUT={self.no_workers_timeout:g}); not run. Start "
                f"workers (`dask worker {self._client.scheduler.address}`) and run again: what was done is kept")
        why = self._workerless_why
        out = []
        for future, handle in list(pending.items()):
            handle.given_up, handle.why = True, why
            future.cancel()
            out.append(pending.pop(future))
        return out

    def _wake(self, _future: Any) -> None:
        """A done-callback of every submitted future (run on the client's thread): wakes `wait`."""
        self._finished.set()

    def _ready(self, pending: Iterable[Any]) -> list[Any]:
        """The pending futures that are done, waiting up to `poll_seconds` for one; [] when none was."""
        ready = [f for f in pending if f.done()]
        if not ready:
            self._finished.clear()
            ready = [f for f in pending if f.done()]  # one that finished just before the clear
            if not ready and self._finished.wait(self.poll_seconds):
                ready = [f for f in pending if f.done()]
        return ready

    def wait(self, handles: Iterable[Any]) -> list[Any]:
        import time

        handles = list(handles)
        # the run's own handles (a task it could not submit) are done already and are not Dask's
        done = [h for h in handles if not isinstance(h, DaskHandle)]
        if done:
            return done
        pending = {h.future: h for h in handles}
        if self._workerless_why:  # given up for want of workers: still none?
            if self._client is not None and not self._client.nthreads():
                return self._give_up_workerless(pending, 0)
            self._workerless_why = ""
        while True:
            finished = []
            # the futures' own done-callbacks wake this wait, not `distributed.wait`: that one waits on the
            # process's newest Client, and another Client opened meanwhile (a notebook's, a monitor
            # thread's) has its own event loop, where waiting fails ("bound to a different event loop")
            ready = self._ready(pending)
            if not ready:  # nothing finished within the poll: is any worker left to finish it?
                waited = self._no_workers_for(time.monotonic())
                if self.no_workers_timeout and waited >= self.no_workers_timeout:
                    return self._give_up_workerless(pending, waited)
                continue
            self._workerless_since = None
            for future in ready:
                handle = pending.pop(future)
                if self._settle(handle):
                    finished.append(handle)
                else:
                    pending[handle.future] = handle
            if finished:
                return finished

    def result(self, handle: Any) -> TaskResult | list[TaskResult]:
        if not isinstance(handle, DaskHandle):
            return handle.result()
        from distributed.scheduler import KilledWorker

        try:
            while not handle.given_up:
                try:
                    return handle.future.result()
                except KilledWorker:  # it finished, its worker died before the result was fetched, and the rerun's too
                    self._settle(handle)  # submitted again (wait for it here), or given up
            if handle.why:
                return _failed(handle.spec, handle.why)
            why = dead_worker_reason(handle.deaths, _label(handle.spec),
                                     f"the last was Dask worker {handle.last_worker}; its log has the cause")
            return _failed(handle.spec, why)
        finally:
            handle.future.release()

    def close(self) -> None:
        try:
            if self._client is not None:
                self._client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()
