"""time (stage extraction): clock and calendar of the bar, trading sessions in their own time zones."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl

from bqx.core.declaration import Column, Ctx
from bqx.core.registry import family

#: Trading centres: (time zone, opening hour, closing hour), open on local weekdays in [open, close).
CENTRES: dict[str, tuple[str, int, int]] = {
    "sydney": ("Australia/Sydney", 7, 16),
    "tokyo": ("Asia/Tokyo", 9, 18),
    "london": ("Europe/London", 8, 17),
    "new_york": ("America/New_York", 8, 17),
}
WEEK_CLOSE_TZ = "America/New_York"
WEEK_CLOSE_HOUR = 17  # Friday 17:00 New York
MINUTE_US = 60_000_000


def columns(p: Mapping[str, Any]) -> list[Column]:
    return [
        Column("time_tod_sin", "cyclic", 0, "sin(2π · m / 1440), m = UTC minute of day (seconds as fractions of a minute)"),
        Column("time_tod_cos", "cyclic", 0, "cos(2π · m / 1440), m = UTC minute of day"),
        Column("time_dow_sin", "cyclic", 0, "sin(2π · (weekday + m/1440) / 7), UTC, Monday = 0"),
        Column("time_dow_cos", "cyclic", 0, "cos(2π · (weekday + m/1440) / 7), UTC, Monday = 0"),
        Column("time_session", "categorical", 0,
               "2 if London and New York are open, else 1 if London, else 3 if New York, else 0 if Tokyo or Sydney, "
               "else 4; a centre is open on local weekdays with ts in [open, close) local time: Sydney 07–16 "
               "Australia/Sydney, Tokyo 09–18 Asia/Tokyo, London 08–17 Europe/London, New York 08–17 America/New_York"),
        Column("time_sessions_open", "count", 0, "number of the four centres (Sydney, Tokyo, London, New York) open at ts"),
        Column("time_to_week_close", "continuous", 0,
               "minutes from ts to the first Friday 17:00 America/New_York at or after ts (0 at the close itself; "
               "a bar after Friday 17:00 counts to the next Friday)"),
        Column("time_gap", "continuous", 1, "minutes since the pair's previous bar (NULL on its first bar)"),
    ]


def _open(ts: pl.Expr, tz: str, open_hour: int, close_hour: int) -> pl.Expr:
    local = ts.dt.convert_time_zone(tz)
    minute = local.dt.hour().cast(pl.Int32) * 60 + local.dt.minute().cast(pl.Int32)
    weekday = local.dt.weekday()  # 1 = Monday … 7 = Sunday
    return (weekday <= 5) & (minute >= open_hour * 60) & (minute < close_hour * 60)


def _to_week_close(ts: pl.Series) -> pl.Series:
    """Minutes to the first Friday 17:00 New York at or after ts (computed once per local date)."""
    local_date = ts.dt.convert_time_zone(WEEK_CLOSE_TZ).dt.date().alias("date")
    dates = local_date.unique().to_frame()
    days = (5 - pl.col("date").dt.weekday().cast(pl.Int32)) % 7  # days to the local Friday (0 on a Friday)
    friday = (pl.col("date") + pl.duration(days=days)).cast(pl.Datetime("us")) + pl.duration(hours=WEEK_CLOSE_HOUR)
    closes = dates.select(
        "date",
        friday.dt.replace_time_zone(WEEK_CLOSE_TZ).dt.convert_time_zone("UTC").alias("this"),
        (friday + pl.duration(days=7)).dt.replace_time_zone(WEEK_CLOSE_TZ).dt.convert_time_zone("UTC").alias("next"),
    )
    rows = pl.DataFrame({"ts": ts.dt.convert_time_zone("UTC"), "date": local_date}).join(
        closes, on="date", how="left", maintain_order="left")
    close = pl.when(pl.col("this") >= pl.col("ts")).then(pl.col("this")).otherwise(pl.col("next"))
    return rows.select(((close - pl.col("ts")).dt.total_microseconds() / MINUTE_US).alias("time_to_week_close")).to_series()


@family(name="time", stage="extraction", inputs=("bars",), columns=columns, context=1)
def time_features(frame: pl.DataFrame, ctx: Ctx) -> pl.DataFrame:
    """Cyclic clock and weekday (UTC), open trading centres (local time, DST honoured), week close, gap."""
    ts = pl.col("ts").dt.convert_time_zone("UTC")
    day_minute = (ts - ts.dt.truncate("1d")).dt.total_microseconds() / MINUTE_US
    tod = 2 * np.pi * day_minute / 1440.0
    dow = 2 * np.pi * ((ts.dt.weekday() - 1) + day_minute / 1440.0) / 7.0
    flags = frame.select([_open(ts, tz, o, c).alias(name) for name, (tz, o, c) in CENTRES.items()])
    london, new_york = pl.col("london"), pl.col("new_york")
    session = (
        pl.when(london & new_york).then(2.0)
        .when(london).then(1.0)
        .when(new_york).then(3.0)
        .when(pl.col("tokyo") | pl.col("sydney")).then(0.0)
        .otherwise(4.0)
    )
    count = pl.sum_horizontal([pl.col(name).cast(pl.Float64) for name in CENTRES])
    gap = (ts - ts.shift(1)).dt.total_microseconds() / MINUTE_US
    clock = frame.select(
        tod.sin().alias("time_tod_sin"),
        tod.cos().alias("time_tod_cos"),
        dow.sin().alias("time_dow_sin"),
        dow.cos().alias("time_dow_cos"),
    )
    sessions = flags.select(session.alias("time_session"), count.alias("time_sessions_open"))
    rest = frame.select(gap.alias("time_gap")).with_columns(_to_week_close(frame["ts"]))
    out = pl.concat([clock, sessions, rest.select("time_to_week_close", "time_gap")], how="horizontal")
    return out.select(pl.all().cast(pl.Float64))
