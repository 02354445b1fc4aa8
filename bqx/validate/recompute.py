"""A checked partition as its task saw it, and one family recomputed on a cut of it.

A `Window` holds, per pair, the rows the partition's task read (bqx.engine.window, the very
rule the engine's worker applied: its month plus the task's context rows before it, per pair by
rows, and for month tasks one time range over all pairs) with the bars and the stored columns of
the family's inputs. Checks cut or alter the rows after a timestamp and recompute the family alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Mapping

import numpy as np
import polars as pl

from bqx.core.declaration import Column, Family
from bqx.core.runner import run_cross_family, run_pair_family
from bqx.engine.window import task_frames
from bqx.numerics import mismatches
from bqx.validate.storeview import StoreView


@dataclass
class Window:
    fam: Family
    pair: str | None  # None for a month task over all pairs
    month: str
    frames: dict[str, pl.DataFrame]  # pair -> rows the task read (context rows first)
    start: datetime  # the month's first instant
    end: datetime  # the next month's first instant
    context: int
    columns: tuple[Column, ...] = ()

    def month_ts(self) -> pl.Series:
        """The timestamps of the partition's own bars (the union over pairs for a month task)."""
        parts = [f["ts"].filter((f["ts"] >= self.start) & (f["ts"] < self.end)) for f in self.frames.values()]
        return pl.concat(parts).unique().sort() if parts else pl.Series("ts", [], pl.Datetime("us", "UTC"))

    def upto(self, t: datetime, after: int = 0) -> dict[str, pl.DataFrame]:
        """Each pair's rows up to `t`, plus its next `after` rows."""
        out = {}
        for pair, frame in self.frames.items():
            hi = int(frame["ts"].search_sorted(t, side="right")) + after
            if hi > 0:
                out[pair] = frame.slice(0, hi)
        return out

    def around(self, t: datetime, before: int, after: int) -> dict[str, pl.DataFrame]:
        """The task's rows around the bar at t, by the task's own rule (bqx.engine.window) for the span of that
        one bar: `before` rows of context, `after` rows of lookahead (for a month task: from the earliest pair's
        `before`-th row before t to the latest pair's `after`-th row after it)."""
        return task_frames(self.frames, t, t + timedelta(microseconds=1), context=before, lookahead=after,
                           month_task=self.pair is None)


def open_window(view: StoreView, fam: Family, pair: str | None, month: str) -> Window:
    """The rows the task of (family, pair or month) read: StoreView.task_frames, the engine's own window."""
    start, end = view.month_bounds(month)
    context = view.task_shape(fam, pair)[0]
    return Window(fam, pair, month, view.task_frames(fam, pair, month), start, end, context,
                  tuple(fam.columns(view.fam_params(fam))))


def compute(view: StoreView, fam: Family, frames: Mapping[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The family alone on `frames` (its inputs already in them): per pair, ts + its columns."""
    names = list(fam.column_names(view.fam_params(fam)))
    if not fam.cross_pair:
        out = {}
        for pair, frame in frames.items():
            cols = run_pair_family(fam, frame, view.ctx(fam, pair))
            out[pair] = pl.concat([frame.select("ts"), cols.select(names)], how="horizontal")
        return out
    ordered = {p: frames[p] for p in sorted(frames) if frames[p].height}
    if not ordered:
        return {}
    long = pl.concat([f.select(pl.lit(p).alias("pair"), pl.all()) for p, f in ordered.items()], how="vertical_relaxed")
    cols, _ = run_cross_family(fam, long, view.ctx(fam, None))
    merged = pl.concat([long.select("pair", "ts"), cols.select(names)], how="horizontal")
    return {p: part.drop("pair") for (p,), part in merged.partition_by("pair", as_dict=True, maintain_order=True).items()}


def differ(column: Column, expected: np.ndarray, actual: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """bqx.numerics.mismatches, with the median part of the tolerance taken over `reference` when given
    (a whole stored column), so that a few compared values get the tolerance the column has."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    if reference is None or reference.size == 0:
        return mismatches(column, e, a)
    ref = np.asarray(reference, dtype=np.float64)
    ref = ref[np.isfinite(ref)]
    return mismatches(column, np.concatenate([e, ref]), np.concatenate([a, ref]))[: e.size]


def value(x: float) -> float | None:
    """A JSON-friendly value: NULL/NaN as None."""
    return None if x is None or not np.isfinite(x) else float(x)
