"""Bars per second from PostgreSQL into the store: 28 pairs x 1 month of the sample market, per-pair partitioned tables.

Starts a throwaway server (tests/postgres/pg_server.py: Debian's binaries, run as `postgres`), loads the
market, then times `ingest_postgres` (list months with count + checksum, read, validate, write Parquet)
and a second, incremental ingest (nothing changed: only the SQL checksums).
Usage: .venv/bin/python bench/postgres_read.py [--months 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "postgres"))

import pg_server  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--months", type=int, default=1)
    args = ap.parse_args()
    from bqx.bars.ingest_postgres import ingest_postgres
    from bqx.bars.sample import sample_market

    srv = pg_server.start()
    try:
        bars = sample_market(start="2024-07", months=args.months, seed=0)
        t0 = time.perf_counter()
        pg_server.load_market(srv, bars)
        print(f"loaded {bars.height:,} bars into 28 partitioned tables in {time.perf_counter() - t0:.1f} s")
        os.environ["PGPASSWORD"] = pg_server.PASSWORD
        with tempfile.TemporaryDirectory() as store:
            t0 = time.perf_counter()
            report = ingest_postgres(srv.url(), store)
            dt = time.perf_counter() - t0
            print(f"ingest: {report.rows_out:,} bars, {report.partitions} pair-months in {dt:.2f} s: "
                  f"{report.rows_out / dt:,.0f} bars/s")
            t0 = time.perf_counter()
            ingest_postgres(srv.url(), store)
            print(f"incremental re-ingest, nothing changed: {time.perf_counter() - t0:.2f} s")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
