"""Runs, reruns and exactly what a change recomputes."""

from __future__ import annotations

import os

import polars as pl
import pytest

from bqx.engine import run, status
from bqx.store.manifest import Manifest
from bqx.store.layout import partition_path, write_bars
from engine_helpers import done_keys, read_store, synth_bars

CORE = ["rate_index", "bqx", "extraction", "targets"]  # extraction: the labels (stage targets) read its σ
PAIRS = ("EURUSD", "USDJPY")
MONTHS = ("2024-01", "2024-02", "2024-03")


def _run(root, **kw):
    kw.setdefault("stages", ["targets"])
    return run(root, source=None, executor="serial", **kw)


def _all(stages, pairs=PAIRS, months=MONTHS):
    return {(s, p, m) for s in stages for p in pairs for m in months}


def test_run_completes_status_done_and_rerun_does_nothing(bars3, make_store):
    root = make_store(bars3)
    events = []
    first = _run(root, on_event=events.append)
    assert first.ok and first.total == 4 * 2 * 3 and first.to_run == 24
    assert done_keys(first) == _all(CORE)
    assert [e.kind for e in events].count("task_done") == 24
    assert events[0].kind == "run_started" and events[-1].kind == "run_finished"
    rows = {r["name"]: r for r in status(root)}
    for name in CORE:
        assert rows[name]["status"] == "done" and rows[name]["done"] == rows[name]["total"] == 6
        assert rows[name]["rows"] == 2 * 3 * 1500
    assert rows["bqx"]["features"] == 37
    assert rows["bollinger_bqx"]["status"] in ("pending", "not built")
    assert rows["lags"]["status"] == "view"
    # one file per (stage, pair, month): ts + the stage's columns, float64
    f = pl.read_parquet(partition_path(root, "bqx", "EURUSD", "2024-02"))
    assert f.height == 1500 and f.columns[0] == "ts" and len(f.columns) == 1 + 37
    assert all(t == pl.Float64 for t in f.drop("ts").dtypes)
    assert os.path.isfile(first.log_path)
    again = _run(root)
    assert again.ok and again.to_run == 0 and again.done == [] and again.skipped == 24


def test_parameter_change_reruns_its_family_and_dependants(bars3, make_store):
    root = make_store(bars3)
    _run(root)
    changed = _run(root, params={"bqx": {"windows": (15, 30, 45, 60, 75, 90)}})
    assert done_keys(changed) == _all(["bqx", "targets"])
    f = pl.read_parquet(partition_path(root, "bqx", "USDJPY", "2024-03"))
    assert "bqx_w90_return" in f.columns
    assert _run(root, params={"bqx": {"windows": (15, 30, 45, 60, 75, 90)}}).to_run == 0


def test_editing_a_months_bars_reruns_it_its_context_and_previous_targets(bars3, make_store):
    root = make_store(bars3)
    _run(root)
    edited = bars3.filter((pl.col("pair") == "EURUSD") & (pl.col("ts").dt.strftime("%Y-%m") == "2024-02"))
    edited = edited.with_columns((pl.col("close") * 1.001).alias("close"))
    assert write_bars(root, edited, source="test") == [("EURUSD", "2024-02")]
    again = _run(root)
    # rate_index (context 0) reads only its month; bqx of March reads February as context;
    # targets of January read February's first bars (lookahead), targets of March read March's bqx.
    assert done_keys(again) == {
        ("rate_index", "EURUSD", "2024-02"),
        ("bqx", "EURUSD", "2024-02"), ("bqx", "EURUSD", "2024-03"),
        ("extraction", "EURUSD", "2024-02"), ("extraction", "EURUSD", "2024-03"),
        ("targets", "EURUSD", "2024-01"), ("targets", "EURUSD", "2024-02"), ("targets", "EURUSD", "2024-03"),
    }


def test_deleted_or_altered_data_file_is_recomputed(bars3, make_store):
    root = make_store(bars3)
    _run(root)
    before = read_store(root, CORE)
    partition_path(root, "bqx", "USDJPY", "2024-02").unlink()
    altered = partition_path(root, "rate_index", "EURUSD", "2024-03")
    pl.read_parquet(altered).with_columns(pl.col("rate_index") * 2).write_parquet(altered)
    again = _run(root)
    assert done_keys(again) == {("bqx", "USDJPY", "2024-02"), ("rate_index", "EURUSD", "2024-03")}
    after = read_store(root, CORE)
    assert before.keys() == after.keys()
    for key in before:
        assert before[key].equals(after[key]), key


HELPER = """
FACTOR = {factor}
def scale(x):
    return x * FACTOR
"""

FAMILY_A = """
import polars as pl
from bqx.core.declaration import Column
from bqx.core.registry import family
from uhelper import scale

@family(name="ua", stage="user_a", inputs=("bars",), context=0,
        columns=lambda p: [Column("ua_scaled", "level", 0, "close scaled by the helper")])
def ua(frame, ctx):
    return frame.select(scale(pl.col("close")).cast(pl.Float64).alias("ua_scaled"))
"""

FAMILY_B = """
import polars as pl
from bqx.core.declaration import Column
from bqx.core.registry import family

@family(name="ub", stage="user_b", inputs=("bars",), context=1,
        columns=lambda p: [Column("ub_diff", "continuous", 1, "close - previous close")])
def ub(frame, ctx):
    return frame.select(pl.col("close").diff().cast(pl.Float64).alias("ub_diff"))
"""


def test_editing_a_helper_module_reruns_only_the_family_using_it(bars3, make_store, user_modules):
    root = make_store(bars3)
    user_modules("uhelper", HELPER.format(factor=2.0))
    user_modules("ufam_a", FAMILY_A)
    user_modules("ufam_b", FAMILY_B)
    first = _run(root, stages=["user_a", "user_b"])
    assert first.ok and done_keys(first) == _all(["user_a", "user_b"])
    assert _run(root, stages=["user_a", "user_b"]).to_run == 0
    user_modules("uhelper", HELPER.format(factor=3.0), load=False)
    again = _run(root, stages=["user_a", "user_b"])
    assert done_keys(again) == _all(["user_a"])


FAILING = """
import os
import polars as pl
from bqx.core.declaration import Column
from bqx.core.registry import family

@family(name="uf", stage="user_f", inputs=("bars",), context=0,
        columns=lambda p: [Column("uf_close", "level", 0, "close, unless told to fail")])
def uf(frame, ctx):
    if os.environ.get("UF_FAIL_PAIR") == ctx.pair.pair:
        raise ValueError("told to fail on " + ctx.pair.pair)
    return frame.select(pl.col("close").alias("uf_close"))

@family(name="ug", stage="user_g", inputs=("uf",), context=0,
        columns=lambda p: [Column("ug_double", "level", 0, "2 · uf_close")])
def ug(frame, ctx):
    return frame.select((2 * pl.col("uf_close")).alias("ug_double"))
"""


def test_failing_task_is_recorded_others_complete_retry_reruns_only_it(bars3, make_store, user_modules, monkeypatch):
    root = make_store(bars3)
    user_modules("ufail", FAILING)
    monkeypatch.setenv("UF_FAIL_PAIR", "USDJPY")
    res = _run(root, stages=["user_g", "targets"])
    assert not res.ok and res.exit_code == 1
    assert {(f["stage"], f["pair"], f["month"]) for f in res.failed} == _all(["user_f"], pairs=["USDJPY"])
    assert all("told to fail on USDJPY" in f["error"] for f in res.failed)
    assert {(b["stage"], b["pair"], b["month"]) for b in res.blocked} == _all(["user_g"], pairs=["USDJPY"])
    assert done_keys(res) == _all(CORE) | _all(["user_f", "user_g"], pairs=["EURUSD"])
    rows = {r["name"]: r for r in status(root)}
    assert rows["user_f"]["status"] == "failed" and rows["user_f"]["done"] == 3
    # user_g ran in the same chain as user_f; its blocked members are left as they were (never run), not "running"
    with Manifest(root) as man:
        left = {k: r.status for k, r in man.tasks("user_g").items()}
    assert {k[1] for k, st in left.items() if st == "done"} == {"EURUSD"}
    assert "running" not in left.values()
    assert {f["month"] for f in rows["user_f"]["failures"]} == set(MONTHS)
    monkeypatch.delenv("UF_FAIL_PAIR")
    retry = _run(root, stages=["user_g", "targets"], retry_failed=True)
    assert retry.ok and done_keys(retry) == _all(["user_f", "user_g"], pairs=["USDJPY"])
    out = pl.read_parquet(partition_path(root, "user_g", "USDJPY", "2024-02"))
    bars = pl.read_parquet(partition_path(root, "bars", "USDJPY", "2024-02"))
    assert out["ug_double"].to_list() == (2 * bars["close"]).to_list()
    assert _run(root, stages=["user_g", "targets"]).to_run == 0


def test_force_recomputes_selected_stage_only(bars3, make_store):
    root = make_store(bars3)
    _run(root)
    forced = _run(root, stages=["bqx"], force=True)
    assert done_keys(forced) == _all(["bqx"])


def test_process_pool_and_serial_write_identical_data(tmp_path):
    bars = synth_bars(months={"2024-01": 800, "2024-02": 800})
    a, b = tmp_path / "serial", tmp_path / "process"
    for root in (a, b):
        write_bars(root, bars, source="test")
    ra = run(a, source=None, stages=["targets"], executor="serial")
    rb = run(b, source=None, stages=["targets"], executor="process", workers=2)
    assert ra.ok and rb.ok and len(rb.done) == 16
    da, db = read_store(a, CORE), read_store(b, CORE)
    assert da.keys() == db.keys() and len(da) == 16
    for key in da:
        assert da[key].equals(db[key]), key


def test_unknown_stage_and_parameter_are_refused(bars3, make_store):
    from bqx.errors import ConfigError, UsageError

    root = make_store(bars3)
    with pytest.raises(UsageError, match="unknown stage 'bqxx'"):
        _run(root, stages=["bqxx"])
    with pytest.raises(ConfigError, match="unknown parameter 'window'"):
        _run(root, params={"bqx": {"window": 3}})
