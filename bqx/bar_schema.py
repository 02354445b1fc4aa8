"""The canonical bar schema: one row per pair per minute with activity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

TS_DTYPE = pl.Datetime("us", "UTC")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
BID_COLUMNS: tuple[str, ...] = ("bid_open", "bid_high", "bid_low", "bid_close")
ASK_COLUMNS: tuple[str, ...] = ("ask_open", "ask_high", "ask_low", "ask_close")

#: Column -> dtype, in canonical order. Bid/ask columns are nullable (absent in the source -> NULL).
BAR_SCHEMA: dict[str, pl.DataType] = {
    "ts": TS_DTYPE,
    **{c: pl.Float64 for c in PRICE_COLUMNS},
    "volume": pl.Float64,
    **{c: pl.Float64 for c in BID_COLUMNS},
    **{c: pl.Float64 for c in ASK_COLUMNS},
}
BAR_COLUMNS: tuple[str, ...] = tuple(BAR_SCHEMA)
REQUIRED_COLUMNS: tuple[str, ...] = ("ts", *PRICE_COLUMNS)

Basis = Literal["mid", "bid", "ask"]


@dataclass(frozen=True)
class PairSource:
    """What a source says about one pair: its price basis and whether it has volume and bid/ask."""

    pair: str
    basis: Basis = "mid"
    has_volume: bool = True
    has_bidask: bool = True


def conform(frame: pl.DataFrame, *, with_pair: bool = False) -> pl.DataFrame:
    """Cast `frame` to the canonical schema, adding missing nullable columns as NULL.

    Keeps `pair` in front when `with_pair`; drops any other column.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"bar frame lacks required columns {missing}; it has {frame.columns}")
    exprs = []
    if with_pair:
        exprs.append(pl.col("pair").cast(pl.String))
    for name, dtype in BAR_SCHEMA.items():
        if name in frame.columns:
            col = pl.col(name)
            if name == "ts":
                col = col.dt.convert_time_zone("UTC") if _is_tz_aware(frame, name) else col.dt.replace_time_zone("UTC")
                col = col.dt.cast_time_unit("us")
            exprs.append(col.cast(dtype).alias(name))
        elif name == "volume":
            exprs.append(pl.lit(0.0, pl.Float64).alias(name))
        else:
            exprs.append(pl.lit(None, dtype).alias(name))
    return frame.select(exprs)


def _is_tz_aware(frame: pl.DataFrame, name: str) -> bool:
    dtype = frame.schema[name]
    return isinstance(dtype, pl.Datetime) and dtype.time_zone is not None


def source_of(pair: str, frame: pl.DataFrame, basis: Basis = "mid") -> PairSource:
    """Describe a pair's canonical bars: whether any volume is non-zero and any bid/ask is present."""
    has_volume = bool(frame.height and (frame["volume"].fill_null(0.0) != 0.0).any())
    has_bidask = bool(frame.height and frame["bid_close"].is_not_null().any() and frame["ask_close"].is_not_null().any())
    return PairSource(pair=pair, basis=basis, has_volume=has_volume, has_bidask=has_bidask)


def split_pairs(bars: Any) -> dict[str, pl.DataFrame]:
    """Canonical per-pair frames, sorted by ts, from a polars or pandas frame with a `pair` column."""
    if not isinstance(bars, pl.DataFrame):
        bars = pl.from_pandas(bars) if hasattr(bars, "to_dict") and not isinstance(bars, dict) else pl.DataFrame(bars)
    if "pair" not in bars.columns:
        raise ValueError("bars need a `pair` column (one frame may hold several pairs)")
    canon = conform(bars, with_pair=True)
    return {
        str(key[0]): part.drop("pair").sort("ts")
        for key, part in canon.partition_by("pair", as_dict=True, maintain_order=True).items()
    }
