"""The cost of ingest, run and validate on the ragged sample market against the tidy one (docs/VALIDATION.md).

    python bench/ragged_cost.py DIR [tidy] [ragged]

The 28 pairs over 2024-02-27 .. 2024-03-11, written as Parquet files (DIR/<mode>/files), ingested into
DIR/<mode>/store, run and validated at the defaults; prints wall and CPU seconds per step and the verdicts.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone

import polars as pl

from bqx.bars.sample import make_ragged, sample_market, write_market

FIRST = datetime(2024, 2, 27, tzinfo=timezone.utc)
LAST = datetime(2024, 3, 12, tzinfo=timezone.utc)


def main(base: str, modes: list[str]) -> None:
    tidy = sample_market(None, "2024-02", 2).filter((pl.col("ts") >= FIRST) & (pl.col("ts") < LAST))
    for mode in modes:
        market = make_ragged(tidy, 0) if mode == "ragged" else tidy
        d = f"{base}/{mode}"
        write_market(market, d + "/files", "parquet", ragged=mode == "ragged")
        print(mode, "bars", market.height, flush=True)
        for step in (["ingest", d + "/files", "--store", d + "/store"], ["run", "--store", d + "/store"],
                     ["validate", "--store", d + "/store", "--json", "--report", d + "/report.json"]):
            r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
            res = subprocess.run([sys.executable, "-m", "bqx", *step], capture_output=True, text=True)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
            print(f"{mode} {step[0]}: exit {res.returncode}, {time.perf_counter() - t0:.1f} s wall, {cpu:.1f} CPU-s, "
                  f"largest process {r1.ru_maxrss / 1e6:.2f} GB so far", flush=True)
            if res.returncode and step[0] != "validate":
                sys.exit(res.stderr[-2000:])
        report = json.loads(open(d + "/report.json").read())
        print(mode, {f["family"]: f["verdict"] for f in report["families"]}, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:] or ["tidy", "ragged"])
