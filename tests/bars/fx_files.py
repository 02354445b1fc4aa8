"""Minute bars of the FX week written as vendors write them (MetaTrader, HistData, Dukascopy, generic), in any zone.

The bars trade from Sunday 17:00 to Friday 17:00 New York time; `drop` removes minutes (quiet
hours, outages). Local times are rendered with the same conventions bqx reads: ny-close is New York
time + 7 h, est-fixed is UTC-5, offsets are hours east of UTC.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl

NY = "America/New_York"


def fx_minutes(start: str, end: str) -> pl.DataFrame:
    """ts (UTC) of every minute in [start, end) while FX trades (Sunday 17:00 to Friday 17:00 New York)."""
    ts = pl.datetime_range(datetime.fromisoformat(start), datetime.fromisoformat(end), "1m", closed="left",
                           time_zone="UTC", eager=True).alias("ts")
    f = pl.DataFrame(ts).with_columns(pl.col("ts").dt.convert_time_zone(NY).alias("_ny"))
    wd, hour = pl.col("_ny").dt.weekday(), pl.col("_ny").dt.hour()
    open_ = (wd <= 4) | ((wd == 5) & (hour < 17)) | ((wd == 7) & (hour >= 17))
    return f.filter(open_).select("ts")


def with_prices(ts: pl.DataFrame, seed: int = 0, base: float = 1.1) -> pl.DataFrame:
    """A random walk of consistent OHLC bars on `ts`."""
    rng = np.random.default_rng(seed)
    close = base * np.exp(np.cumsum(rng.normal(0, 1e-4, ts.height)))
    open_ = np.concatenate([[base], close[:-1]])
    wig = np.abs(rng.normal(0, 5e-5, ts.height)) * base
    return ts.with_columns(pl.Series("open", open_), pl.Series("high", np.maximum(open_, close) + wig),
                           pl.Series("low", np.minimum(open_, close) - wig), pl.Series("close", close),
                           pl.Series("volume", rng.integers(1, 90, ts.height)))


def local(ts: pl.Expr, zone: str | int) -> pl.Expr:
    """UTC ts as naive local time in `zone`: hours east of UTC, "ny-close", "est-fixed" or an IANA name."""
    if isinstance(zone, int):
        return ts.dt.replace_time_zone(None) + pl.duration(hours=zone)
    if zone == "ny-close":
        return ts.dt.convert_time_zone(NY).dt.replace_time_zone(None) + pl.duration(hours=7)
    if zone == "est-fixed":
        return ts.dt.replace_time_zone(None) - pl.duration(hours=5)
    return ts.dt.convert_time_zone(zone).dt.replace_time_zone(None)


def _prices(digits: int = 5) -> list[pl.Expr]:
    return [pl.col(c).round(digits).cast(pl.String) for c in ("open", "high", "low", "close")]


def write_metatrader(path: Path, bars: pl.DataFrame, zone: str | int) -> Path:
    """MT5 export: tab-separated with a <DATE> <TIME> header, times in the broker's zone."""
    t = local(pl.col("ts"), zone)
    lines = bars.select(pl.concat_str([t.dt.strftime("%Y.%m.%d"), t.dt.strftime("%H:%M:%S"), *_prices(),
                                       pl.col("volume").cast(pl.String), pl.lit("0"), pl.lit("3")], separator="\t"))
    return _write(path, "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>", lines)


def write_histdata(path: Path, bars: pl.DataFrame, zone: str | int = "est-fixed") -> Path:
    """HistData ASCII M1: `YYYYMMDD HHMMSS;o;h;l;c;0`, no header."""
    t = local(pl.col("ts"), zone)
    lines = bars.select(pl.concat_str([t.dt.strftime("%Y%m%d %H%M%S"), *_prices(), pl.lit("0")], separator=";"))
    return _write(path, None, lines)


def write_dukascopy(path: Path, bars: pl.DataFrame) -> Path:
    """Dukascopy export: `Gmt time,Open,High,Low,Close,Volume` with dd.mm.YYYY times in UTC."""
    lines = bars.select(pl.concat_str([pl.col("ts").dt.strftime("%d.%m.%Y %H:%M:%S.000"), *_prices(),
                                       pl.col("volume").cast(pl.String)], separator=","))
    return _write(path, "Gmt time,Open,High,Low,Close,Volume", lines)


def write_generic(path: Path, bars: pl.DataFrame, zone: str | int, pair: str | None = None) -> Path:
    """Generic CSV with naive ISO times in `zone` (and a pair column when `pair` is given)."""
    t = local(pl.col("ts"), zone).dt.strftime("%Y-%m-%d %H:%M:%S")
    cols = ([pl.lit(pair)] if pair else []) + [t, *_prices(), pl.col("volume").cast(pl.String)]
    head = ("pair," if pair else "") + "time,open,high,low,close,volume"
    return _write(path, head, bars.select(pl.concat_str(cols, separator=",")))


def _write(path: Path, header: str | None, lines: pl.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "\n".join(lines.to_series().to_list())
    path.write_text((header + "\n" if header else "") + body + "\n")
    return path
