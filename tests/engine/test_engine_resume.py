"""Kill and resume; one writer at a time; readers during a run; store format and baseline rules."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import polars as pl
import pytest

from bqx.engine import load, run, status
from bqx.store.manifest import StoreFormatError
from bqx.store.layout import write_bars
from bqx.errors import InputError, StoreLockedError
from engine_helpers import read_store, synth_bars

CORE = ["rate_index", "bqx", "extraction", "targets"]  # extraction: the labels' σ


def _python(code: str, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_sigkill_then_rerun_equals_an_uninterrupted_run(tmp_path):
    bars = synth_bars(months={"2024-01": 700, "2024-02": 700, "2024-03": 700})
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    for root in (killed, clean):
        write_bars(root, bars, source="test")
    code = (f"from bqx.engine.run import run; run({str(killed)!r}, source=None, stages=['targets'], "
            "executor='serial')")
    proc = _python(code, {"BQX_TEST_KILL_AFTER_TASKS": "7"})
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    rows = {r["name"]: r for r in status(killed)}
    assert sum(rows[s]["done"] for s in CORE) == 7  # 7 tasks recorded, then killed
    resumed = run(killed, source=None, stages=["targets"], executor="serial")
    assert resumed.ok and len(resumed.done) == 24 - 7
    run(clean, source=None, stages=["targets"], executor="serial")
    a, b = read_store(killed, CORE), read_store(clean, CORE)
    assert a.keys() == b.keys() and len(a) == 24
    for key in a:
        assert a[key].equals(b[key]), key
    assert not list(killed.rglob("*.tmp"))


SLOW = """
import time
import polars as pl
from bqx.core.declaration import Column
from bqx.core.registry import family

@family(name="uslow", stage="user_slow", inputs=("bars",), context=0,
        columns=lambda p: [Column("uslow_close", "level", 0, "close, slowly")])
def uslow(frame, ctx):
    time.sleep(0.4)
    return frame.select(pl.col("close").alias("uslow_close"))
"""


def test_second_writer_refused_while_status_and_reader_work(tmp_path, user_modules):
    root = tmp_path / "s"
    bars = synth_bars(months={"2024-01": 400, "2024-02": 400})
    assert run(root, source=bars, stages=["bqx"], executor="serial").ok
    before = read_store(root, ["bars", *CORE[:2]])
    expected = load(root, columns=["bqx_w30_avg"]).collect()
    user_modules("uslowmod", SLOW)
    code = (f"import uslowmod; from bqx.engine.run import run; "
            f"run({str(root)!r}, source=None, stages=['user_slow'], executor='serial')")
    proc = _python(code, {"PYTHONPATH": str(user_modules.dir)})
    try:
        deadline = time.time() + 60
        while time.time() < deadline:  # wait until the run is under way
            rows = {r["name"]: r for r in status(root)} if (root / "manifest.sqlite").exists() else {}
            if rows.get("user_slow", {}).get("status") in ("running", "partial"):
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        else:
            pytest.fail("the background run never started")
        with pytest.raises(StoreLockedError, match=r"being written by pid \d+"):
            run(root, source=None, stages=["bqx"], executor="serial", force=True)
        rows = {r["name"]: r for r in status(root)}  # a reader during the run
        assert rows["bqx"]["status"] == "done" and rows["user_slow"]["total"] == 4
        assert load(root, columns=["bqx_w30_avg"]).collect().equals(expected)
        proc.wait(timeout=60)
        assert proc.returncode == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    after = read_store(root, ["bars", *CORE[:2]])
    assert before.keys() == after.keys()
    assert all(before[k].equals(after[k]) for k in before)
    assert {r["name"]: r for r in status(root)}["user_slow"]["status"] == "done"


def test_incompatible_store_format_is_refused(tmp_path):
    root = tmp_path / "s"
    run(root, source=synth_bars(months={"2024-01": 200}), stages=["rate_index"], executor="serial")
    with sqlite3.connect(root / "manifest.sqlite") as conn:
        conn.execute("UPDATE meta SET value='999' WHERE key='format_version'")
    with pytest.raises(StoreFormatError, match="format 999.*new --store, or delete"):
        run(root, source=None, stages=["rate_index"], executor="serial")


def test_bars_older_than_the_baseline_are_refused_and_anchor_never_changes(tmp_path):
    root = tmp_path / "s"
    bars = synth_bars(months={"2024-01": 300, "2024-02": 300, "2024-03": 300})
    late = bars.filter(pl.col("ts").dt.month() >= 2)
    run(root, source=late, stages=["rate_index"], executor="serial")
    first = pl.read_parquet(root / "rate_index/pair=EURUSD/year_month=2024-02/data.parquet")
    assert first["rate_index"][0] == 100.0  # the baseline: first bar at/after 2024-02-01 00:00 UTC
    with pytest.raises(InputError, match="before this store's baseline time 2024-02-01"):
        run(root, source=bars.filter(pl.col("ts").dt.month() == 1), stages=["rate_index"], executor="serial")
    assert not (root / "bars/pair=EURUSD/year_month=2024-01").exists()
    # appending a later month keeps the anchor: February's first close stays the base
    more = synth_bars(months={"2024-04": 300}, seed=5)
    res = run(root, source=more, stages=["rate_index"], executor="serial")
    assert {(d["pair"], d["month"]) for d in res.done} == {("EURUSD", "2024-04"), ("USDJPY", "2024-04")}
    april = pl.read_parquet(root / "rate_index/pair=EURUSD/year_month=2024-04/data.parquet")
    c_base = late.filter(pl.col("pair") == "EURUSD")["close"][0]
    assert april["rate_index"][0] == pytest.approx(100.0 * more.filter(pl.col("pair") == "EURUSD")["close"][0] / c_base,
                                                   rel=1e-15)


def test_appending_a_month_reruns_the_previous_months_targets(tmp_path):
    root = tmp_path / "s"
    bars = synth_bars(months={"2024-01": 300, "2024-02": 300})
    run(root, source=bars.filter(pl.col("ts").dt.month() == 1), stages=["targets"], executor="serial")
    res = run(root, source=bars.filter(pl.col("ts").dt.month() == 2), stages=["targets"], executor="serial")
    jan = {(d["stage"], d["pair"]) for d in res.done if d["month"] == "2024-01"}
    assert jan == {("targets", "EURUSD"), ("targets", "USDJPY")}
    t = pl.read_parquet(root / "targets/pair=EURUSD/year_month=2024-01/data.parquet")
    assert t["target_bqx_h15"].tail(15).null_count() == 0  # now reads February's first bars
