"""Long series to at most MAX_POINTS buckets of equal time, in polars, before anything goes to the page."""

from __future__ import annotations

import math

import polars as pl

from bqx.report.context import MAX_POINTS


def every(frame: pl.LazyFrame | pl.DataFrame, points: int = MAX_POINTS) -> str:
    """A bucket width in whole minutes that cuts the frame's time span into at most `points` buckets."""
    lf = frame.lazy()
    span = lf.select((pl.col("ts").max() - pl.col("ts").min()).dt.total_minutes()).collect().item() or 0
    return f"{max(1, math.ceil((span + 1) / points))}m"


def _breaks(frame: pl.DataFrame, step: str) -> pl.DataFrame:
    """Empty buckets (weekends, gaps) as NULL rows, so lines break there instead of bridging them."""
    return frame.upsample("ts", every=step) if frame.height else frame


def last(frame: pl.LazyFrame, columns: list[str], points: int = MAX_POINTS) -> pl.DataFrame:
    """The last value of each column per bucket (for levels such as strength indices); empty buckets NULL."""
    step = every(frame, points)
    return _breaks(frame.sort("ts").group_by_dynamic("ts", every=step)
                   .agg([pl.col(c).drop_nulls().last() for c in columns]).collect(), step)


def extreme(frame: pl.LazyFrame, columns: list[str], points: int = MAX_POINTS) -> pl.DataFrame:
    """The value of largest magnitude of each column per bucket (keeps spikes visible); empty buckets NULL."""
    step = every(frame, points)
    return _breaks(frame.sort("ts").group_by_dynamic("ts", every=step)
                   .agg([pl.col(c).get(pl.col(c).abs().fill_null(-1.0).arg_max()).alias(c) for c in columns])
                   .collect(), step)


def iso(ts: pl.Series) -> list[str]:
    return ts.dt.strftime("%Y-%m-%d %H:%M").to_list()
