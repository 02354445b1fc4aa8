"""Latency of bqx.Live.update for one minute's bars of every pair, memory held, time per family.

Usage: python bench/live_latency.py STORE [MINUTES]
STORE: a store computed by `bqx run` (e.g. `bqx run --store S --start 2024-07 --end 2024-07`, 28 pairs);
the bench starts live MINUTES (default 30) before the store's last bar and replays them.
Prints the load average (the machine may be shared), the time and CPU per minute, and where it goes:
per family (how it runs: cross-pair, batched over all pairs, or one call per pair; its rows per call).
"""

from __future__ import annotations

import glob
import os
import resource
import sys
import time

import polars as pl

import bqx


def main(store: str, n: int = 30) -> None:
    bars = pl.concat([pl.read_parquet(f).select(pl.lit(f.split("pair=")[1].split("/")[0]).alias("pair"), pl.all())
                      for f in sorted(glob.glob(f"{store}/bars/pair=*/year_month=*/data.parquet"))])
    times = bars["ts"].unique().sort()
    start = times[-n]
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; polars threads {pl.thread_pool_size()}")
    t0 = time.perf_counter()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    live = bqx.Live(store, until=start)
    print(f"start: {time.perf_counter() - t0:.1f} s, {len(live.pairs)} pairs, {len(live.columns)} features, "
          f"cache {live.nbytes / 1e6:.0f} MB; batched (one call for all pairs): {', '.join(sorted(live.batched.families))}")
    replay = bars.filter(pl.col("ts") >= start).sort("ts", "pair")
    lat, cpu = [], []
    for _, minute in replay.partition_by("ts", as_dict=True, maintain_order=True).items():
        t, c = time.perf_counter(), time.process_time()
        live.update(minute)
        lat.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    k = len(lat)
    wall, proc = sorted(lat), sorted(cpu)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    print(f"update of one minute ({len(live.pairs)} pairs), {k} minutes: median {wall[k // 2]:.3f} s, "
          f"p90 {wall[int(k * 0.9)]:.3f} s, min {wall[0]:.3f} s, max {wall[-1]:.3f} s; CPU median {proc[k // 2]:.3f} s; "
          f"peak RSS {rss:.0f} MB (before start {rss0 / 1e3:.0f} MB)")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if live.batched.fallbacks:
        print(f"sent back to one call per pair by the minute's check: {', '.join(live.batched.fallbacks)}")
    fams = {f.name: f for f in live.plan.families}
    total = sum(lat)
    print(f"  {'family':18s} {'how':9s} {'rows':>6s} {'ms/minute':>10s} {'share':>6s}")
    for name, s in sorted(live.timings.items(), key=lambda kv: -kv[1]):
        f = fams[name]
        how = "cross" if f.family.cross_pair else ("batched" if name in live.batched.families else "per pair")
        print(f"  {name:18s} {how:9s} {f.rows:6d} {s / k * 1e3:10.1f} {100 * s / total:5.1f} %")
    rest = total - sum(live.timings.values())
    print(f"  {'(session)':18s} {'':9s} {'':6s} {rest / k * 1e3:10.1f} {100 * rest / total:5.1f} %"
          "  checks, cache appends, output rows")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30)
