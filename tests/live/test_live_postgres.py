"""`bqx live` on a PostgreSQL table, against the real server the suite starts: rows inserted after the
session's last bar are polled, computed as the batch stores them, and bad rows are rejected with reasons."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "postgres"))
import pg_server  # noqa: E402

import bqx  # noqa: E402
from bqx.bars.readers.postgres import PgLayout  # noqa: E402
from bqx.live.pg_source import PostgresSource  # noqa: E402
from tests.live.conftest import PAIRS, assert_agrees, kinds, stored_bars  # noqa: E402
from tests.postgres.conftest import pg, pgpass  # noqa: E402,F401 - the suite's server fixtures

START = datetime(2024, 7, 31, 23, 50, tzinfo=timezone.utc)
CAST = {c: pl.Float64 for c in ("open", "high", "low", "close", "volume", *(f"{s}_{p}" for s in ("bid", "ask")
                                                                             for p in ("open", "high", "low", "close")))}


def _tables(pg, schema: str, months: list[str]) -> None:
    pg.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE', f'CREATE SCHEMA "{schema}" AUTHORIZATION {pg_server.USER}')
    for p in PAIRS:
        pg_server.create_bar_table(pg, f"{schema}.m1_{p.lower()}", months)


def _insert(pg, schema: str, bars: pl.DataFrame) -> None:
    for (pair,), part in bars.partition_by("pair", as_dict=True, maintain_order=True).items():
        pg_server.insert_bars(pg, f"{schema}.m1_{pair.lower()}", part.drop("pair").cast(CAST))


def test_polled_rows_equal_the_batch_and_bad_rows_are_rejected(pg, pgpass, live_store):
    bars = stored_bars(live_store, START)
    minutes = bars["ts"].unique().sort()
    first, second = bars.filter(pl.col("ts") < minutes[5]), bars.filter(pl.col("ts") >= minutes[5])
    _tables(pg, "livepoll", ["2024-07"])
    _insert(pg, "livepoll", first)
    live = bqx.Live(live_store, until=START)
    src = PostgresSource(pg.url(), PgLayout(table="livepoll.m1_{pair}"), live.pairs, live.last_bars)
    try:
        frame, bad = src.poll()
        assert frame.height == first.height and not bad
        out = [live.update(frame)]
        assert src.poll()[0].height == 0  # nothing newer
        # the second half, with two bad rows beside real ones: a NULL close (the reader's rule) and high < low (ingest's)
        eur = second.filter(pl.col("pair") == "EURUSD").head(1).with_columns(pl.lit(None, pl.Float64).alias("close"))
        jpy = second.filter(pl.col("pair") == "USDJPY").head(1).with_columns((pl.col("low") * 0.5).alias("high"))
        _insert(pg, "livepoll", pl.concat([second, eur, jpy]))
        frame, bad = src.poll()
        assert [(r["pair"], r["rule"], r["column"]) for r in bad] == [("EURUSD", "bad-number", "close")]
        assert "livepoll.m1_eurusd?month=2024-07" in bad[0]["file"] and bad[0]["line"] >= 1
        out.append(live.update(frame))
        assert live.rejected["rule"].to_list() == ["high-below-low"] and live.rejected["pair"][0] == "USDJPY"
    finally:
        src.close()
    got = pl.concat(out)
    assert (got["live_status"] == "ok").all() and got.height == bars.height
    ref = bqx.load(live_store, start=START.isoformat()).collect()
    assert_agrees(got, ref, live.columns, kinds(live.columns))


def test_cli_polls_a_long_table(pg, pgpass, live_store, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(live_store, store)
    fresh = stored_bars(live_store, datetime(2024, 7, 31, 23, 57, tzinfo=timezone.utc)).with_columns(
        pl.col("ts") + pl.duration(minutes=10))
    fresh = pl.concat([fresh, fresh.head(1).with_columns(pl.lit("EURXXX").alias("pair"))])
    pg.execute('DROP SCHEMA IF EXISTS "livelong" CASCADE', f'CREATE SCHEMA "livelong" AUTHORIZATION {pg_server.USER}')
    pg_server.create_bar_table(pg, "livelong.bars", ["2024-07", "2024-08"], pair_column=True)
    pg_server.insert_bars(pg, "livelong.bars", fresh.cast(CAST))
    out, err = tmp_path / "out.jsonl", tmp_path / "err.txt"
    with open(out, "w") as fo, open(err, "w") as fe:
        proc = subprocess.Popen([sys.executable, "-m", "bqx", "live", "--source", pg.url(), "--table", "livelong.bars",
                                 "--pair-column", "pair", "--store", str(store)], stdout=fo, stderr=fe,
                                env={**os.environ, "PGPASSWORD": pgpass})
        want = fresh.filter(pl.col("pair") != "EURXXX")["ts"].n_unique() * len(PAIRS)
        deadline = time.time() + 240
        while time.time() < deadline and len(out.read_text().splitlines()) < want and proc.poll() is None:
            time.sleep(1)
        proc.terminate()
        proc.wait(timeout=60)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == want, err.read_text()[-2000:]
    assert {r["pair"] for r in rows} == set(PAIRS) and all(r["live_status"] == "ok" for r in rows)
    assert all(len(r) >= 612 for r in rows)
    rules = [json.loads(x)["rejected"]["rule"] for x in err.read_text().splitlines() if x.startswith("{")]
    assert rules == ["unknown-pair"]
