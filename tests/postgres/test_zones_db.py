"""Per-pair zones of `timestamp without time zone` tables: ny-close and est-fixed computed in SQL and in Python."""

from __future__ import annotations

import polars as pl
import pytest

import pg_server
from bqx.bars.ingest_postgres import ingest_postgres
from bqx.bars.readers.postgres import PgLayout
from bqx.errors import UsageError

ROWS = {  # broker (ny-close) or est-fixed local time -> the UTC time it means
    "eurusd": [("2024-03-08 23:59", "2024-03-08T21:59:00+00:00"),  # Friday 16:59 New York (EST)
               ("2024-03-11 00:00", "2024-03-10T21:00:00+00:00"),  # Sunday 17:00 New York (EDT)
               ("2024-04-01 02:30", "2024-03-31T23:30:00+00:00")],  # still March in UTC
    "gbpusd": [("2024-03-08 16:59", "2024-03-08T21:59:00+00:00"),
               ("2024-03-10 16:00", "2024-03-10T21:00:00+00:00"),
               ("2024-03-31 20:00", "2024-04-01T01:00:00+00:00")],  # April in UTC
}


def test_per_pair_zones_of_naive_tables(pg, pgpass, tmp_path):
    stmts = ["DROP SCHEMA IF EXISTS zones CASCADE", f"CREATE SCHEMA zones AUTHORIZATION {pg_server.USER}"]
    for p, rows in ROWS.items():
        values = ", ".join(f"('{local}', 1.2, 1.3, 1.1, 1.25)" for local, _ in rows)
        stmts += [f"CREATE TABLE zones.m1_{p} (ts timestamp, open float8, high float8, low float8, close float8)",
                  f"ALTER TABLE zones.m1_{p} OWNER TO {pg_server.USER}", f"INSERT INTO zones.m1_{p} VALUES {values}"]
    stmts += ["CREATE TABLE zones.bars (pair text, ts timestamp, open float8, high float8, low float8, close float8)",
              f"ALTER TABLE zones.bars OWNER TO {pg_server.USER}",
              "INSERT INTO zones.bars VALUES ('EURUSD', '2024-03-08 23:59', 1.2, 1.3, 1.1, 1.25)"]
    pg.execute(*stmts)
    layout = PgLayout(table="zones.m1_{pair}", zones={"EURUSD": "ny-close", "GBPUSD": "est-fixed"})
    rep = ingest_postgres(pg.url(), tmp_path / "s", layout, pairs=["EURUSD", "GBPUSD"])
    assert rep.rows_out == 6
    for p, rows in ROWS.items():
        got = pl.read_parquet(tmp_path / f"s/bars/pair={p.upper()}/*/data.parquet").sort("ts")
        assert [t.isoformat() for t in got["ts"]] == [utc for _, utc in rows]
    assert sorted(rep.pairs["GBPUSD"]["months"]) == ["2024-03", "2024-04"] and rep.pairs["EURUSD"]["months"] == ["2024-03"]
    long = PgLayout(table="zones.bars", pair_column="pair", zones={"EURUSD": "ny-close"})
    with pytest.raises(UsageError, match="per-pair time zones"):
        ingest_postgres(pg.url(), tmp_path / "t", long)


def test_a_broker_time_table_read_as_utc_is_warned_and_a_new_zone_refetches(pg, pgpass, sample, tmp_path):
    bars = sample(("EURUSD",), "2024-07", 1).drop("pair")
    local = bars.with_columns((pl.col("ts").dt.convert_time_zone("America/New_York").dt.replace_time_zone(None)
                               + pl.duration(hours=7)).alias("ts"))  # a MetaTrader broker's clock (ny-close)
    cols = ", ".join(f"{c} float8" for c in bars.columns if c != "ts")
    pg.execute("DROP SCHEMA IF EXISTS broker CASCADE", f"CREATE SCHEMA broker AUTHORIZATION {pg_server.USER}",
               f"CREATE TABLE broker.m1_eurusd (ts timestamp, {cols})", f"ALTER TABLE broker.m1_eurusd OWNER TO {pg_server.USER}")
    pg_server.insert_bars(pg, "broker.m1_eurusd", local.with_columns(pl.exclude("ts").cast(pl.Float64)))
    rep = ingest_postgres(pg.url(), tmp_path / "s", PgLayout(table="broker.m1_{pair}", tz="UTC"), pairs=["EURUSD"])
    warning = next(n for n in rep.notes if n.startswith("warning:"))  # months are written as read: a warning, not a refusal
    assert "EURUSD looks 3 h ahead of UTC" in warning and "Re-ingest it with --tz EURUSD=ny-close" in warning
    seen = []
    rep = ingest_postgres(pg.url(), tmp_path / "s", PgLayout(table="broker.m1_{pair}", tz="UTC", zones={"EURUSD": "ny-close"}),
                          pairs=["EURUSD"], on_month=lambda *a: seen.append(a[2]))
    assert "unchanged" not in seen and "read" in seen  # same rows, another zone: fetched again
    assert not [n for n in rep.notes if n.startswith("warning:")] and rep.alignment["findings"] == []
    got = pl.read_parquet(tmp_path / "s/bars/pair=EURUSD/*/data.parquet").sort("ts")
    assert got["ts"].to_list() == bars["ts"].to_list()
