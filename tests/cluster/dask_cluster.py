"""A real Dask cluster on loopback for tests and bench/soak.py: a `dask scheduler` process and
worker processes (`dask worker`), each worker in its own scratch directory (its cwd and Dask's
`--local-directory`), with only the environment it is given: nothing tells a worker where the
driver keeps anything. Also a killer that SIGKILLs random workers and starts replacements, and
the partitions of a store (local or s3://) read back for comparison.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import polars as pl
import psutil

# every death counts: the scheduler gives a task back at once and bqx's task_retries decide
STRICT = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}


@dataclass
class Worker:
    name: str
    cwd: Path
    proc: subprocess.Popen
    nanny: bool

    def pid(self) -> int | None:
        """The worker process's pid (under a nanny: the nanny's child), None when there is none now."""
        if self.proc.poll() is not None:
            return None
        if not self.nanny:
            return self.proc.pid
        try:
            kids = psutil.Process(self.proc.pid).children()
        except psutil.NoSuchProcess:
            return None
        live = []
        for kid in kids:  # the worker, not the nanny's multiprocessing resource tracker
            try:
                if kid.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(kid.cmdline()):
                    live.append(kid.pid)
            except psutil.Error:
                continue
        return live[0] if live else None


@dataclass
class ProcessCluster:
    """`dask scheduler` + `workers` x `dask worker --nthreads 1`, each a separate process."""

    base: Path
    workers: int = 3
    env: dict[str, str] = field(default_factory=dict)  # added to every process's environment
    nanny: bool = False
    address: str = ""
    started: list[Worker] = field(default_factory=list)
    scheduler: subprocess.Popen | None = None

    def _env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("BQX_", "AWS_", "DASK_"))}
        return {**keep, **STRICT, **self.env}

    def _dask(self, *args: str, cwd: Path, log: str) -> subprocess.Popen:
        logs = self.base / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        out = open(logs / f"{log}.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            return subprocess.Popen([sys.executable, "-m", "distributed.cli." + args[0], *args[1:]], cwd=cwd,
                                    env=self._env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            out.close()

    def start(self, timeout: float = 120) -> "ProcessCluster":
        self.base.mkdir(parents=True, exist_ok=True)
        sched_dir = self.base / "scheduler"
        sched_dir.mkdir(exist_ok=True)
        info = sched_dir / "scheduler.json"
        self.scheduler = self._dask("dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                    "--scheduler-file", str(info), cwd=sched_dir, log="scheduler")
        deadline = time.monotonic() + timeout
        while not info.exists() or not info.read_text().strip():
            if self.scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the scheduler did not start: {(self.base / 'logs' / 'scheduler.log').read_text()}")
            time.sleep(0.1)
        self.address = json.loads(info.read_text())["address"]
        for _ in range(self.workers):
            self.start_worker()
        self.wait_for_workers(self.workers, timeout)
        return self

    def start_worker(self) -> Worker:
        name = f"w{len(self.started)}"
        cwd = self.base / name
        cwd.mkdir()
        proc = self._dask("dask_worker", self.address, "--name", name, "--nthreads", "1", "--host", "127.0.0.1",
                          "--no-dashboard", "--memory-limit", "0", "--local-directory", str(cwd / "dask-scratch"),
                          "--nanny" if self.nanny else "--no-nanny", cwd=cwd, log=name)
        worker = Worker(name, cwd, proc, self.nanny)
        self.started.append(worker)
        return worker

    def client(self) -> Any:
        from distributed import Client

        return Client(self.address, timeout="30s")

    def wait_for_workers(self, n: int, timeout: float = 120) -> None:
        with self.client() as c:
            c.wait_for_workers(n, timeout=timeout)

    def alive(self) -> list[Worker]:
        return [w for w in self.started if w.pid() is not None]

    def top_up(self, timeout: float = 120) -> None:
        """Start replacements until `workers` worker processes run (after a test killed some)."""
        if not self.nanny:
            for _ in range(self.workers - len(self.alive())):
                self.start_worker()
        self.wait_for_workers(self.workers, timeout)

    def set_env(self, **values: str) -> None:
        """Set (or, with "", remove) environment variables in the running workers (not in later ones)."""
        def apply(values: dict[str, str]) -> None:
            for k, v in values.items():
                if v:
                    os.environ[k] = v
                else:
                    os.environ.pop(k, None)

        with self.client() as c:
            c.run(apply, values)

    def kill(self, worker: Worker) -> int | None:
        pid = worker.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        return pid

    def close(self, grace: float = 10) -> None:
        """Workers first, then the scheduler: a `dask worker` told to stop while its scheduler is closing
        can hang in its own shutdown (distributed 2026.8), so each group gets `grace` seconds after
        SIGTERM and its stragglers are then SIGKILLed."""
        for group in ([w.proc for w in self.started], [self.scheduler]):
            live = [p for p in group if p is not None and p.poll() is None]
            for proc in live:
                proc.terminate()
            deadline = time.monotonic() + grace
            for proc in live:
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=20)

    def __enter__(self) -> "ProcessCluster":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Killer(threading.Thread):
    """SIGKILLs a random live worker every `every` seconds, at most `kills` times, then stops; without a
    nanny it starts a replacement each time, so the cluster keeps its size. The first kill comes
    `first` seconds after `begin()` (call it when the run's first task starts; default `every`).

    With `busy=True` the victim is drawn only from the workers the scheduler says hold a task at that
    moment (waiting, polling every 0.05 s, until one does), so every kill lands on work: a soak that
    must prove tasks were lost and redone does not depend on the timing of the machine it runs on."""

    def __init__(self, cluster: ProcessCluster, *, every: float, kills: int, seed: int = 0,
                 first: float | None = None, busy: bool = False):
        super().__init__(daemon=True)
        self.cluster, self.every, self.max_kills, self.busy = cluster, every, kills, busy
        self.first = every if first is None else first
        self.rng = random.Random(seed)
        self.killed: list[tuple[str, int]] = []  # (worker name, pid)
        self.stop_event = threading.Event()
        self.begun = threading.Event()
        self.errors: list[BaseException] = []

    def begin(self) -> None:
        self.begun.set()

    def on_event(self, ev: Any) -> None:
        """A run's event callback that begins the killing with its first task."""
        if ev.kind == "task_started":
            self.begun.set()

    def _busy(self, client: Any, live: list[Worker]) -> list[Worker]:
        """The live workers holding a task now, by the scheduler's account."""
        processing = client.processing()
        names = {info["name"] for addr, info in client.scheduler_info()["workers"].items() if processing.get(addr)}
        return [w for w in live if w.name in names]

    def run(self) -> None:
        client = None
        try:
            while not self.begun.wait(0.1):
                if self.stop_event.is_set():
                    return
            if self.busy:
                client = self.cluster.client()
            wait = self.first
            while len(self.killed) < self.max_kills and not self.stop_event.wait(wait):
                wait = self.every
                live = self.cluster.alive()
                if client is not None:
                    while not (live := self._busy(client, live)) and not self.stop_event.wait(0.05):
                        live = self.cluster.alive()
                if not live:
                    continue
                victim = self.rng.choice(live)
                pid = self.cluster.kill(victim)
                if pid is None:
                    continue
                self.killed.append((victim.name, pid))
                if not self.cluster.nanny:
                    self.cluster.start_worker()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.errors.append(exc)
        finally:
            if client is not None:
                client.close()

    def stop(self) -> None:
        self.stop_event.set()
        self.begun.set()
        self.join(timeout=30)


def partitions(root: str | Path) -> dict[str, pl.DataFrame]:
    """Every data file of the store but the bars, by its path in the store: feature partitions and tables."""
    root = str(root)
    if root.startswith("s3://"):  # straight from the server, not through bqx
        import pyarrow.parquet as pq
        from pyarrow import fs

        endpoint = urlparse(os.environ["AWS_ENDPOINT_URL"])
        s3 = fs.S3FileSystem(endpoint_override=endpoint.netloc, scheme=endpoint.scheme,
                             access_key=os.environ["AWS_ACCESS_KEY_ID"], secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                             region=os.environ.get("AWS_REGION", "us-east-1"))
        base = root.removeprefix("s3://").rstrip("/")
        infos = s3.get_file_info(fs.FileSelector(base, recursive=True))
        files = sorted(i.path[len(base) + 1:] for i in infos if i.path.endswith("data.parquet"))

        def read(rel: str) -> pl.DataFrame:
            return pl.from_arrow(pq.read_table(f"{base}/{rel}", filesystem=s3))
    else:
        files = sorted(str(f.relative_to(root)) for f in Path(root).rglob("data.parquet"))

        def read(rel: str) -> pl.DataFrame:
            return pl.read_parquet(Path(root) / rel)
    return {rel: read(rel) for rel in files if not rel.startswith("bars/")}


def differences(got: dict[str, pl.DataFrame], want: dict[str, pl.DataFrame]) -> list[str]:
    """What differs, file by file and column by column (bit for bit, NULLs in the same places)."""
    out = [f"missing {k}" for k in sorted(want.keys() - got.keys())]
    out += [f"extra {k}" for k in sorted(got.keys() - want.keys())]
    for key in sorted(want.keys() & got.keys()):
        a, b = got[key], want[key]
        if a.columns != b.columns:
            out.append(f"{key}: columns {a.columns} != {b.columns}")
            continue
        out += [f"{key}: column {c}" for c in b.columns if not a[c].equals(b[c])]
    return out


def assert_same(got: dict[str, pl.DataFrame], want: dict[str, pl.DataFrame]) -> None:
    assert want, "nothing to compare"
    diff = differences(got, want)
    assert not diff, diff[:20]
