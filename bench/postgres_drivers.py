"""ADBC (adbc-driver-postgresql) against ConnectorX on the same tables: 28 pairs x 1 month, one query per pair-month.

ConnectorX is not a bqx dependency: install it ad hoc (`.venv/bin/pip install connectorx==0.4.6`) to run this.
Usage: .venv/bin/python bench/postgres_drivers.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "postgres"))

import pg_server as pgserver  # noqa: E402

QUERY = ("SELECT ts, open::float8, high::float8, low::float8, close::float8, volume::float8, bid_open::float8, "
         "bid_high::float8, bid_low::float8, bid_close::float8, ask_open::float8, ask_high::float8, ask_low::float8, "
         "ask_close::float8 FROM {table} WHERE ts >= '2024-07-01 00:00+00' AND ts < '2024-08-01 00:00+00' ORDER BY ts")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    import connectorx as cx
    import adbc_driver_postgresql.dbapi as adbc
    from bqx.bars.sample import sample_market
    from bqx.universe import PAIR_NAMES

    srv = pgserver.start()
    try:
        bars = sample_market(start="2024-07", months=1, seed=0)
        pgserver.load_market(srv, bars)
        uri = f"postgresql://{pgserver.USER}:{pgserver.PASSWORD}@127.0.0.1:{srv.port}/{pgserver.DB}"
        tables = [f"m1_{p.lower()}" for p in PAIR_NAMES]

        def run_adbc() -> int:
            n = 0
            with adbc.connect(uri) as conn, conn.cursor() as cur:
                for t in tables:
                    cur.execute(QUERY.format(table=t))
                    n += cur.fetch_arrow_table().num_rows
            return n

        def run_cx() -> int:
            return sum(cx.read_sql(uri, QUERY.format(table=t), return_type="arrow").num_rows for t in tables)

        for name, fn in (("adbc", run_adbc), ("connectorx", run_cx)):
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                n = fn()
                best = min(best, time.perf_counter() - t0)
            print(f"{name:11s} {n} bars in {best:.3f} s (best of {args.repeat}): {n / best:,.0f} bars/s")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
