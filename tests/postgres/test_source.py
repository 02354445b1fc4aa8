"""PostgreSQL as a bar source, against a real server: layouts, partitions, incremental re-ingest, connections."""

from __future__ import annotations

import json
import threading
import time

import polars as pl
import pytest

import pg_server
from bqx.bars.ingest_postgres import STATE_FILE, ingest_postgres
from bqx.bars.readers.postgres import PgLayout, mask_url
from bqx.store.layout import bars_partitions, file_digest
from bqx.errors import InputError, UsageError

PAIRS = ["EURUSD", "USDJPY"]


def schema(pg, name: str) -> str:
    pg.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE', f'CREATE SCHEMA "{name}" AUTHORIZATION {pg_server.USER}')
    return name


def stored(store, pair: str, month: str) -> pl.DataFrame:
    return pl.read_parquet(store / "bars" / f"pair={pair}" / f"year_month={month}" / "data.parquet")


def expected(bars: pl.DataFrame, pair: str, month: str) -> pl.DataFrame:
    return bars.filter(pl.col("pair") == pair, pl.col("ts").dt.strftime("%Y-%m") == month).drop("pair")


def test_per_pair_partitioned_tables_read_exactly(pg, pgpass, sample, tmp_path):
    bars = sample(tuple(PAIRS), "2024-07", 2)
    s = schema(pg, "perpair")
    pg_server.load_market(pg, bars, pattern=s + ".m1_{pair}")
    seen = []
    report = ingest_postgres(pg.url(), tmp_path, PgLayout(table=s + ".m1_{pair}"), pairs=PAIRS,
                             on_month=lambda *a: seen.append(a))
    assert report.rows_out == bars.height and report.rows_quarantined == 0
    assert [(p, m, st) for p, m, st, _ in seen] == [(p, m, "read") for p in PAIRS for m in ("2024-07", "2024-08")]
    for p in PAIRS:
        for m in ("2024-07", "2024-08"):
            assert stored(tmp_path, p, m).equals(expected(bars, p, m))
    info = json.loads((tmp_path / "pairs.json").read_text())
    assert info["EURUSD"]["source"] == f"{pg.url()}/perpair.m1_eurusd" and info["EURUSD"]["has_bidask"]
    assert pgpass not in (tmp_path / "pairs.json").read_text() + (tmp_path / STATE_FILE).read_text()


def test_month_queries_prune_partitions(pg, pgpass, sample):
    from bqx.bars.readers.postgres import Reader

    bars = sample(("EURUSD",), "2024-07", 2)
    s = schema(pg, "prune")
    pg_server.load_market(pg, bars, pattern=s + ".m1_{pair}")
    with Reader(pg.url(), PgLayout(table=s + ".m1_{pair}")) as reader:
        (table,) = reader.resolve(["EURUSD"])
        lo, hi = reader._bounds(table, "2024-08")
    text = pg.psql(f"EXPLAIN SELECT * FROM {table.qualified} WHERE ts >= {lo} AND ts < {hi}")
    assert "m1_eurusd_2024_08" in text and "m1_eurusd_2024_07" not in text


def test_case_insensitive_names_and_long_table(pg, pgpass, sample, tmp_path):
    bars = sample(tuple(PAIRS), "2024-07", 1)
    s = schema(pg, "Mixed")
    pg.execute(f'CREATE TABLE "Mixed"."M1_EURUSD" (time timestamptz, "Open" float8, "High" float8, "Low" float8, '
               f'"Close" float8)', f'ALTER TABLE "Mixed"."M1_EURUSD" OWNER TO {pg_server.USER}')
    one = expected(bars, "EURUSD", "2024-07").select("ts", "open", "high", "low", "close")
    with pg.connect() as conn, conn.cursor() as cur:
        cur.adbc_ingest("eur_stage", one.to_arrow(), mode="replace")
        cur.execute('INSERT INTO "Mixed"."M1_EURUSD" SELECT * FROM eur_stage')
    r = ingest_postgres(pg.url(), tmp_path / "a", PgLayout(table="mixed.m1_{pair}"), pairs=["EURUSD"])
    got = stored(tmp_path / "a", "EURUSD", "2024-07")
    assert r.pairs["EURUSD"]["has_volume"] is False and not r.pairs["EURUSD"]["has_bidask"]
    assert got.select("ts", "open", "high", "low", "close").equals(one) and (got["volume"] == 0.0).all()
    # one long table, pair written as EUR/USD, month-partitioned
    long = bars.with_columns(pl.col("pair").str.slice(0, 3) + "/" + pl.col("pair").str.slice(3))
    schema(pg, "longs")
    pg_server.load_market(pg, long, long_table="longs.bars_long")
    r = ingest_postgres(pg.url(), tmp_path / "b", PgLayout(table="LONGS.Bars_Long", pair_column="pair"))
    assert sorted(r.pairs) == PAIRS
    for p in PAIRS:
        assert stored(tmp_path / "b", p, "2024-07").equals(expected(bars, p, "2024-07"))


def test_incremental_reingest_fetches_only_changed_months(pg, pgpass, sample, tmp_path):
    bars = sample(tuple(PAIRS), "2024-07", 2)
    s = schema(pg, "incr")
    pg_server.load_market(pg, bars, pattern=s + ".m1_{pair}")
    layout = PgLayout(table=s + ".m1_{pair}")
    ingest_postgres(pg.url(), tmp_path, layout)
    before = {k: file_digest(v) for k, v in bars_partitions(tmp_path).items()}
    seen = []
    ingest_postgres(pg.url(), tmp_path, layout, on_month=lambda *a: seen.append(a[:3]))
    assert {st for *_, st in seen} == {"unchanged"}
    # one row changed (same row count): only that month is fetched again
    first = expected(bars, "USDJPY", "2024-08")["ts"][10]
    pg.execute(f"UPDATE {s}.m1_usdjpy SET volume = volume + 1 WHERE ts = '{first.isoformat()}'")
    seen.clear()
    ingest_postgres(pg.url(), tmp_path, layout, on_month=lambda *a: seen.append(a[:3]))
    assert [x for x in seen if x[2] != "unchanged"] == [("USDJPY", "2024-08", "read")]
    after = {k: file_digest(v) for k, v in bars_partitions(tmp_path).items()}
    assert [k for k in before if before[k] != after[k]] == [("USDJPY", "2024-08")]
    assert stored(tmp_path, "USDJPY", "2024-08").filter(pl.col("ts") == first)["volume"].item() == \
        expected(bars, "USDJPY", "2024-08").filter(pl.col("ts") == first)["volume"].item() + 1
    # a month gone from the database leaves the store too
    pg.execute(f"DELETE FROM {s}.m1_eurusd WHERE ts >= '2024-08-01 00:00+00'")
    seen.clear()
    ingest_postgres(pg.url(), tmp_path, layout, on_month=lambda *a: seen.append(a[:3]))
    assert [x for x in seen if x[2] != "unchanged"] == [("EURUSD", "2024-08", "removed")]
    assert ("EURUSD", "2024-08") not in bars_partitions(tmp_path)


def test_dropped_connection_mid_read_writes_nothing_for_the_month_and_resumes(pg, pgpass, sample, tmp_path):
    bars = sample(("EURUSD",), "2024-07", 2)
    s = schema(pg, "drop")
    pg_server.load_market(pg, bars, pattern=s + ".m1_{pair}")
    layout = PgLayout(table=s + ".m1_{pair}")
    locker = pg.connect()
    hold = locker.cursor()
    killed = []

    def terminate_when_waiting() -> None:
        with pg.connect() as admin, admin.cursor() as cur:
            for _ in range(200):
                cur.execute(f"SELECT pid FROM pg_stat_activity WHERE usename = '{pg_server.USER}' "
                            "AND wait_event_type = 'Lock'")
                pids = [r[0] for r in cur.fetchall()]
                if pids:
                    cur.execute(f"SELECT pg_terminate_backend({pids[0]})")
                    killed.append(pids[0])
                    break
                time.sleep(0.05)
        hold.execute("ROLLBACK")

    def on_month(pair, month, status, rows):
        if month == "2024-07":  # the August query will wait on this lock, mid-read, and be terminated
            hold.execute("BEGIN")
            hold.execute(f"LOCK TABLE {s}.m1_eurusd_2024_08 IN ACCESS EXCLUSIVE MODE")
            threading.Thread(target=terminate_when_waiting, daemon=True).start()

    with pytest.raises(InputError, match="terminat") as err:
        ingest_postgres(pg.url(), tmp_path, layout, on_month=on_month)
    hold.close()
    locker.close()
    assert killed and "rerun the same command to resume" in str(err.value)
    assert list(bars_partitions(tmp_path)) == [("EURUSD", "2024-07")]
    assert list(json.loads((tmp_path / STATE_FILE).read_text())["EURUSD"]["months"]) == ["2024-07"]
    seen = []
    ingest_postgres(pg.url(), tmp_path, layout, on_month=lambda *a: seen.append(a[:3]))
    assert seen == [("EURUSD", "2024-07", "unchanged"), ("EURUSD", "2024-08", "read")]
    assert stored(tmp_path, "EURUSD", "2024-08").equals(expected(bars, "EURUSD", "2024-08"))


def test_wrong_password_is_clear_and_never_shown(pg, monkeypatch, tmp_path):
    monkeypatch.setenv("PGPASSWORD", "not-the-password")
    with pytest.raises(InputError, match="password") as err:
        ingest_postgres(pg.url(), tmp_path)
    assert "not-the-password" not in str(err.value) and pg.url() in str(err.value)
    with pytest.raises(UsageError, match="PGPASSWORD") as err:
        ingest_postgres(pg.url().replace("bqx@", "bqx:hunter2@"), tmp_path)
    assert "hunter2" not in str(err.value)
    assert mask_url("postgresql://u:hunter2@h:5/db") == "postgresql://u:***@h:5/db"


def test_missing_table(pg, pgpass, tmp_path):
    schema(pg, "empty")
    with pytest.raises(InputError, match=r"table empty\.m1_eurusd not found in schema empty"):
        ingest_postgres(pg.url(), tmp_path, PgLayout(table="empty.m1_{pair}"), pairs=["EURUSD"])
    with pytest.raises(InputError, match="not found"):
        ingest_postgres(pg.url(), tmp_path, PgLayout(table="empty.nothing", pair_column="pair"))


def test_injected_table_name_is_refused(pg, pgpass, tmp_path):
    pg.execute("DROP TABLE IF EXISTS x", "CREATE TABLE x (i int)", f"ALTER TABLE x OWNER TO {pg_server.USER}")
    for bad in ("m1_eurusd; drop table x", 'm1_{pair}"; drop table x; --', "a.b.m1_{pair}", "m1_{pair} x"):
        with pytest.raises(UsageError, match="not a plain"):
            ingest_postgres(pg.url(), tmp_path, PgLayout(table=bad, pair_column="pair" if "{pair}" not in bad else None))
    with pytest.raises(UsageError, match="not a plain column"):
        ingest_postgres(pg.url(), tmp_path, PgLayout(column_map={"close": "close; drop table x"}))
    with pg.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM x")
        assert cur.fetchone()[0] == 0
