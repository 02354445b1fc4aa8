"""The Dask executor: a real local cluster (scheduler + two worker processes on loopback) writes
exactly what the serial and process-pool executors write."""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest

distributed = pytest.importorskip("distributed")

from bqx.engine import run  # noqa: E402
from bqx.engine.executors import make_executor  # noqa: E402
from bqx.store.layout import write_bars  # noqa: E402
from bqx.engine.worker import TaskSpec  # noqa: E402
from bqx.errors import UsageError  # noqa: E402
from engine_helpers import done_keys, synth_bars  # noqa: E402

PAIRS = ("EURUSD", "USDJPY", "EURJPY")  # one closed triangle, so arbitrage has values
MONTHS = ("2024-01", "2024-02")
# targets pulls rate_index and bqx; arbitrage is a month task over all pairs (context 490 rows)
STAGES = ["targets", "arbitrage"]


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None, scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}) as c:
        yield c


def _data_files(root: Path) -> dict[str, pl.DataFrame]:
    """Every Parquet data file of the store but the bars: feature partitions and tables."""
    return {str(f.relative_to(root)): pl.read_parquet(f) for f in sorted(root.rglob("data.parquet"))
            if f.relative_to(root).parts[0] != "bars"}


def test_dask_cluster_writes_what_serial_and_process_pool_write(tmp_path, cluster):
    bars = synth_bars(pairs=PAIRS, months={m: 700 for m in MONTHS})
    stores = {ex: tmp_path / ex for ex in ("serial", "process", "dask", "unchained")}
    for root in stores.values():
        write_bars(root, bars, source="test")
    results = {
        "serial": run(stores["serial"], source=None, stages=STAGES, executor="serial"),
        "process": run(stores["process"], source=None, stages=STAGES, executor="process", workers=2),
        "dask": run(stores["dask"], source=None, stages=STAGES, executor="dask", scheduler=cluster.scheduler_address),
        # every stage submitted alone: the engine without chains
        "unchained": run(stores["unchained"], source=None, stages=STAGES, executor="process", workers=2, chain=False),
    }
    # 4 per-pair stages x 3 pairs x 2 months + 1 month task x 2 months
    expected = {(s, p, m) for s in ("rate_index", "bqx", "extraction", "targets") for p in PAIRS for m in MONTHS}
    expected |= {("arbitrage", None, m) for m in MONTHS}
    for name, res in results.items():
        assert res.ok, (name, res.failed)
        assert done_keys(res) == expected, name
    # the cluster's scheduler saw every submission of the dask run go to memory on a worker: one chain
    # rate_index+bqx+extraction per (pair, month), and targets (lookahead) and arbitrage (month task) alone
    on_cluster = {str(entry[0]) for entry in cluster.scheduler.transition_log if entry[2] == "memory"}
    ours = [k for k in on_cluster if k.startswith("bqx-")]
    assert len(ours) == 3 * 2 + 3 * 2 + 2, sorted(ours)
    chain = [k.split("-")[1] for k in ours if k.startswith("bqx-rate_index+")]  # rate_index+bqx+extraction (the labels' σ)
    assert len(chain) == 3 * 2 and all(set(c.split("+")) == {"rate_index", "bqx", "extraction"} for c in chain)
    data = {name: _data_files(root) for name, root in stores.items()}
    # 18 per-pair files + arbitrage's 3 pairs x 2 months + its tables
    assert len(data["serial"]) >= 18 + 6
    assert any(k.startswith("tables/") for k in data["serial"])
    for name in ("process", "dask", "unchained"):
        assert data[name].keys() == data["serial"].keys(), name
        for key, frame in data["serial"].items():
            other = data[name][key]
            assert other.columns == frame.columns, (name, key)
            for col in frame.columns:  # every column, bit for bit (NULLs in the same places)
                assert other[col].equals(frame[col]), (name, key, col)
    # a rerun on the cluster finds everything up to date
    again = run(stores["dask"], source=None, stages=STAGES, executor="dask", scheduler=cluster.scheduler_address)
    assert again.ok and again.to_run == 0


def test_dask_refuses_a_store_its_workers_cannot_see(tmp_path, cluster):
    ex = make_executor("dask", None, scheduler=cluster.scheduler_address)
    try:
        assert ex.workers == 2  # the threads of the cluster's two workers
        spec = TaskSpec(store=str(tmp_path / "nowhere"), stage="rate_index", pair="EURUSD", month="2024-01",
                        families=(("rate_index", "bqx.families.rate_index"),), params={}, inputs=(), context=0,
                        lookahead=0, reads={"EURUSD": ("2024-01",)}, infos={}, anchors={}, baseline="2024-01-01T00:00:00+00:00",
                        fingerprint="x", columns=())
        with pytest.raises(UsageError, match=r"does not see the store .*nowhere"):
            ex.submit(spec)
        with pytest.raises(UsageError, match="does not see the store"):  # remembered, not probed again
            ex.submit(replace(spec, month="2024-02"))
    finally:
        ex.close()


USER = """
import polars as pl
from bqx.core.declaration import Column
from bqx.core.registry import family

@family(name="udask", stage="user_dask", inputs=("bars",), context=0,
        columns=lambda p: [Column("udask_close", "level", 0, "close")])
def udask(frame, ctx):
    return frame.select(pl.col("close").alias("udask_close"))
"""


def test_workers_without_the_users_family_module_fail_its_tasks_loudly(tmp_path, cluster, user_modules):
    # the cluster's workers started before the module existed, without its directory on their path
    user_modules("udaskmod", USER)
    bars = synth_bars(pairs=("EURUSD",), months={"2024-01": 100, "2024-02": 100})
    res = run(tmp_path / "s", source=bars, stages=["user_dask", "rate_index"], executor="dask",
              scheduler=cluster.scheduler_address)
    assert not res.ok
    assert {(f["stage"], f["month"]) for f in res.failed} == {("user_dask", m) for m in MONTHS}
    assert all("cannot import" in f["error"] and "udaskmod" in f["error"] for f in res.failed)
    assert done_keys(res) == {("rate_index", "EURUSD", m) for m in MONTHS}  # the other stage ran


def test_dask_without_scheduler_starts_a_local_cluster(tmp_path):
    idle = make_executor("dask", 3)
    assert idle.workers == 3 and idle.cluster is None  # started with the first task only
    idle.close()
    root = tmp_path / "s"
    bars = synth_bars(pairs=("EURUSD",), months={"2024-01": 300, "2024-02": 300})
    res = run(root, source=bars, stages=["rate_index"], executor="dask", workers=1)
    assert res.ok and done_keys(res) == {("rate_index", "EURUSD", m) for m in MONTHS}
    serial = run(tmp_path / "t", source=bars, stages=["rate_index"], executor="serial")
    assert serial.ok
    for m in MONTHS:
        rel = Path("rate_index") / "pair=EURUSD" / f"year_month={m}" / "data.parquet"
        assert pl.read_parquet(root / rel).equals(pl.read_parquet(tmp_path / "t" / rel))


def test_another_client_opened_during_the_run_does_not_break_it(tmp_path, cluster):
    """A Client the user opens while a run waits (a notebook's, a monitoring thread's) becomes the
    process's newest; the run keeps waiting on its own, and its tasks are not reported as crashed."""

    others = []

    def open_another_client(ev):
        if ev.kind == "task_done" and not others:  # in a thread of its own, as a monitor would
            t = threading.Thread(target=lambda: others.append(distributed.Client(cluster.scheduler_address)))
            t.start()
            t.join()

    bars = synth_bars(pairs=PAIRS, months={m: 400 for m in MONTHS})
    try:
        res = run(tmp_path / "s", source=bars, stages=["targets"], executor="dask",
                  scheduler=cluster.scheduler_address, on_event=open_another_client)
    finally:
        for c in others:
            c.close()
    assert others, "no second client was opened: the test did not test anything"
    assert res.ok, res.failed
    assert done_keys(res) == {(s, p, m) for s in ("rate_index", "bqx", "extraction", "targets")
                              for p in PAIRS for m in MONTHS}


def test_scheduler_needs_the_dask_executor(tmp_path):
    with pytest.raises(UsageError, match="needs the dask executor"):
        run(tmp_path / "s", source=synth_bars(months={"2024-01": 50}), executor="process",
            scheduler="tcp://127.0.0.1:8786")
    assert not os.path.exists(tmp_path / "s" / "manifest.sqlite")


class _Lost:
    """A future whose task the scheduler gave up on: every worker that held it died."""

    def __init__(self, allowed_failures: int):
        from types import SimpleNamespace

        from distributed.scheduler import KilledWorker

        self.status = "error"
        self.exc = KilledWorker("k", SimpleNamespace(address="tcp://10.0.0.9:1234"), allowed_failures)
        self.released = False

    def exception(self):
        return self.exc

    def done(self):
        return True

    def release(self):
        self.released = True


def test_a_killed_worker_counts_the_schedulers_allowed_failures_and_gives_up_past_task_retries(monkeypatch):
    from distributed.scheduler import KilledWorker  # noqa: F401 - the real exception type, raised by the scheduler

    from bqx.engine.dask_executor import DaskExecutor, DaskHandle

    ex = DaskExecutor.__new__(DaskExecutor)  # no cluster: the bookkeeping alone
    ex.retries, ex.lost, ex.resubmitted, ex.on_retry, ex._client, ex.poll_seconds = 2, 0, [], None, None, 5.0
    ex._finished, ex._workerless_why = threading.Event(), ""
    spec = TaskSpec(store="s3://b/s", stage="rate_index", pair="EURUSD", month="2024-01",
                    families=(("rate_index", "bqx.families.rate_index"),), params={}, inputs=(), context=0,
                    lookahead=0, reads={}, infos={}, anchors={}, baseline="2024-01-01T00:00:00+00:00",
                    fingerprint="f", columns=())
    fresh = []
    monkeypatch.setattr(ex, "_submit", lambda s: fresh.append(_Lost(0)) or fresh[-1])
    seen = []
    ex.on_retry = lambda s, n, worker: seen.append((s.stage, n, worker))

    # a scheduler at allowed_failures=0: each KilledWorker is one death; 2 retries, then given up
    h = DaskHandle(spec, _Lost(0))
    assert ex.wait([h]) == [h]
    assert seen == [("rate_index", 1, "tcp://10.0.0.9:1234"), ("rate_index", 2, "tcp://10.0.0.9:1234")]
    assert h.deaths == 3 and ex.lost == 3 and len(fresh) == 2
    res = ex.result(h)
    assert not res.ok and res.error.startswith("the worker process died 3 times running rate_index EURUSD 2024-01")
    assert "Dask worker tcp://10.0.0.9:1234" in res.error and h.future.released

    # Dask's default allowed_failures=3: one KilledWorker means 4 workers died; past 2 retries at once
    seen.clear()
    h = DaskHandle(spec, _Lost(3))
    assert ex.wait([h]) == [h] and seen == [] and h.deaths == 4
    assert ex.result(h).error.startswith("the worker process died 4 times running rate_index EURUSD 2024-01")


def test_a_task_checks_the_code_of_the_worker_it_lands_on(tmp_path):
    # a worker that joined after the probe (a replacement) still runs only the driver's code
    from bqx.engine.dask_executor import dask_task
    from bqx.engine.fingerprint import code_digest

    spec = TaskSpec(store=str(tmp_path / "s"), stage="rate_index", pair="EURUSD", month="2024-01",
                    families=(("rate_index", "bqx.families.rate_index"),), params={}, inputs=(), context=0,
                    lookahead=0, reads={"EURUSD": ("2024-01",)}, infos={}, anchors={},
                    baseline="2024-01-01T00:00:00+00:00", fingerprint="x", columns=())
    other = dask_task(spec, "0" * 64)
    assert not other.ok and "runs other code for bqx.families.rate_index" in other.error
    assert "the driver has 000000000000" in other.error and not (tmp_path / "s").exists()  # nothing ran
    same = dask_task(spec, code_digest(("bqx.families.rate_index",)))
    assert "runs other code" not in (same.error or "")  # it ran (and failed: the store has no bars)


def test_a_result_lost_with_its_worker_after_it_finished_is_run_again(monkeypatch):
    from bqx.engine.dask_executor import DaskExecutor, DaskHandle

    class Fetched(_Lost):  # finished, then its worker died before the driver fetched it, and the rerun's too
        def __init__(self):
            super().__init__(0)
            self.status = "finished"

        def result(self):
            self.status = "error"
            raise self.exc

    class Ok:
        status = "finished"

        def result(self):
            return "the result"

        def release(self):
            pass

    ex = DaskExecutor.__new__(DaskExecutor)
    ex.retries, ex.lost, ex.resubmitted, ex.on_retry, ex._client, ex.poll_seconds = 2, 0, [], None, None, 5.0
    ex._finished, ex._workerless_why = threading.Event(), ""
    spec = TaskSpec(store="s3://b/s", stage="bqx", pair="EURUSD", month="2024-01", families=(), params={},
                    inputs=(), context=0, lookahead=0, reads={}, infos={}, anchors={},
                    baseline="2024-01-01T00:00:00+00:00", fingerprint="f", columns=())
    monkeypatch.setattr(ex, "_submit", lambda s: Ok())
    h = DaskHandle(spec, Fetched())
    assert ex.result(h) == "the result" and h.deaths == 1 and ex.resubmitted == [("bqx EURUSD 2024-01", 1)]
    ex.retries = 0
    h = DaskHandle(spec, Fetched())
    assert ex.result(h).error.startswith("the worker process died 1 time running bqx EURUSD 2024-01")


@pytest.mark.parametrize("value, said", [("soon", "is not a number of seconds"), ("-1", "is negative")])
def test_a_bad_no_workers_timeout_is_a_usage_error(monkeypatch, value, said):
    monkeypatch.setenv("BQX_DASK_NO_WORKERS_TIMEOUT", value)
    with pytest.raises(UsageError, match=f"BQX_DASK_NO_WORKERS_TIMEOUT='{value}' {said}"):
        make_executor("dask", 1)
    monkeypatch.setenv("BQX_DASK_NO_WORKERS_TIMEOUT", "0")  # waits forever: accepted
    idle = make_executor("dask", 1)
    assert idle.no_workers_timeout == 0
    idle.close()
