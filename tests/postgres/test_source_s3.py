"""PostgreSQL bars into a store on object storage (a loopback S3 server): the same bars, the same incremental
re-ingest, and neither the database password nor the S3 keys in any object."""

from __future__ import annotations

import json

import polars as pl

import pg_server
from bqx.bars.ingest_postgres import STATE_FILE, ingest_postgres
from bqx.bars.readers.postgres import PgLayout
from bqx.store.backend import backend_for
from bqx.store.layout import bars_stats, partition_rel, read_partition

PAIRS = ["EURUSD", "USDJPY"]


def test_postgres_into_s3_store_incrementally(pg, pgpass, sample, s3_store, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "bqx-pg-secret-Hq2vXw9")  # moto takes any keys
    bars = sample(tuple(PAIRS), "2024-07", 2)
    s = "s3src"
    pg.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE', f'CREATE SCHEMA "{s}" AUTHORIZATION {pg_server.USER}')
    pg_server.load_market(pg, bars, pattern=s + ".m1_{pair}")
    layout = PgLayout(table=s + ".m1_{pair}")
    report = ingest_postgres(pg.url(), s3_store, layout)
    assert report.rows_out == bars.height
    for p in PAIRS:
        for m in ("2024-07", "2024-08"):
            want = bars.filter(pl.col("pair") == p, pl.col("ts").dt.strftime("%Y-%m") == m).drop("pair")
            assert read_partition(s3_store, partition_rel("bars", p, m)).equals(want)
    seen = []
    ingest_postgres(pg.url(), s3_store, layout, on_month=lambda *a: seen.append(a[:3]))
    assert {st for *_, st in seen} == {"unchanged"}  # the state object says what is there
    pg.execute(f"DELETE FROM {s}.m1_eurusd WHERE ts >= '2024-08-01 00:00+00'")
    seen.clear()
    ingest_postgres(pg.url(), s3_store, layout, on_month=lambda *a: seen.append(a[:3]))
    assert [x for x in seen if x[2] != "unchanged"] == [("EURUSD", "2024-08", "removed")]
    assert ("EURUSD", "2024-08") not in bars_stats(s3_store)
    backend = backend_for(s3_store)
    assert json.loads(backend.read_text(STATE_FILE))["EURUSD"]["months"].keys() == {"2024-07"}
    for rel in backend.list_files():
        data = backend.read_bytes(rel)
        assert pgpass.encode() not in data and b"bqx-pg-secret-Hq2vXw9" not in data, rel
