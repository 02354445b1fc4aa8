"""Pool workers end with their driver (run and validate), and a dead worker is replaced: its tasks run again.

Real processes throughout: `bqx run` / `validate` subprocesses, SIGKILL of the driver or of one pool
worker (found through the `BQX_TEST_WORKER_READY_DIR` hook or psutil), stores compared file by file.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from bqx.engine import run, status
from bqx.engine.retry import WorkerDeaths
from bqx.store.layout import write_bars
from engine_helpers import synth_bars

STAGES = ["targets"]  # rate_index, bqx, extraction (the labels read its volatility), targets
CORE = ["rate_index", "bqx", "extraction", "targets"]
MONTHS = {"2024-01": 600, "2024-02": 600}


def _store(root: Path) -> Path:
    write_bars(root, synth_bars(months=MONTHS), source="test")
    return root


def _digests(root: Path) -> dict[str, str]:
    """Every Parquet file of the store (bars and stages) -> its content hash."""
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(root.rglob("*.parquet")) if "logs" not in f.parts}


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(f.relative_to(root)): (f.stat().st_size, f.stat().st_mtime_ns)
            for f in sorted(root.rglob("*")) if f.is_file() and "logs" not in f.parts}


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # a dead orphan nobody reaped yet is gone
    except psutil.NoSuchProcess:
        return False


def _wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        if not alive:
            return []
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def _started_by(ready: Path) -> list[int]:
    """The processes started with `BQX_TEST_WORKER_READY_DIR=ready` in their environment (the run's pool)."""
    pids = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("BQX_TEST_WORKER_READY_DIR") == str(ready):
                pids.append(proc.pid)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return pids


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BQX_TEST_")}
    return {**env, **extra}


def _cli(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bqx", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def clean_digests(tmp_path_factory) -> dict[str, str]:
    """The files of an uninterrupted run (serial: the same bytes as a pool's)."""
    root = _store(tmp_path_factory.mktemp("clean") / "s")
    assert run(root, source=None, stages=STAGES, executor="serial").ok
    return _digests(root)


# -- a dead worker is replaced ------------------------------------------------------------------

def test_a_worker_killed_mid_run_is_replaced_and_the_files_equal_a_clean_run(tmp_path, clean_digests):
    root = _store(tmp_path / "s")
    ready = tmp_path / "ready"
    ready.mkdir()
    proc = _cli("run", "--store", str(root), "--stages", "targets", "--workers", "2",
                env=_env(BQX_TEST_WORKER_READY_DIR=str(ready)))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            logs = list((root / "logs").glob("run-*.log"))
            workers = [int(p.name) for p in ready.iterdir()]
            if workers and logs and "task_started" in logs[0].read_text():
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        victim = psutil.Process(workers[0])
        assert victim.ppid() == proc.pid  # a pool worker of this run
        victim.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    log = next((root / "logs").glob("run-*.log")).read_text()
    assert "a pool worker died" in log and "task_retried" in log, log
    rows = {r["name"]: r for r in status(root)}
    assert all(rows[s]["done"] == 4 and rows[s]["status"] == "done" and not rows[s]["failures"] for s in CORE), rows
    assert _digests(root) == clean_digests
    assert not list(root.rglob("*.tmp"))


def test_a_worker_killed_at_a_known_task_is_replaced_and_the_files_equal_a_clean_run(tmp_path, monkeypatch,
                                                                                     clean_digests):
    root = _store(tmp_path / "s")
    monkeypatch.setenv("BQX_TEST_KILL_WORKER", "bqx:EURUSD:2024-02:1")  # spawned workers inherit it
    result = run(root, source=None, stages=STAGES, workers=2)
    assert result.ok and len(result.done) == 16, result.failed  # 4 stages x 2 pairs x 2 months
    assert len((root / "logs" / "test-kill-worker.count").read_text().splitlines()) == 1  # it did die once
    assert _digests(root) == clean_digests


def test_a_task_that_kills_its_worker_every_time_fails_with_the_reason(tmp_path, monkeypatch):
    root = _store(tmp_path / "s")
    monkeypatch.setenv("BQX_TEST_KILL_WORKER", "rate_index:EURUSD:2024-01:0")  # every time
    result = run(root, source=None, stages=STAGES, workers=2, task_retries=1)
    assert not result.ok and result.exit_code == 1
    assert [(f["stage"], f["pair"], f["month"]) for f in result.failed] == [("rate_index", "EURUSD", "2024-01")]
    assert result.failed[0]["error"].startswith("the worker process died 2 times running rate_index+bqx+extraction EURUSD 2024-01")
    assert {(b["stage"], b["pair"], b["month"]) for b in result.blocked} == {
        (s, "EURUSD", m) for s in ("bqx", "extraction", "targets") for m in ("2024-01", "2024-02")}
    assert {(d["stage"], d["pair"]) for d in result.done} >= {(s, "USDJPY") for s in CORE}  # the others completed
    deaths = (root / "logs" / "test-kill-worker.count").read_text().splitlines()
    assert len(deaths) == 2  # tried twice (task_retries=1), in two different worker processes
    assert len(set(deaths)) == 2


def test_worker_deaths_are_charged_to_a_unit_only_when_it_ran_alone():
    d = WorkerDeaths(retries=2)
    assert d.limit(4) == 4
    assert d.died([1, 2]) == ([1, 2], [])  # together: both suspects, run again
    assert d.limit(4) == 1  # one at a time while suspects remain
    d.finished(2)
    assert d.died([1]) == ([1], [])  # alone: its 2nd death, still within the 2 retries
    assert d.died([1]) == ([], [1])
    assert d.limit(4) == 4
    assert "died 3 times running x" in d.reason(1, "x")
    assert WorkerDeaths(retries=0).died([5, 6]) == ([], [5, 6])  # no retries: everything in flight is given up


# -- workers end with their driver ----------------------------------------------------------------

def test_run_workers_end_when_the_driver_is_killed_and_nothing_is_written_after(tmp_path):
    root = _store(tmp_path / "s")
    ready = tmp_path / "ready"
    ready.mkdir()
    proc = _cli("run", "--store", str(root), "--stages", "targets", "--workers", "2",
                env=_env(BQX_TEST_KILL_AFTER_TASKS="2", BQX_TEST_WORKER_READY_DIR=str(ready)))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err
    workers = [int(p.name) for p in ready.iterdir()]  # tied to the driver (a worker still starting is not yet)
    assert workers
    assert _wait_gone(workers, 5.0) == []
    assert _wait_gone(_started_by(ready), 20.0) == []  # also any that was still starting
    before = _snapshot(root)
    time.sleep(1.0)
    assert _snapshot(root) == before  # no orphan writes on
    rows = {r["name"]: r for r in status(root)}
    assert sum(rows[s]["done"] for s in CORE) == 2


def test_validate_workers_end_when_the_driver_is_killed(tmp_path):
    root = tmp_path / "s"
    write_bars(root, synth_bars(months={"2024-01": 1500, "2024-02": 1500}), source="test")
    assert run(root, source=None, stages=STAGES, executor="serial").ok
    ready = tmp_path / "ready"
    ready.mkdir()
    code = f"from bqx.validate import validate; validate({str(root)!r}, workers=2, save=False)"
    proc = subprocess.Popen([sys.executable, "-c", code], env=_env(BQX_TEST_WORKER_READY_DIR=str(ready)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and len(list(ready.iterdir())) < 2:
            time.sleep(0.05)
        workers = [int(p.name) for p in ready.iterdir()]
        assert proc.poll() is None and len(workers) == 2, proc.communicate()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _wait_gone(workers, 5.0) == []


POLL_ONLY = """
import functools, os, sys, time
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from bqx.engine.lifeline import bind_to_driver

def work(n):
    time.sleep(n)

if __name__ == "__main__":
    pool = ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"),
                               initializer=functools.partial(bind_to_driver, pdeathsig=False), initargs=(os.getpid(),))
    pool.submit(work, 0).result()
    pool.submit(work, 600)
    print(*[p.pid for p in pool._processes.values()], flush=True)
    time.sleep(600)
"""


def test_without_pdeathsig_the_polling_thread_ends_an_orphaned_worker(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(POLL_ONLY))
    proc = subprocess.Popen([sys.executable, str(script)], env=_env(), stdout=subprocess.PIPE, text=True)
    try:
        worker = int(proc.stdout.readline())
        assert _alive(worker)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert _wait_gone([worker], 3.0) == []
    finally:
        if proc.poll() is None:
            proc.kill()


def test_task_retries_is_a_setting(tmp_path):
    from bqx.config import load_config
    from bqx.errors import ConfigError

    assert load_config(environ={}, cwd=tmp_path)[0].task_retries == 2
    assert load_config(environ={"BQX_TASK_RETRIES": "0"}, cwd=tmp_path)[0].task_retries == 0
    (tmp_path / "bqx.toml").write_text("task_retries = 5\n")
    assert load_config(environ={}, cwd=tmp_path)[0].task_retries == 5
    with pytest.raises(ConfigError, match="task_retries"):
        load_config(environ={"BQX_TASK_RETRIES": "-1"}, cwd=tmp_path)


def test_a_worker_whose_driver_is_gone_ends_before_it_writes():
    from bqx.engine import lifeline

    assert lifeline.driver_alive()  # outside a pool: no driver to lose, writes go on
    code = ("import os; import bqx.engine.lifeline as l; l._driver = os.getppid() + 1000000; "
            "l.ensure_driver(); print('wrote')")
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == lifeline.ORPHAN_EXIT and "wrote" not in proc.stdout
