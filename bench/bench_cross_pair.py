"""Benchmark the cross-pair stages (currency_indices, arbitrage, advanced) on the sample market.

    .venv/bin/python bench/bench_cross_pair.py --months 3 [--mode whole|month] [--pairs 28]

`whole` runs each stage once over all months; `month` runs one task per month with the stage's
declared context (per-pair rows before the month), as the engine's month tasks do. Inputs of
advanced (technical's ADX/DI, statistics) are computed beforehand and not timed.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

import polars as pl

from bqx.bars.sample import sample_market
from bqx.core.declaration import Ctx
from bqx.core.registry import REGISTRY
from bqx.core.runner import baseline_time, compute_frames, pair_info, resolve, run_cross_family, split_pairs
from bqx.universe import PAIR_NAMES

STAGES = ("currency_indices", "arbitrage", "advanced")


def month_starts(frame: pl.DataFrame) -> list[datetime]:
    months = frame.select(pl.col("ts").dt.truncate("1mo").unique().sort())["ts"].to_list()
    return [m.astimezone(timezone.utc) for m in months]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--months", type=int, default=1)
    ap.add_argument("--start", default="2024-07")
    ap.add_argument("--pairs", type=int, default=28)
    ap.add_argument("--mode", choices=("whole", "month"), default="whole")
    args = ap.parse_args()

    t = time.perf_counter()
    bars = split_pairs(sample_market(PAIR_NAMES[: args.pairs], args.start, args.months))
    print(f"sample market: {sum(f.height for f in bars.values()):,} bars in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    needed = [f for f in resolve(STAGES) if not f.cross_pair]
    frames, _ = compute_frames(bars, needed)
    print(f"inputs ({', '.join(f.name for f in needed)}): {time.perf_counter() - t:.1f} s (not timed below)")

    baseline = baseline_time(min(f["ts"].min() for f in frames.values()))
    infos = {p: pair_info(p, bars[p]) for p in bars}
    long = pl.concat([f.select(pl.lit(p).alias("pair"), pl.all()) for p, f in sorted(frames.items())])
    rows = long.height
    total = 0.0
    for name in STAGES:
        fam = REGISTRY.get(name)
        params = fam.resolve_params()
        ctx = Ctx(params=params, baseline_time=baseline, pairs=infos)
        if fam.anchor is not None:
            ctx = Ctx(params=params, baseline_time=baseline, pairs=infos, anchor=dict(fam.anchor(long, ctx)))
        t = time.perf_counter()
        if args.mode == "whole":
            run_cross_family(fam, long, ctx)
        else:
            context = fam.context()
            for start in month_starts(long):
                end = start.replace(year=start.year + (start.month == 12), month=start.month % 12 + 1)
                parts = []
                for p, f in sorted(frames.items()):
                    first = f["ts"].search_sorted(start)
                    last = f["ts"].search_sorted(end)
                    lo = max(first - context, 0)
                    parts.append(f.slice(lo, last - lo).select(pl.lit(p).alias("pair"), pl.all()))
                run_cross_family(fam, pl.concat(parts), ctx)
        dt = time.perf_counter() - t
        total += dt
        print(f"{name:>17}: {dt:7.2f} s  {rows / dt:12,.0f} rows/s")
    print(f"{'all three':>17}: {total:7.2f} s  {rows / total:12,.0f} rows/s  "
          f"({len(frames)} pairs x {args.months} months, {rows:,} rows, mode {args.mode})")


if __name__ == "__main__":
    main()
