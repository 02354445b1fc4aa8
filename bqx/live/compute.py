"""One minute's features: every family run by the batch's own runner on the cached tail of its declared context.

A per-pair family gets the pair's last `context + 1` rows (bars and the cached columns of the
families it reads, each computed in full when its own bar came); a cross-pair family gets every
pair's rows from the earliest pair's context start, as a month task's window (bqx.engine.window).
Only the new bar's row of the result is kept.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any, Callable, Mapping, Protocol, Sequence

import polars as pl

from bqx.core.declaration import Ctx, FamilyOutputError, PairInfo, check_output
from bqx.core.runner import run_cross_family
from bqx.engine.window import task_rows
from bqx.live.plan import LiveFamily, LivePlan


class Batching(Protocol):
    """What compute_minute needs of bqx.live.batch.Batched (not imported: batch builds on this module)."""

    families: set[str]

    def run(self, f: LiveFamily, tails: Mapping[str, PairTail], present: Sequence[str],
            columns_of: Callable[[str], Sequence[str]], ctx_of: Callable[[str], Ctx]) -> None: ...
from bqx.live.tail import PairTail


Reads = Mapping[tuple[str, Any], Sequence[str]]  # (family, PairInfo or None for cross-pair) -> columns it reads


def pair_ctx(f: LiveFamily, pair: str, baseline: datetime, infos: Mapping[str, PairInfo], anchors: Mapping[str, Any]) -> Ctx:
    """What a (pair, month) task gives the family: its pair's info only, its pair's anchor."""
    return Ctx(params=f.params, baseline_time=baseline, pair=infos[pair], pairs={pair: infos[pair]},
               anchor=(anchors.get(f.name) or {}).get(pair))


def cross_ctx(f: LiveFamily, baseline: datetime, infos: Mapping[str, PairInfo], anchors: Mapping[str, Any]) -> Ctx:
    return Ctx(params=f.params, baseline_time=baseline, pairs=dict(sorted(infos.items())), anchor=anchors.get(f.name))


def compute_pair(f: LiveFamily, frame: pl.DataFrame, ctx: Ctx) -> dict[str, float | None]:
    """The family's output on `frame`, its last row (the one kept), checked against the declaration as the batch does."""
    return kept_rows(f, f.family.compute(frame, ctx), frame.height, [frame.height - 1])[0]


def kept_rows(f: LiveFamily, out: Any, height: int, at: Sequence[int]) -> list[dict[str, float | None]]:
    """Rows `at` of a per-pair family's output on `height` input rows, checked against its declaration.

    The common case (declared names, Float64, one row per input row, the kept rows finite or NULL) is
    checked on the kept rows alone; anything else goes to the batch's check_output for its message.
    """
    if isinstance(out, pl.DataFrame) and out.height == height and tuple(out.columns) == f.columns \
            and all(t == pl.Float64 for t in out.dtypes):
        rows = [out.row(i) for i in at]
        if all(v is None or math.isfinite(v) for row in rows for v in row):
            return [dict(zip(f.columns, row)) for row in rows]
    if isinstance(out, pl.DataFrame) and out.height != height:
        raise FamilyOutputError(f"family {f.name} returned {out.height} rows for {height} input rows")
    check_output(f.family, out[list(at)] if isinstance(out, pl.DataFrame) else out, len(at), f.params)
    raise FamilyOutputError(f"family {f.name}: output does not match its declaration")


def compute_minute(plan: LivePlan, tails: Mapping[str, PairTail], present: Sequence[str], ts_us: int, *,
                   baseline: datetime, infos: Mapping[str, PairInfo], anchors: Mapping[str, Any], reads: Reads,
                   timings: dict[str, float] | None = None, batched: Batching | None = None) -> dict[str, pl.DataFrame]:
    """Fill the last row (the bar at `ts_us`) of every present pair's tail; returns the tables' rows at `ts_us`.

    A per-pair family in `batched` runs once on every pair's tail concatenated (bqx/live/batch.py).
    """
    tables: dict[str, pl.DataFrame] = {}
    for f in plan.families:
        t0 = time.perf_counter()
        if f.family.cross_pair:
            long = cross_frame(f, tails, ts_us, reads.get((f.name, None), f.visible))
            cols, tabs = run_cross_family(f.family, long, cross_ctx(f, baseline, infos, anchors))
            tables.update(_keep_cross(long, cols, tabs, tails, present, ts_us))
        elif batched is not None and f.name in batched.families and len(present) > 1:
            batched.run(f, tails, present, lambda p, f=f: reads.get((f.name, infos[p]), f.visible),
                        lambda p, f=f: pair_ctx(f, p, baseline, infos, anchors))
        else:
            for pair in present:
                cols = reads.get((f.name, infos[pair]), f.visible)
                tails[pair].set_last(compute_pair(f, tails[pair].frame(cols, f.rows),
                                                  pair_ctx(f, pair, baseline, infos, anchors)))
        if timings is not None:
            timings[f.name] = timings.get(f.name, 0.0) + time.perf_counter() - t0
    return tables


def cross_frame(f: LiveFamily, tails: Mapping[str, PairTail], ts_us: int, columns: Sequence[str]) -> pl.DataFrame:
    """Every pair's rows of a month task's window ending at `ts_us`, long, sorted by (pair, ts).

    The window is bqx.engine.window's month-task rule for the span of this one bar: from the earliest
    pair's `context`-th row before it, every pair's rows up to it."""
    ts = {p: tail.ts.last(tail.ts.end) for p, tail in tails.items() if tail.ts.end}
    bounds = task_rows(ts, ts_us, ts_us + 1, context=f.context, lookahead=0, month_task=True)
    parts = []
    for pair in sorted(bounds):
        lo, hi = bounds[pair]
        if hi > lo:
            rows = tails[pair].frame([c for c in columns if c != "pair"], len(ts[pair]) - lo).head(hi - lo)
            parts.append(rows.select(pl.lit(pair).alias("pair"), pl.all()))
    return pl.concat(parts, how="vertical")


def _keep_cross(long: pl.DataFrame, cols: pl.DataFrame, tabs: Mapping[str, pl.DataFrame], tails: Mapping[str, PairTail],
                present: Sequence[str], ts_us: int) -> dict[str, pl.DataFrame]:
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
