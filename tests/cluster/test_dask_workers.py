"""Dask workers with no shared disk, and worker loss survived: a real cluster of 3 worker processes
(`dask worker`, each in its own scratch directory, knowing only the S3 server's endpoint and fake
credentials) runs against an s3:// store on a loopback moto server, and every column of every
partition equals a process-pool run's on a local store; a worker SIGKILLed mid-run (no nanny, or
under a nanny that restarts it), or a random worker killed every few seconds, changes nothing in
the output; a task that kills every worker it lands on fails with the reason after task_retries.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from bqx.engine import run
from bqx.store.backend import backend_for
from dask_cluster import Killer, assert_same, partitions

PAIRS = ["EURUSD", "USDJPY", "EURJPY", "GBPUSD", "EURGBP"]  # two closed triangles, for arbitrage
MONTH = "2024-07"
STAGES = ["targets", "arbitrage"]  # rate_index+bqx+extraction chains, targets, one month task
PER_PAIR = ("rate_index", "bqx", "extraction", "targets")


@pytest.fixture(scope="module")
def bars(sample) -> pl.DataFrame:
    """The sample market's first 5 days of July 2024 for 5 pairs (one month partition each)."""
    return sample(tuple(PAIRS), MONTH, 1).filter(pl.col("ts") < datetime(2024, 7, 6, tzinfo=timezone.utc))


@pytest.fixture(scope="module")
def reference(bars, tmp_path_factory) -> dict[str, pl.DataFrame]:
    """Every partition of a process-pool run on a local store."""
    root = tmp_path_factory.mktemp("reference") / "store"
    res = run(root, source=bars, stages=STAGES, executor="process", workers=2)
    assert res.ok, res.failed
    return partitions(root)


def expected_keys() -> set[tuple[str, str | None, str]]:
    return {(s, p, MONTH) for s in PER_PAIR for p in PAIRS} | {("arbitrage", None, MONTH)}


def store_root(tmp_path: Path, kind: str = "s3") -> str:
    """A fresh store: an s3:// prefix on the loopback server (the workers know only the URL) or a local path."""
    name = f"store-{uuid.uuid4().hex[:8]}"
    return f"s3://bqx/{name}" if kind == "s3" else str(tmp_path / name)


def run_log(result) -> str:
    if result.store.startswith("s3://"):  # uploaded to the store's logs/ when the run ended
        return backend_for(result.store).read_text(result.log_path[len(result.store) + 1:])
    return Path(result.log_path).read_text()


def test_three_worker_processes_write_what_the_process_pool_writes(three_workers, bars, reference, tmp_path, s3_env,
                                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)  # a store URL taken for a path would land here
    root = store_root(tmp_path)
    res = run(root, source=bars, stages=STAGES, executor="dask", scheduler=three_workers.address)
    assert res.ok, res.failed
    assert list(tmp_path.iterdir()) == []  # nothing of the store on the driver's disk
    assert {(d["stage"], d["pair"], d["month"]) for d in res.done} == expected_keys()
    assert len(reference) >= len(PAIRS) * len(PER_PAIR) + 1
    assert_same(partitions(root), reference)
    # the tasks ran in the worker processes (not in the driver), and their scratch dirs hold only Dask's own
    with three_workers.client() as c:
        pids = set(c.run(os.getpid).values())
    assert len(pids) == 3 and os.getpid() not in pids
    for w in three_workers.started:
        assert {p.name for p in w.cwd.iterdir()} <= {"dask-scratch"}, w.cwd


@pytest.mark.parametrize("kind", ["s3", "local"])
def test_a_worker_sigkilled_mid_task_is_survived_and_the_output_is_identical(three_workers, bars, reference,
                                                                              tmp_path, s3_env, kind):
    counter = tmp_path / "kills"
    # the worker handed bqx EURUSD (in its chain) SIGKILLs itself, once
    three_workers.set_env(BQX_TEST_KILL_WORKER=f"bqx:EURUSD:{MONTH}:1:{counter}")
    root = store_root(tmp_path, kind)
    # what a worker killed mid-write leaves in a local store (the kill above comes before any write;
    # an object store has no such files: one PUT per object)
    left = tmp_path / "unused" if kind == "s3" else Path(root) / "rate_index" / f".data.parquet.{uuid.uuid4().hex[:8]}.tmp"

    def leave_a_temp_file(ev):
        if kind == "local" and ev.kind == "task_done" and not left.exists():
            left.write_bytes(b"half a file")

    res = run(root, source=bars, stages=STAGES, executor="dask", scheduler=three_workers.address,
              on_event=leave_a_temp_file)
    assert res.ok, res.failed
    died = counter.read_text().split()
    assert len(died) == 1  # it did die, once
    assert not left.exists()  # removed at the end of a run that lost a worker
    assert len(three_workers.alive()) == 2 and int(died[0]) not in {w.pid() for w in three_workers.alive()}
    log = run_log(res)
    assert "a Dask worker" in log and "died holding rate_index+bqx+extraction EURUSD" in log, log
    assert log.count("task_retried") == 3  # the chain's three members, run again once
    assert {(d["stage"], d["pair"], d["month"]) for d in res.done} == expected_keys()
    assert_same(partitions(root), reference)
    if kind == "local":
        assert not list(Path(root).rglob("*.tmp"))


def test_a_task_that_kills_every_worker_it_lands_on_fails_with_the_reason(three_workers, bars, tmp_path, s3_env):
    counter = tmp_path / "kills"
    three_workers.set_env(BQX_TEST_KILL_WORKER=f"rate_index:USDJPY:{MONTH}:0:{counter}")  # every time
    res = run(store_root(tmp_path), source=bars, stages=["targets"], executor="dask",
              scheduler=three_workers.address, task_retries=1)
    assert not res.ok and res.exit_code == 1
    assert [(f["stage"], f["pair"]) for f in res.failed] == [("rate_index", "USDJPY")]  # as with the process pool
    assert res.failed[0]["error"].startswith(
        f"the worker process died 2 times running rate_index+bqx+extraction USDJPY {MONTH} (killed by a signal")
    assert "Dask worker tcp://127.0.0.1:" in res.failed[0]["error"]
    assert {(b["stage"], b["pair"]) for b in res.blocked} == {(s, "USDJPY") for s in ("bqx", "extraction", "targets")}
    assert {d["pair"] for d in res.done} == set(PAIRS) - {"USDJPY"}  # the others completed
    died = counter.read_text().split()
    assert len(died) == 2 and len(set(died)) == 2  # tried twice (task_retries=1), on two different workers


@pytest.mark.slow
def test_soak_a_random_worker_killed_every_few_seconds(three_workers, bars, reference, tmp_path, s3_env):
    root = store_root(tmp_path)
    # a random worker holding a task, every 1.5 s: the run's tasks take seconds here, and a kill of an idle
    # worker (which the scheduler shrugs off) would leave nothing soaked on a fast machine
    killer = Killer(three_workers, first=0.5, every=1.5, kills=6, seed=25, busy=True)
    retried = []

    def on_event(ev):
        killer.on_event(ev)  # the killing begins with the first task
        if ev.kind == "task_retried":
            retried.append(ev)

    killer.start()
    try:
        res = run(root, source=bars, stages=STAGES, executor="dask", scheduler=three_workers.address,
                  task_retries=6, on_event=on_event)
    finally:
        killer.stop()
    assert not killer.errors, killer.errors
    assert retried and killer.killed, "no kill hit a task: nothing was soaked"
    assert res.ok, res.failed
    assert {(d["stage"], d["pair"], d["month"]) for d in res.done} == expected_keys()
    assert_same(partitions(root), reference)


def test_under_a_nanny_the_killed_worker_is_restarted_and_the_run_completes(tmp_path_factory, s3_variables, bars,
                                                                            reference, tmp_path, s3_env):
    from dask_cluster import ProcessCluster

    counter = tmp_path / "kills"
    env = {**s3_variables, "BQX_TEST_KILL_WORKER": f"bqx:GBPUSD:{MONTH}:1:{counter}"}  # nanny-started workers inherit it
    with ProcessCluster(tmp_path_factory.mktemp("nanny"), workers=2, env=env, nanny=True) as cluster:
        before = {w.name: w.pid() for w in cluster.started}
        root = store_root(tmp_path)
        res = run(root, source=bars, stages=STAGES, executor="dask", scheduler=cluster.address)
        assert res.ok, res.failed
        died = int(counter.read_text().split()[0])
        assert died in before.values()
        cluster.wait_for_workers(2)  # the nanny started a new worker process in place of the dead one
        after = {w.name: w.pid() for w in cluster.started}
        assert len(cluster.started) == 2 and died not in after.values() and None not in after.values()
        assert sum(before[n] != after[n] for n in before) == 1
    assert "died holding rate_index+bqx+extraction GBPUSD" in run_log(res)
    assert_same(partitions(root), reference)


def test_a_cluster_left_without_workers_fails_the_rest_with_the_reason_and_a_rerun_completes(
        tmp_path_factory, s3_variables, bars, reference, tmp_path, s3_env, monkeypatch):
    from dask_cluster import ProcessCluster

    counter = tmp_path / "kills"
    monkeypatch.setenv("BQX_DASK_NO_WORKERS_TIMEOUT", "3")  # the driver's patience with a workerless scheduler
    env = {**s3_variables, "BQX_TEST_KILL_WORKER": f"bqx:GBPUSD:{MONTH}:1:{counter}"}  # the only worker dies
    with ProcessCluster(tmp_path_factory.mktemp("lone"), workers=1, env=env) as cluster:
        root = store_root(tmp_path)
        res = run(root, source=bars, stages=STAGES, executor="dask", scheduler=cluster.address, task_retries=2)
        assert not res.ok and res.exit_code == 1
        assert counter.read_text().split() and not cluster.alive()  # it died, and nothing replaced it
        reasons = {f["error"] for f in res.failed}
        assert len(reasons) == 1 and next(iter(reasons)).startswith(
            "no Dask worker was connected to the scheduler for 3 s (every worker died or left, and none came back")
        assert f"dask worker {cluster.address}" in next(iter(reasons))
        assert ("rate_index", "GBPUSD") in {(f["stage"], f["pair"]) for f in res.failed}
        cluster.start_worker()  # a worker is back (the kill hook counted its one kill): the rerun completes
        cluster.wait_for_workers(1)
        again = run(root, source=None, stages=STAGES, executor="dask", scheduler=cluster.address)
        assert again.ok, again.failed
        assert {(d["stage"], d["pair"]) for d in again.done} >= {(f["stage"], f["pair"]) for f in res.failed}
    assert_same(partitions(root), reference)
