"""spread (stage extraction): the bid/ask spread in bps, its recent level, dispersion and persistence.

m = (b + a)/2, s = a − b, sb = s/m · 10^4 on the bid and ask closes.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl
import talib

from bqx.core.declaration import Column, Ctx, null_frame, series
from bqx.core.registry import family
from bqx.kernels.rolling import TIE_BPS, TIE_REL, shift, snap_diff
from bqx.kernels.rolling import rolling_corr
from bqx.kernels.window_stats import (
    divide, rolling_le_fraction, rolling_quantiles, rolling_slope, scale_zero, std_zero,
    streak_above, window_mean_std,
)

DEFAULTS = {"window": 60, "short": 5, "long": 240, "atr": 14, "streak_cap": 60, "spike": 2.0, "atr_context": 500}

NO_BIDASK = "the source has no bid/ask"


def columns(p: Mapping[str, Any]) -> list[Column]:
    w, sh, lg, atr, cap, k = p["window"], p["short"], p["long"], p["atr"], p["streak_cap"], p["spike"]
    mean_zero = f"{NO_BIDASK}, or zero mean spread over L_{w} (all spreads 0)"
    std_z = f"{NO_BIDASK}, or zero std of sb over L_{w} (≤ 1e-9 · mean |sb|: a constant spread)"
    return [
        Column("spr_bps", "continuous", 0, "sb_t = (a − b) / ((a + b)/2) · 10^4 on the closes", nullable_when=NO_BIDASK),
        Column(f"spr_mean_{w}", "continuous", w - 1, f"mean of sb over L_{w}", nullable_when=NO_BIDASK),
        Column(f"spr_std_{w}", "continuous", w - 1, f"population std of sb over L_{w}; exactly 0 on a constant window",
               nullable_when=NO_BIDASK),
        Column(f"spr_min_{w}", "continuous", w - 1, f"min of sb over L_{w}", nullable_when=NO_BIDASK),
        Column(f"spr_max_{w}", "continuous", w - 1, f"max of sb over L_{w}", nullable_when=NO_BIDASK),
        Column(f"spr_range_{w}", "continuous", w - 1, f"max − min of sb over L_{w}", nullable_when=NO_BIDASK),
        Column(f"spr_pctile_{w}", "continuous", w - 1, f"fraction of sb in L_{w} that are ≤ sb_t + 1e-7 bps (sb_t included; 1e-7 bps = 1e-11 · price: stable comparisons, "
               "see docs/NUMERICS.md)",
               nullable_when=NO_BIDASK, bounded=True),
        Column(f"spr_slope_{w}", "continuous", w - 1, f"OLS slope of sb on bar position 0…{w - 1} over L_{w} (bps per bar)",
               nullable_when=NO_BIDASK),
        Column("spr_spike", "binary", w - 1, f"1 if sb_t > {k:g} · spr_mean_{w} else 0", nullable_when=NO_BIDASK),
        Column(f"spr_z_{w}", "continuous", w - 1, f"(sb_t − spr_mean_{w}) / spr_std_{w}; NULL when the std is zero "
               "(≤ 1e-9 · mean |sb| over the window)", nullable_when=std_z),
        Column("spr_change", "continuous", 1, "sb_t − sb_(t−1)", nullable_when=NO_BIDASK),
        Column(f"spr_ratio_{sh}_{w}", "continuous", w - 1, f"mean(sb over L_{sh}) / spr_mean_{w}; NULL when the mean is 0",
               nullable_when=mean_zero),
        Column("spr_to_range", "continuous", 0,
               "s_t / (h_t − l_t) on the mid high and low; NULL when h − l ≤ 1e-12 · max(|h|, |l|) (a flat bar)",
               nullable_when=f"{NO_BIDASK}, or a flat bar (h = l)"),
        Column("spr_to_atr", "continuous", atr,
               f"s_t / TA-Lib ATR(h, l, c, {atr}) on the mid bars; NULL when ATR ≤ 1e-12 · max(|h|, |l|, |c|) of the bar "
               "(flat prices since the ATR's start)",
               nullable_when=f"{NO_BIDASK}, or zero ATR (flat prices)"),
        Column(f"spr_bid_ask_corr_{w}", "continuous", w,
               f"Pearson corr(Δb, Δa) over L_{w}; NULL when std(Δb) or std(Δa) ≤ 1e-9 · its mean |Δ| (a quote that did not move)",
               nullable_when=f"{NO_BIDASK}, or a bid or ask close constant over the {w + 1} closes behind L_{w}",
               bounded=True),
        Column(f"spr_rel_{lg}", "continuous", lg - 1, f"sb_t / mean(sb over L_{lg}); NULL when the mean is 0",
               nullable_when=f"{NO_BIDASK}, or zero mean spread over L_{lg}"),
        Column(f"spr_q90_{lg}", "continuous", lg - 1, f"90 % quantile of sb over L_{lg}, linear interpolation",
               nullable_when=NO_BIDASK),
        Column("spr_streak", "count", w - 1,
               f"number of consecutive bars up to t (at most {cap}) whose sb exceeds their own spr_mean_{w} by more than 1e-7 bps (stable comparisons); "
               "0 when sb_t does not; NULL if the run reaches a bar whose spr_mean is NULL",
               nullable_when=f"{NO_BIDASK}, or the run of exceeding bars reaches a NULL spr_mean_{w} "
                             f"(within the first {w - 1 + cap} bars, or next to missing quotes)"),
        Column("spr_oc_change_bps", "continuous", 0,
               "((a_t − b_t) − (ask_open_t − bid_open_t)) / m_t · 10^4: how the spread moved within the bar; "
               "exactly 0 when the numerator is ≤ 1e-12 · the largest of the four quotes (an unchanged spread)",
               nullable_when=f"{NO_BIDASK}, or no bid/ask opens"),
        Column("spr_toxicity", "continuous", w,
               f"(std(Δm over L_{sh}) / std(Δm over L_{w})) · (mean(sb over L_{sh}) / spr_mean_{w}), m = (b + a)/2; "
               f"NULL when std(Δm over L_{w}) ≤ 1e-9 · mean |Δm| or ≤ 1e-9 · m, or spr_mean_{w} is 0; a std(Δm) ≤ 1e-9 · m "
               "is 0 (changes equal within 1e-9 · m: stable comparisons)",
               nullable_when=f"{NO_BIDASK}, or a constant quote mid over L_{w}, or zero mean spread"),
    ]


def _context(p: Mapping[str, Any]) -> int:
    # ATR is recursive (Wilder): after atr_context rows the seed's weight ((n−1)/n)^rows is < 1e-12.
    return max(p["long"], p["window"] - 1 + p["streak_cap"], p["window"], int(p["atr_context"]))


@family(name="spread", stage="extraction", inputs=("bars",), columns=columns, params=DEFAULTS, context=_context)
def spread(frame: pl.DataFrame, ctx: Ctx) -> pl.DataFrame:
    """sb = (a − b)/m · 10^4 and its level, dispersion, rank, trend, persistence over L_60 and L_240."""
    p = ctx.params
    names = [col.name for col in columns(p)]
    if ctx.pair is not None and not ctx.pair.has_bidask:
        return null_frame(names, frame.height)
    w, sh, lg = int(p["window"]), int(p["short"]), int(p["long"])

    def col(name: str) -> np.ndarray:
        return frame[name].to_numpy().astype(np.float64)

    b, a, bo, ao = col("bid_close"), col("ask_close"), col("bid_open"), col("ask_open")
    h, l, c = col("high"), col("low"), col("close")
    m = (b + a) / 2.0
    s = a - b
    m_zero = scale_zero(m, a, b)
    sb = divide(s * 1e4, m, m_zero)

    out: dict[str, np.ndarray] = {"spr_bps": sb}
    st = window_mean_std(sb, w)
    mean, std = st["mean"], st["std"]
    mean_zero = scale_zero(mean, st["min"], st["max"])
    out[f"spr_mean_{w}"], out[f"spr_std_{w}"] = mean, std
    out[f"spr_min_{w}"], out[f"spr_max_{w}"] = st["min"], st["max"]
    out[f"spr_range_{w}"] = st["max"] - st["min"]
    out[f"spr_pctile_{w}"] = rolling_le_fraction(sb, w, TIE_BPS)
    out[f"spr_slope_{w}"] = rolling_slope(sb, w)
    out["spr_spike"] = np.where(np.isnan(sb) | np.isnan(mean), np.nan, (sb > float(p["spike"]) * mean).astype(np.float64))
    out[f"spr_z_{w}"] = divide(sb - mean, std, std_zero(std, st["mean_abs"], dimensionless=False))
    out["spr_change"] = sb - shift(sb, 1)
    short = window_mean_std(sb, sh)
    out[f"spr_ratio_{sh}_{w}"] = divide(short["mean"], mean, mean_zero)

    rng = h - l
    out["spr_to_range"] = divide(s, rng, scale_zero(rng, h, l))
    atr = talib.ATR(h, l, c, timeperiod=int(p["atr"]))
    mag = np.maximum.reduce([np.abs(h), np.abs(l), np.abs(c)])
    out["spr_to_atr"] = divide(s, atr, np.isnan(atr) | (np.abs(atr) <= 1e-12 * mag))

    out[f"spr_bid_ask_corr_{w}"] = rolling_corr(b - shift(b, 1), a - shift(a, 1), w)
    longw = window_mean_std(sb, lg)
    out[f"spr_rel_{lg}"] = divide(sb, longw["mean"], scale_zero(longw["mean"], longw["min"], longw["max"]))
    out[f"spr_q90_{lg}"] = rolling_quantiles(sb, lg, (0.9,))[0]

    above = np.where(np.isnan(sb) | np.isnan(mean), np.nan, (sb > mean + TIE_BPS).astype(np.float64))
    out["spr_streak"] = streak_above(above, int(p["streak_cap"]))
    oc = s - (ao - bo)
    oc = np.where(scale_zero(oc, a, b, ao, bo), 0.0, oc)  # a sum of prices: exactly 0 within 1e-12 of them
    out["spr_oc_change_bps"] = divide(oc * 1e4, m, m_zero)

    dm = snap_diff(m - shift(m, 1), m)  # equal mids (within 1e-9 · m): exactly 0
    dm_short, dm_long = window_mean_std(dm, sh), window_mean_std(dm, w)
    # a window of mid changes equal within 1e-9 · m has std 0 (stable comparisons), not rounding noise
    short_std = snap_diff(dm_short["std"], m)
    dm_zero = std_zero(dm_long["std"], dm_long["mean_abs"], dimensionless=False) | (dm_long["std"] <= TIE_REL * m)
    vol_ratio = divide(short_std, dm_long["std"], dm_zero)
    out["spr_toxicity"] = vol_ratio * divide(short["mean"], mean, mean_zero)
    return pl.DataFrame([series(name, np.asarray(out[name], dtype=np.float64)) for name in names])
