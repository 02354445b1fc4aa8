"""quick_win (stage S2.1): 15 simple bar, day and round-level features on the pair's own mid bars.

Trading day = [17:00, 17:00) America/New_York (daylight saving honoured): its date is the New York
wall-clock date of ts + 7 h. The frame's first trading day is partial: columns needing a day's first
bar are NULL on it, columns needing the previous day on the first two. A day holds at most 1,500
bars (25 h on a fall-back day), so a context of 3 × 1,500 bars keeps the frame's partial first days
away from every partition row.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl
import talib

from bqx.core.declaration import Column, Ctx, null_frame, series
from bqx.core.registry import family
from bqx.kernels.rolling import rolling_mean, rolling_sum, scale_is_zero, shift, snap_diff, snap_log
from bqx.universe import pair as universe_pair

BPS = 1e4
ZONE = "America/New_York"
DAY_CLOSE_HOUR = 17
CONTEXT = 3 * 1500
FIRST_DAY = "the data's first trading day (partial, FEATURES.md)"
TWO_DAYS = "the data's first two trading days (the previous day is missing or partial)"


def columns(p: Mapping[str, Any]) -> list[Column]:
    cols = [Column(f"qw_ret_{k}", "continuous", k, f"ln(c_t / c_(t−{k})) · 10^4") for k in p["returns"]]
    cols += [
        Column("qw_range_bps", "continuous", 0, "(h − l)/c · 10^4; exactly 0 when the two prices are within 1e-9 · c (stable comparisons)"),
        Column("qw_body_bps", "continuous", 0, "(c − o)/c · 10^4; exactly 0 when the two prices are within 1e-9 · c (stable comparisons)"),
        Column("qw_round_dist_bps", "continuous", 0,
               "(c − R)/c · 10^4, R = the nearest multiple of 50 pips (pip 0.01 for JPY pairs, 0.0001 otherwise); "
               "a price within 1e-9 step of half-way counts as a tie and goes to the lower level"),
        Column("qw_pivot_dist_bps", "continuous", 1,
               "(c − P)/c · 10^4, P = (H + L + C)/3 of the previous trading day's max h, min l and last close "
               "(the previous day with bars: Friday's before Sunday 17:00)", TWO_DAYS),
        Column("qw_clv", "continuous", 0, "((c − l) − (h − c))/(h − l)", "h − l ≤ 1e-12 · h (a flat bar)", bounded=True),
        Column("qw_gap_bps", "continuous", 1, "(o_t − c_(t−1))/c_(t−1) · 10^4, c_(t−1) the previous bar's close; exactly 0 when the two prices are within 1e-9 · c (stable comparisons)"),
        Column("qw_day_ret_bps", "continuous", 1, "ln(c_t / open of the trading day's first bar) · 10^4", FIRST_DAY),
        Column("qw_hi60_dist_bps", "continuous", 59, "(max h over L_60 − c)/c · 10^4"),
        Column("qw_lo60_dist_bps", "continuous", 59, "(c − min l over L_60)/c · 10^4"),
        Column("qw_vwap60_dev_bps", "continuous", 59,
               "(c − VWAP)/c · 10^4, VWAP = Σ((h + l + c)/3 · v) / Σ v over L_60",
               "the pair has no volume, or every volume in L_60 is 0"),
        Column("qw_range_ratio_60", "continuous", 59, "(h − l) / mean(h − l over L_60)",
               "mean(h − l over L_60) ≤ 1e-12 · c (flat bars)"),
        Column("qw_bar_count_day", "count", 1, "bars so far in the trading day, this one included", FIRST_DAY),
    ]
    return cols


@family(name="quick_win", stage="quick_win", inputs=("bars",), columns=columns, params={"returns": (120, 240, 1440)},
        context=CONTEXT)
def quick_win(frame: pl.DataFrame, ctx: Ctx) -> pl.DataFrame:
    """Returns, bar shape, round-level, pivot, gap, trading-day and 60-bar range/VWAP features, in bps."""
    names = [c.name for c in columns(ctx.params)]
    if frame.height == 0:
        return null_frame(names, 0)
    o, h, l, c = (np.ascontiguousarray(frame[k].to_numpy(), dtype=np.float64) for k in ("open", "high", "low", "close"))
    v = np.nan_to_num(frame["volume"].to_numpy().astype(np.float64), nan=0.0)
    nan = np.nan
    out: dict[str, np.ndarray] = {}
    lc = np.log(c)
    for k in ctx.params["returns"]:
        out[f"qw_ret_{k}"] = snap_log(lc - shift(lc, k)) * BPS
    # differences of prices equal within 1e-9 · c are exactly 0 (FEATURES.md stable comparisons)
    out["qw_range_bps"] = snap_diff(h - l, c) / c * BPS
    out["qw_body_bps"] = snap_diff(c - o, c) / c * BPS
    out["qw_round_dist_bps"] = (c - round_level(c, 50.0 * _pip(ctx))) / c * BPS
    rng = h - l
    with np.errstate(divide="ignore", invalid="ignore"):
        out["qw_clv"] = np.where(scale_is_zero(rng, h), nan, ((c - l) - (h - c)) / rng)
    c_prev = shift(c, 1)
    out["qw_gap_bps"] = snap_diff(o - c_prev, c_prev) / c_prev * BPS

    day_index, start = trading_days(frame["ts"])
    ends = np.r_[start[1:], frame.height] - 1
    row_day = day_index
    first_of_row = start[row_day]
    out["qw_day_ret_bps"] = np.where(row_day >= 1, snap_log(lc - np.log(o[first_of_row])) * BPS, nan)
    out["qw_bar_count_day"] = np.where(row_day >= 1, np.arange(frame.height) - first_of_row + 1.0, nan)
    pivot_day = (np.maximum.reduceat(h, start) + np.minimum.reduceat(l, start) + c[ends]) / 3.0
    prev_pivot = np.r_[nan, pivot_day[:-1]]
    piv = prev_pivot[row_day]
    out["qw_pivot_dist_bps"] = np.where(row_day >= 2, (c - piv) / c * BPS, nan)

    out["qw_hi60_dist_bps"] = (talib.MAX(h, 60) - c) / c * BPS
    out["qw_lo60_dist_bps"] = (c - talib.MIN(l, 60)) / c * BPS
    has_volume = ctx.pair.has_volume if ctx.pair is not None else bool((v != 0).any())
    positive = np.concatenate(([0], np.cumsum(v > 0)))
    idx = np.arange(frame.height)
    n_pos = np.where(idx >= 59, positive[idx + 1] - positive[np.maximum(idx - 59, 0)], 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        vwap = rolling_sum((h + l + c) / 3.0 * v, 60) / rolling_sum(v, 60)
        out["qw_vwap60_dev_bps"] = np.where((n_pos > 0) & has_volume, (c - vwap) / c * BPS, nan)
        mean_rng = rolling_mean(rng, 60)
        out["qw_range_ratio_60"] = np.where(scale_is_zero(mean_rng, c), nan, snap_diff(rng, c) / mean_rng)
    return pl.DataFrame([series(n, out[n]) for n in names])


def _pip(ctx: Ctx) -> float:
    if ctx.pair is None:
        raise ValueError("quick_win needs the pair (ctx.pair) for its pip size")
    return universe_pair(ctx.pair.pair).pip


def round_level(c: np.ndarray, step: float) -> np.ndarray:
    """The nearest multiple of `step`; within 1e-9 step of half-way the lower one wins."""
    q = c / step
    base = np.floor(q)
    return (base + ((q - base) > 0.5 + 1e-9)) * step


def trading_days(ts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the index of its trading day within the frame (0 = the frame's first, partial day),
    and the first row of each trading day. Day = New York wall-clock date of ts + 7 h."""
    local = pl.DataFrame({"ts": ts}).select(pl.col("ts").dt.convert_time_zone(ZONE).dt.replace_time_zone(None))
    day = local.select((pl.col("ts") + pl.duration(hours=24 - DAY_CLOSE_HOUR)).dt.date().cast(pl.Int32))
    day = day.to_series().to_numpy()
    new = np.r_[True, day[1:] != day[:-1]]
    start = np.flatnonzero(new)
    return np.cumsum(new) - 1, start
