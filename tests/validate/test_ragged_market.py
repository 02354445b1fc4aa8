"""The ragged market end to end: written as files, `bqx ingest`, `bqx run`, `bqx validate` (every built-in
family passes: no false alarm), `bqx export`; and planted leaks are still caught on it.

Seven pairs (three triangles, every role of bqx.bars.sample_ragged) over 2024-02-27 .. 2024-03-12: a
month boundary, the US daylight-saving change of 2024-03-10 (the weekly reopen moves from 22:00 to
21:00 UTC), staggered first and last bars (the false leak's trigger), a 6-hour outage, an illiquid
pair, a pair without volume and a bid-only pair.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from bqx.bars.sample import make_ragged, sample_market, write_market
from bqx.bars.sample_ragged import ILLIQUID_MISSING, ROLES
from bqx.validate import validate
from tests.conftest import sample_bars
from tests.validate.conftest import user_family

PAIRS = ("EURGBP", "EURJPY", "EURUSD", "GBPNZD", "GBPUSD", "NZDUSD", "USDJPY")
FIRST = datetime(2024, 2, 27, tzinfo=timezone.utc)
LAST = datetime(2024, 3, 12, tzinfo=timezone.utc)
C = pl.col("close")


def bqx(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "bqx", *args], capture_output=True, text=True, env=env, timeout=900)


@pytest.fixture(scope="module")
def market() -> pl.DataFrame:
    tidy = sample_bars(PAIRS, "2024-02", 2).filter((pl.col("ts") >= FIRST) & (pl.col("ts") < LAST))
    return make_ragged(tidy, seed=0)


@pytest.fixture(scope="module")
def store(market, tmp_path_factory) -> Path:
    logging.getLogger("bqx").setLevel(logging.ERROR)
    base = tmp_path_factory.mktemp("ragged")
    write_market(market, base / "files", "csv", ragged=True)
    root = base / "store"
    res = bqx("ingest", str(base / "files"), "--store", str(root))
    assert res.returncode == 0, res.stderr
    res = bqx("run", "--store", str(root), "--workers", "2")
    assert res.returncode == 0, res.stderr
    return root


def test_the_market_is_ragged_as_documented(market):
    per = market.group_by("pair").agg(pl.col("ts").min().alias("first"), pl.col("ts").max().alias("last"),
                                      pl.len().alias("n")).sort("pair")
    end = per["last"].max()
    early = [(end - t) // timedelta(minutes=1) for t in per["last"]]
    late = [(t - per["first"].min()) // timedelta(minutes=1) for t in per["first"]]
    assert min(e for e in early if e > 0) >= 1 and max(early) <= 61 and sum(e > 0 for e in early) >= 3
    assert max(late) <= 180 and sum(x > 0 for x in late) >= 2
    jpy = market.filter(pl.col("pair") == "USDJPY")["ts"]
    weekday_gaps = jpy.diff().filter(jpy.dt.weekday() < 5)
    assert weekday_gaps.max() >= timedelta(hours=6)  # the outage (weekends start on a Friday or end on a Sunday)
    tidy = sample_bars(PAIRS, "2024-02", 2).filter((pl.col("ts") >= FIRST) & (pl.col("ts") < LAST))
    n_tidy = tidy.filter(pl.col("pair") == "GBPNZD").height
    n_thin = market.filter(pl.col("pair") == "GBPNZD").height
    assert 0.6 * ILLIQUID_MISSING < 1 - n_thin / n_tidy < 1.6 * ILLIQUID_MISSING
    assert (market.filter(pl.col("pair") == "NZDUSD")["volume"] == 0).all()
    bid = market.filter(pl.col("pair") == "EURJPY")
    assert bid["ask_close"].is_null().all() and bid["close"].equals(bid["bid_close"])
    # weekly reopens follow New York: 22:00 UTC before 2024-03-10, 21:00 UTC from it (plus a pair's lag)
    usd = market.filter(pl.col("pair") == "EURUSD")["ts"]
    reopen = usd.filter(usd.diff() > timedelta(days=1))
    assert [(t.day, t.hour) for t in reopen] == [(3, 22), (10, 21)]
    again = make_ragged(tidy, seed=0)
    assert again.equals(market) and not make_ragged(tidy, seed=1).equals(market)
    assert set(ROLES) <= set(PAIRS)


def test_bqx_sample_ragged_writes_the_feeds_columns(tmp_path):
    res = bqx("sample", "--out", str(tmp_path), "--pairs", "EURUSD,EURJPY,NZDUSD", "--months", "1", "--ragged",
              "--format", "csv")
    assert res.returncode == 0, res.stderr
    heads = {p: (tmp_path / f"{p}.csv").open().readline().strip().split(",") for p in ("EURUSD", "EURJPY", "NZDUSD")}
    assert heads["EURJPY"] == ["ts", "bid_open", "bid_high", "bid_low", "bid_close", "volume"]
    assert "volume" not in heads["NZDUSD"] and "ask_close" in heads["NZDUSD"]
    assert heads["EURUSD"][:2] == ["ts", "open"]
    written = pl.read_csv(tmp_path / "EURUSD.csv")
    assert written.height == sample_market("EURUSD", "2024-07", 1, ragged=True).height


def test_ingest_run_validate_export_without_a_false_alarm(store, tmp_path):
    pairs = json.loads((store / "pairs.json").read_text())
    pairs = pairs.get("pairs", pairs)
    assert pairs["EURJPY"]["basis"] == "bid" and not pairs["EURJPY"]["has_bidask"]
    assert not pairs["NZDUSD"]["has_volume"]
    # --cuts 100: the sweep dominates the cost (500 cuts by default); truncation, perturbation (where the false
    # leak showed) and the boundary check run at their defaults
    res = bqx("validate", "--store", str(store), "--json", "--cuts", "100")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr
    report = json.loads(res.stdout)
    verdicts = {f["family"]: f["verdict"] for f in report["families"]}
    for name in ("currency_indices", "arbitrage", "advanced", "technical"):
        assert verdicts[name] == "pass", verdicts
    assert set(verdicts.values()) <= {"pass", "exempt", "not stored"}, verdicts
    res = bqx("export", "--store", str(store), "--to", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    assert list((tmp_path / "out").rglob("*.parquet"))


def test_planted_leaks_are_caught_on_the_ragged_market(store):
    def cross(frame, ctx):  # every pair reads its next bar in one hour of the day
        leak = pl.when(pl.col("ts").dt.hour() == 9).then(C.shift(-1).over("pair")).otherwise(C.mean().over("ts"))
        return frame.select(leak.cast(pl.Float64).alias("ragged_cross_x")), {}

    with user_family(store, "ragged_cross", cross, context=10, cross_pair=True):
        report = validate(store, ["ragged_cross"], save=False, workers=1)
    res = report.family("ragged_cross")
    assert res.verdict == "leak", report.summary()
    failed = [c for c in ("truncation", "perturbation", "sweep") if res.checks[c].status == "fail"]
    assert failed and res.checks[failed[0]].failures[0].column == "ragged_cross_x"

    def ahead(frame, ctx):  # the next bar's close on every 97th minute of the day
        minute = pl.col("ts").dt.hour().cast(pl.Int32) * 60 + pl.col("ts").dt.minute().cast(pl.Int32)
        return frame.select(pl.when(minute % 97 == 0).then(C.shift(-1)).otherwise(C).cast(pl.Float64).alias("ragged_ahead_x"))

    with user_family(store, "ragged_ahead", ahead, context=240):
        report = validate(store, ["ragged_ahead"], save=False, workers=1)
    assert report.family("ragged_ahead").verdict == "leak", report.summary()


def test_the_validator_opens_a_month_task_as_the_worker_read_it(store):
    """Every pair's rows start at the earliest pair's context row before the month (the month-task rule), not
    at its own context row: the illiquid pair's context reaches further back, the dense pairs follow it."""
    from bqx.core.registry import REGISTRY
    from bqx.validate.recompute import open_window
    from bqx.validate.storeview import StoreView

    view = StoreView(store)
    fam = REGISTRY.get("arbitrage")
    context = view.spec_of(fam).context
    start = datetime(2024, 3, 1, tzinfo=timezone.utc)
    bars = {p: view.bars(p)["ts"] for p in view.pairs()}
    own = {p: t[max(0, int(t.search_sorted(start)) - context)] for p, t in bars.items()}
    t0 = min(own.values())
    assert len(set(own.values())) > 1  # the pairs' own context starts differ on this market
    win = open_window(view, fam, None, "2024-03")
    for p, frame in win.frames.items():
        assert frame["ts"][0] == bars[p][int(bars[p].search_sorted(t0))], p
        assert frame["ts"][-1] < datetime(2024, 4, 1, tzinfo=timezone.utc)
    assert win.month_ts()[0] == min(t[int(t.search_sorted(start))] for t in bars.values())
