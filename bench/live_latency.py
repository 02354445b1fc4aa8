"""Latency of bqx.Live.update for one minute's bars of every pair, memory held, time per family.

Usage: python bench/live_latency.py STORE [MINUTES]
STORE: a store computed by `bqx run` (e.g. `bqx run --store S --start 2024-07 --end 2024-07`, 28 pairs);
the bench starts live MINUTES (default 30) before the store's last bar and replays them.
"""

from __future__ import annotations

import resource
import sys
import time

import polars as pl

import bqx


def main(store: str, n: int = 30) -> None:
    bars = pl.concat([pl.read_parquet(f).select(pl.lit(f.split("pair=")[1].split("/")[0]).alias("pair"), pl.all())
                      for f in sorted(__import__("glob").glob(f"{store}/bars/pair=*/year_month=*/data.parquet"))])
    last = bars["ts"].max()
    times = bars.filter(pl.col("ts") <= last)["ts"].unique().sort()
    start = times[-n]
    t0 = time.perf_counter()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    live = bqx.Live(store, until=start)
    print(f"start: {time.perf_counter() - t0:.1f} s, {len(live.pairs)} pairs, {len(live.columns)} features, "
          f"cache {live.nbytes / 1e6:.0f} MB")
    replay = bars.filter(pl.col("ts") >= start).sort("ts", "pair")
    lat = []
    for _, minute in replay.partition_by("ts", as_dict=True, maintain_order=True).items():
        t = time.perf_counter()
        live.update(minute)
        lat.append(time.perf_counter() - t)
    lat.sort()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    print(f"update of one minute ({len(live.pairs)} pairs), {len(lat)} minutes: median {lat[len(lat) // 2]:.3f} s, "
          f"p90 {lat[int(len(lat) * 0.9)]:.3f} s, max {lat[-1]:.3f} s; peak RSS {rss:.0f} MB (before start {rss0 / 1e3:.0f} MB)")
    total = sum(live.timings.values())
    for name, s in sorted(live.timings.items(), key=lambda kv: -kv[1]):
        print(f"  {name:18s} {s / len(lat) * 1e3:8.1f} ms/minute  {100 * s / total:5.1f} %")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30)
