"""One minute's features: every family run by the batch's own runner on the cached tail of its declared context.

A per-pair family gets the pair's last `context + 1` rows (bars and the cached columns of the
families it reads, each computed in full when its own bar came); a cross-pair family gets every
pair's rows from the earliest pair's context start, as a month task's window (PIPELINE.md §4).
Only the new bar's row of the result is kept.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Mapping, Sequence

import polars as pl

from bqx.families.base import Ctx, PairInfo
from bqx.families.runner import run_cross_family, run_pair_family
from bqx.live.plan import LiveFamily, LivePlan
from bqx.live.tail import PairTail


def compute_minute(plan: LivePlan, tails: Mapping[str, PairTail], present: Sequence[str], ts_us: int, *,
                   baseline: datetime, infos: Mapping[str, PairInfo], anchors: Mapping[str, Any],
                   timings: dict[str, float] | None = None) -> dict[str, pl.DataFrame]:
    """Fill the last row (the bar at `ts_us`) of every present pair's tail; returns the tables' rows at `ts_us`."""
    tables: dict[str, pl.DataFrame] = {}
    for f in plan.families:
        t0 = time.perf_counter()
        if f.family.cross_pair:
            tables.update(_cross(f, tails, present, ts_us, baseline, infos, anchors.get(f.name)))
        else:
            per_pair = anchors.get(f.name) or {}
            for pair in present:
                ctx = Ctx(params=f.params, baseline_time=baseline, pair=infos[pair], pairs={pair: infos[pair]},
                          anchor=per_pair.get(pair))
                out = run_pair_family(f.family, tails[pair].frame(f.visible, f.rows), ctx)
                tails[pair].set_last(dict(zip(out.columns, out.row(-1))))
        if timings is not None:
            timings[f.name] = timings.get(f.name, 0.0) + time.perf_counter() - t0
    return tables


def _cross(f: LiveFamily, tails: Mapping[str, PairTail], present: Sequence[str], ts_us: int, baseline: datetime,
           infos: Mapping[str, PairInfo], anchor: Any) -> dict[str, pl.DataFrame]:
    # the month task's window: from the earliest pair's `context` rows before the first bar at/after the start
    starts = []
    for pair, tail in tails.items():
        if tail.ts.end == 0:
            continue
        i = tail.ts.end - tail.count_since(ts_us)  # first cached row at/after ts
        lo = max(0, i - f.context)
        if lo < tail.ts.end:
            starts.append(int(tail.ts.arr[lo]))
    t0 = min(starts)
    parts = []
    for pair in sorted(tails):
        tail = tails[pair]
        n = tail.count_since(t0)
        if n:
            parts.append(tail.frame(f.visible, n).select(pl.lit(pair).alias("pair"), pl.all()))
    long = pl.concat(parts, how="vertical")
    ctx = Ctx(params=f.params, baseline_time=baseline, pairs=dict(sorted(infos.items())), anchor=anchor)
    cols, tabs = run_cross_family(f.family, long, ctx)
    stamp = long["ts"].dt.epoch("us")
    at = (stamp == ts_us).to_numpy()
    pairs_at = long["pair"].filter(at).to_list()
    rows = cols.filter(at)
    for pair, values in zip(pairs_at, rows.iter_rows()):
        if pair in present:
            tails[pair].set_last(dict(zip(rows.columns, values)))
    out = {}
    for name, table in tabs.items():
        out[name] = table.filter(table["ts"].dt.epoch("us") == ts_us)
    return out
