"""rate_index (stage 1.5): prices as an index, 100 at the close of the pair's first bar at the baseline."""

from __future__ import annotations

from typing import Any, Mapping

import polars as pl

from bqx.core.declaration import Column, Ctx
from bqx.core.registry import family

SOURCES = {"rate_index": "close", "rate_index_open": "open", "rate_index_high": "high", "rate_index_low": "low"}


def columns(p: Mapping[str, Any]) -> list[Column]:
    return [
        Column(name, "level", 0, f"100 · {src} / c_base; c_base = close of the pair's first bar at or after the baseline time")
        for name, src in SOURCES.items()
    ]


def baseline(frame: pl.DataFrame, ctx: Ctx) -> dict[str, Any]:
    """The pair's baseline: its first bar at or after the store's baseline time (fixed once per store)."""
    after = frame.filter(pl.col("ts") >= ctx.baseline_time)
    if after.height == 0:
        raise ValueError(f"{ctx.pair.pair if ctx.pair else 'pair'}: no bar at or after the baseline time {ctx.baseline_time}")
    first = after.row(0, named=True)
    return {"time": ctx.baseline_time.isoformat(), "ts": first["ts"].isoformat(), "close": float(first["close"])}


@family(name="rate_index", stage="rate_index", inputs=("bars",), columns=columns, context=0, anchor=baseline)
def rate_index(frame: pl.DataFrame, ctx: Ctx) -> pl.DataFrame:
    """x = 100 · c / c_base (and open, high, low likewise)."""
    c_base = float(ctx.anchor["close"])
    return frame.select([(100.0 * pl.col(src) / c_base).cast(pl.Float64).alias(name) for name, src in SOURCES.items()])
