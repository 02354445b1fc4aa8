"""`bqx run` from a PostgreSQL source equals the run from the same bars in Parquet; a changed month recomputes only itself."""

from __future__ import annotations

import polars as pl

import pg_server
from bqx.engine import run

PAIRS = ("EURUSD", "USDJPY", "EURJPY")


def _features(root) -> dict[str, pl.DataFrame]:
    out = {}
    for f in sorted(root.rglob("data.parquet")):
        rel = str(f.relative_to(root))
        if not rel.startswith("bars/"):
            out[rel] = pl.read_parquet(f)
    return out


def test_run_from_postgres_equals_run_from_parquet_and_recomputes_only_changed_months(pg, pgpass, sample, tmp_path):
    bars = sample(PAIRS, "2024-07", 2).filter(pl.col("ts").dt.day() <= 4)  # small months: the run stays short
    pg.execute("DROP TABLE IF EXISTS m1_eurusd, m1_usdjpy, m1_eurjpy CASCADE")
    pg_server.load_market(pg, bars)
    src = tmp_path / "bars.parquet"
    bars.write_parquet(src)
    a = run(tmp_path / "db", source=pg.url(), executor="serial")
    b = run(tmp_path / "pq", source=str(src), executor="serial")
    assert a.ok and b.ok and len(a.done) == len(b.done) > 0
    fa, fb = _features(tmp_path / "db"), _features(tmp_path / "pq")
    assert fa.keys() == fb.keys() and len(fa) > 20
    for k in fa:
        assert fa[k].equals(fb[k]), k
    assert run(tmp_path / "db", source=pg.url(), executor="serial").to_run == 0
    t = bars.filter(pl.col("pair") == "USDJPY", pl.col("ts").dt.month() == 8)["ts"][100]
    pg.execute(f"UPDATE m1_usdjpy SET close = close * 1.00001, high = high * 1.00001 WHERE ts = '{t.isoformat()}'")
    again = run(tmp_path / "db", source=pg.url(), executor="serial")
    done = {(d["stage"], d["pair"], d["month"]) for d in again.done}
    # only USDJPY's August and the cross-pair August tasks, plus July's targets (they look ahead into August)
    assert again.ok and {d for d in done if d[2] == "2024-07"} == {("targets", "USDJPY", "2024-07")}
    assert {p for _, p, m in done if m == "2024-08"} == {"USDJPY", None}
    assert ("rate_index", "USDJPY", "2024-08") in done and ("currency_indices", None, "2024-08") in done
