"""Every bar rule through the database path, and exact float64 conversion of numeric and real columns."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import pg_server
from bqx.bars.ingest_postgres import ingest_postgres
from bqx.bars.readers.postgres import PgLayout
from bqx.errors import InputError

COLS = "ts, open, high, low, close, volume, bid_open, bid_high, bid_low, bid_close, ask_open, ask_high, ask_low, ask_close"
GOOD = dict(open=1.1, high=1.2, low=1.0, close=1.15, volume=10.0)


def _row(minute: int, **over) -> str:
    v = {**GOOD, **over}
    bid = {f"bid_{k}": v[k] for k in ("open", "high", "low", "close")}
    ask = {f"ask_{k}": (v[k] + 0.001 if isinstance(v[k], float) else v[k]) for k in ("open", "high", "low", "close")}
    v = {**bid, **ask, **v, **over}
    vals = [f"'2024-07-01 00:{minute:02d}+00'"]
    for c in COLS.split(", ")[1:]:
        x = v[c]
        vals.append("NULL" if x is None else f"'{x}'::float8" if isinstance(x, str) else repr(x))
    return "(" + ", ".join(vals) + ")"


BAD = [  # (rule, overrides); minute = position
    ("bad-number", dict(close=None)),
    ("non-finite-price", dict(open="NaN")),
    ("non-finite-price", dict(high="Infinity")),
    ("non-positive-price", dict(low=0.0, bid_low=0.5)),
    ("high-below-low", dict(high=0.9, bid_high=1.3)),
    ("open-outside-range", dict(open=1.3, bid_open=1.1, ask_open=1.11)),
    ("close-outside-range", dict(close=0.95, bid_close=1.1, ask_close=1.11)),
    ("bid-above-ask", dict(bid_open=1.15, ask_open=1.12)),
    ("non-finite-volume", dict(volume="NaN")),
    ("negative-volume", dict(volume=-1.0)),
]


@pytest.fixture
def rules_table(pg):
    pg.execute('DROP SCHEMA IF EXISTS rules CASCADE', f"CREATE SCHEMA rules AUTHORIZATION {pg_server.USER}")
    pg_server.create_bar_table(pg, "rules.m1_eurusd", ["2024-07"])
    rows = [_row(i, **o) for i, (_, o) in enumerate(BAD)]
    n = len(BAD)
    rows += [_row(n), _row(n)]  # duplicate-identical: one kept
    rows += [_row(n + 1), _row(n + 1, close=1.16)]  # duplicate-conflict: both rejected
    rows += [_row(n + 2 + i) for i in range(5)]  # good rows
    pg.execute(f"INSERT INTO rules.m1_eurusd ({COLS}) VALUES " + ", ".join(rows))
    return "rules.m1_{pair}"


def test_every_row_rule_quarantined_under_repair(pg, pgpass, rules_table, tmp_path):
    r = ingest_postgres(pg.url(), tmp_path, PgLayout(table=rules_table), policy="repair", pairs=["EURUSD"])
    want = {}
    for rule, _ in BAD:
        want[rule] = want.get(rule, 0) + 1
    want |= {"duplicate-identical": 1, "duplicate-conflict": 2}
    assert r.quarantined_by_rule == want
    assert r.rows_in == r.rows_out + r.rows_quarantined and r.rows_out == 6
    q = pl.read_parquet(r.quarantine_path)
    assert set(q["file"]) == {f"{pg.url()}/rules.m1_eurusd?month=2024-07"}
    assert q.filter(pl.col("rule") == "bad-number").select("column", "value", "line").row(0) == ("close", "NULL", 1)
    assert q.filter(pl.col("rule") == "bid-above-ask")["column"].to_list() == ["bid_open"]
    assert q["raw"].null_count() == 0 and q.filter(pl.col("line") == 1)["raw"].item().startswith("2024-07-01 00:00:00")


def test_strict_stops_at_the_first_row_naming_table_month_and_value(pg, pgpass, rules_table, tmp_path):
    with pytest.raises(InputError) as err:
        ingest_postgres(pg.url(), tmp_path, PgLayout(table=rules_table), pairs=["EURUSD"])
    e = str(err.value)
    assert "rules.m1_eurusd?month=2024-07" in e and "line 1" in e and "close" in e and "bad-number" in e
    assert not (tmp_path / "bars").exists()


def test_unknown_pair_in_a_long_table(pg, pgpass, sample, tmp_path):
    pg.execute('DROP SCHEMA IF EXISTS lp CASCADE', f"CREATE SCHEMA lp AUTHORIZATION {pg_server.USER}")
    bars = sample(("EURUSD",), "2024-07", 1).head(50)
    odd = bars.head(3).with_columns(pl.lit("EURXYZ").alias("pair"))
    pg_server.load_market(pg, pl.concat([bars, odd]), long_table="lp.bars")
    with pytest.raises(InputError, match="unknown-pair|not one of the 28"):
        ingest_postgres(pg.url(), tmp_path / "s", PgLayout(table="lp.bars", pair_column="pair"))
    r = ingest_postgres(pg.url(), tmp_path / "r", PgLayout(table="lp.bars", pair_column="pair"), policy="repair")
    assert r.quarantined_by_rule == {"unknown-pair": 3} and r.rows_out == 50 and list(r.pairs) == ["EURUSD"]


def test_naive_timestamps_need_a_zone_and_local_times_are_checked(pg, pgpass, tmp_path):
    pg.execute('DROP SCHEMA IF EXISTS naive CASCADE', f"CREATE SCHEMA naive AUTHORIZATION {pg_server.USER}",
               "CREATE TABLE naive.m1_gbpusd (ts timestamp, open float8, high float8, low float8, close float8)",
               f"ALTER TABLE naive.m1_gbpusd OWNER TO {pg_server.USER}",
               "INSERT INTO naive.m1_gbpusd VALUES ('2024-03-31 00:59', 1.2, 1.3, 1.1, 1.25), "
               "('2024-03-31 01:30', 1.2, 1.3, 1.1, 1.25), ('2024-03-31 02:00', 1.2, 1.3, 1.1, 1.25), "
               "('2024-10-27 01:30', 1.2, 1.3, 1.1, 1.25), ('2024-10-27 02:30', 1.2, 1.3, 1.1, 1.25)")
    layout = PgLayout(table="naive.m1_{pair}")
    with pytest.raises(InputError, match="timestamp without time zone and no zone was declared"):
        ingest_postgres(pg.url(), tmp_path / "a", layout, pairs=["GBPUSD"])
    r = ingest_postgres(pg.url(), tmp_path / "b", PgLayout(table="naive.m1_{pair}", tz="Europe/London"),
                        policy="repair", pairs=["GBPUSD"])
    assert r.quarantined_by_rule == {"nonexistent-local-time": 1, "ambiguous-local-time": 1}
    got = pl.concat([pl.read_parquet(p) for p in sorted((tmp_path / "b" / "bars").rglob("*.parquet"))])
    assert [t.isoformat() for t in got["ts"]] == ["2024-03-31T00:59:00+00:00", "2024-03-31T01:00:00+00:00",
                                                  "2024-10-27T02:30:00+00:00"]
    r = ingest_postgres(pg.url(), tmp_path / "c", PgLayout(table="naive.m1_{pair}", tz="+02:00"), pairs=["GBPUSD"])
    got = pl.read_parquet(tmp_path / "c" / "bars" / "pair=GBPUSD" / "year_month=2024-03" / "data.parquet")
    assert got["ts"][0].isoformat() == "2024-03-30T22:59:00+00:00" and r.rows_out == 5


def test_text_price_column_bad_number(pg, pgpass, tmp_path):
    pg.execute('DROP SCHEMA IF EXISTS txt CASCADE', f"CREATE SCHEMA txt AUTHORIZATION {pg_server.USER}",
               "CREATE TABLE txt.m1_audusd (ts timestamptz, open text, high text, low text, close text)",
               f"ALTER TABLE txt.m1_audusd OWNER TO {pg_server.USER}",
               "INSERT INTO txt.m1_audusd VALUES ('2024-07-01 00:00+00', '0.6', '0.7', '0.5', '0.65'), "
               "('2024-07-01 00:01+00', '0.6', '0.7', '0.5', 'abc')")
    r = ingest_postgres(pg.url(), tmp_path, PgLayout(table="txt.m1_{pair}"), policy="repair", pairs=["AUDUSD"])
    q = pl.read_parquet(r.quarantine_path)
    assert q.select("rule", "column", "value", "line").row(0) == ("bad-number", "close", "abc", 2) and r.rows_out == 1


TRICKY = [
    "1.1", "0.1000000000000000055511151231257827", "1.00000000000000011102230246251565404236316680908203125",
    "1.000000000000000111022302462515654042363166809082031250001",
    "512.00000000000005684341886080801486968994140625",  # 512 + 2**-44: halfway, ties to even (prices stay <= 1e6)
    "123.456789012345678901234567",
    "0.000012345678901234567890123", "1.2345678901234567e-5",
]


def test_numeric_and_real_columns_convert_to_float64_exactly(pg, pgpass, tmp_path):
    pg.execute('DROP SCHEMA IF EXISTS num CASCADE', f"CREATE SCHEMA num AUTHORIZATION {pg_server.USER}",
               "CREATE TABLE num.m1_usdcad (ts timestamptz, open numeric, high numeric, low numeric, close numeric, "
               "volume real)", f"ALTER TABLE num.m1_usdcad OWNER TO {pg_server.USER}",
               "INSERT INTO num.m1_usdcad VALUES " + ", ".join(
                   f"('2024-07-01 00:{i:02d}+00', {v}, {v}, {v}, {v}, {v})" for i, v in enumerate(TRICKY)))
    ingest_postgres(pg.url(), tmp_path, PgLayout(table="num.m1_{pair}"), pairs=["USDCAD"])
    got = pl.read_parquet(tmp_path / "bars" / "pair=USDCAD" / "year_month=2024-07" / "data.parquet")
    want = [float(v) for v in TRICKY]  # Python's float() is correctly rounded
    assert got["close"].to_list() == want and got["open"].to_list() == want
    assert want[2] == 1.0 and want[3] == np.nextafter(1.0, 2.0) and want[4] == 512.0  # ties to even, and just above
    assert got["volume"].to_list() == [float(np.float32(v)) for v in want]  # real widened exactly
