"""regimes (stage 2.9): 15 trend, volatility and market-state columns from technical, statistics, bollinger_rate.

The volatility terciles compare stat_std_60 with its previous 7,200 values (order statistics kept
in a Fenwick tree, order_stats.trailing_order_stats). Ages and transition counts look back at most
1,440 bars. Context: 7,200 previous values + 1 (rg_change compares with the previous bar) + 1,440
(the look-back) + a margin = 8,700 rows.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl

from bqx.core.declaration import Column, Ctx, null_frame, series
from bqx.core.registry import family
from bqx.kernels.rolling import (TIE_LOG, TIE_REL, rolling_autocorr, rolling_mean, rolling_mean_std, rolling_var, shift,
                                  std_is_zero)
from bqx.kernels.order_stats import trailing_order_stats

DEFAULTS = {"vol_window": 7200, "lookback": 1440}
ADX_WARMUP = 27  # ti_adx_14 (technical), the latest of ADX, +DI, −DI
STD_WARMUP = 60  # stat_std_60 (statistics)
WIDTH_WARMUP = 19  # bbr_width_20 (bollinger_rate)
AGE_RULE = ("NULL while fewer than {lb} earlier values exist and no change has been seen; {lb} when none in the "
            "last {lb} bars")


def columns(p: Mapping[str, Any]) -> list[Column]:
    w, lb = p["vol_window"], p["lookback"]
    vol_warm = STD_WARMUP + w
    change_warm = vol_warm + 1
    age = AGE_RULE.format(lb=lb)
    return [
        Column("rg_trend", "ordinal", ADX_WARMUP,
               "+2 if ADX > 25 and +DI − (−DI) > 10; +1 if ADX > 20 and +DI > −DI; −2, −1 symmetric; else 0 (ADX, ±DI(14) of "
               "technical, TA-Lib's recurrences with stable comparisons; +DI > −DI means by more than 1e-9 · max(+DI, −DI))", "ADX or a DI is NULL (flat start)"),
        Column("rg_trend_age", "count", ADX_WARMUP + 1,
               f"bars since rg_trend last changed (0 on the bar it changes), at most {lb}", age),
        Column("rg_vol", "ordinal", vol_warm,
               f"0 if stat_std_60 < the 1/3 quantile of its previous {w} values (t excluded, linear interpolation), "
               "2 if > the 2/3 quantile, else 1; within 1e-9 (log-return units: stable comparisons) of a quantile counts as equal to it"),
        Column("rg_vol_pctile", "continuous", vol_warm, f"fraction of the previous {w} stat_std_60 values ≤ the current + 1e-9 (stable comparisons)",
               bounded=True),
        Column("rg_autocorr_240", "continuous", 240, "lag-1 autocorrelation of r over L_240 (the 239 pairs inside)",
                "std of either member of the pairs is zero (≤ 1e-12 or ≤ 1e-9 · mean |r|)", bounded=True),
        Column("rg_mean_reverting", "binary", 240, "1 if rg_autocorr_240 < −0.1 else 0", "rg_autocorr_240 is NULL"),
        Column("rg_variance_ratio_240", "continuous", 243,
               "var of ln(c_k / c_(k−4)) over L_240 / (4 · var of r over L_240), population variances",
               "std of r over L_240 is zero (≤ 1e-12 or ≤ 1e-9 · mean |r|)"),
        Column("rg_efficiency_60", "continuous", 60, "|ln(c_t / c_(t−60))| / Σ |r| over L_60",
               "Σ |r| over L_60 ≤ 1e-12 (flat prices)", bounded=True),
        Column("rg_breakout_z", "continuous", 239, "(c_t − mean(c)) / std(c) over L_240",
               "std(c) ≤ 1e-9 · mean(c)"),
        Column("rg_squeeze", "continuous", WIDTH_WARMUP + lb - 1, f"bbr_width_20 / min(bbr_width_20 over L_{lb})",
               "the minimum width ≤ 4e-7 (σ ≤ 1e-9 · mid, the std zero rule), or a width in the window is NULL"),
        Column("rg_change", "binary", change_warm,
               "1 if rg_trend or rg_vol differs from the previous bar, else 0; NULL on the first bar where both exist",
               "rg_trend is NULL at t or t−1"),
        Column("rg_age", "count", change_warm, f"bars since the last bar with rg_change = 1 (0 on it), at most {lb}", age),
        Column("rg_transitions_1440", "count", change_warm + lb - 1, f"Σ rg_change over L_{lb}",
               "an rg_change in the window is NULL"),
        Column("rg_state", "categorical", vol_warm, "3 · (rg_trend + 2) + rg_vol (0 … 14)", "rg_trend is NULL"),
        Column("rg_persistence", "continuous", vol_warm + 240,
               "fraction of the previous 240 bars (P_240) whose rg_state equals the current one",
               "an rg_state in P_240 or at t is NULL", bounded=True),
    ]


@family(name="regimes", stage="regimes", inputs=("technical", "statistics", "bollinger_rate", "rate_index"),
        columns=columns, params=DEFAULTS, context=lambda p: p["vol_window"] + 1 + p["lookback"] + 59)
def regimes(frame: pl.DataFrame, ctx: Ctx) -> pl.DataFrame:
    """Trend and volatility regimes, their ages and transitions, and return-structure measures."""
    w, lb = ctx.params["vol_window"], ctx.params["lookback"]
    names = [c.name for c in columns(ctx.params)]
    if frame.height == 0:
        return null_frame(names, 0)

    def arr(name: str) -> np.ndarray:
        return np.ascontiguousarray(frame[name].cast(pl.Float64).to_numpy(), dtype=np.float64)

    out: dict[str, np.ndarray] = {}
    trend = trend_regime(arr("ti_adx_14"), arr("ti_plus_di_14"), arr("ti_minus_di_14"))
    out["rg_trend"] = trend
    out["rg_trend_age"] = capped_age(_changed(trend), ~np.isnan(trend), lb)

    std60 = arr("stat_std_60")
    q_lo, q_hi, pct = trailing_order_stats(std60, w, (1.0 / 3.0, 2.0 / 3.0), TIE_LOG)
    vol = np.where(std60 < q_lo - TIE_LOG, 0.0, np.where(std60 > q_hi + TIE_LOG, 2.0, 1.0))
    vol[np.isnan(q_lo) | np.isnan(std60)] = np.nan
    out["rg_vol"], out["rg_vol_pctile"] = vol, pct

    c = arr("close")
    lc = np.log(c)
    r = lc - shift(lc, 1)
    out["rg_autocorr_240"] = rolling_autocorr(r, 240, dimensionless=True)
    ac = out["rg_autocorr_240"]
    out["rg_mean_reverting"] = np.where(np.isnan(ac), np.nan, (ac < -0.1).astype(np.float64))
    var_r = rolling_var(r, 240)
    r_zero = std_is_zero(np.sqrt(var_r), rolling_mean(np.abs(r), 240), dimensionless=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rg_variance_ratio_240"] = np.where(r_zero, np.nan, rolling_var(lc - shift(lc, 4), 240) / (4.0 * var_r))
        abs_sum = rolling_mean(np.abs(r), 60) * 60.0
        eff = np.abs(lc - shift(lc, 60)) / abs_sum
        out["rg_efficiency_60"] = np.where(abs_sum <= 1e-12, np.nan, np.minimum(eff, 1.0))
        mean_c, std_c = rolling_mean_std(c, 240)
        out["rg_breakout_z"] = np.where(std_is_zero(std_c, mean_c), np.nan, (c - mean_c) / std_c)
        width = frame["bbr_width_20"].cast(pl.Float64)
        wmin = width.rolling_min(lb).to_numpy().astype(np.float64)
        out["rg_squeeze"] = np.where(np.isnan(wmin) | (wmin <= 4e-7), np.nan, width.to_numpy() / wmin)

    both = ~np.isnan(trend) & ~np.isnan(vol)
    prev_both = np.r_[False, both[:-1]]  # so the first bar where both exist is NULL
    diff = (trend != shift(trend, 1)) | (vol != shift(vol, 1))
    change = np.where(both & prev_both, diff.astype(np.float64), np.nan)
    out["rg_change"] = change
    out["rg_age"] = capped_age(change == 1.0, ~np.isnan(change), lb)
    out["rg_transitions_1440"] = _window_sum_exact(change, lb)
    state = 3.0 * (trend + 2.0) + vol
    out["rg_state"] = state
    out["rg_persistence"] = persistence(state, 240)
    return pl.DataFrame([series(n, out[n]) for n in names])


def trend_regime(adx: np.ndarray, pdi: np.ndarray, mdi: np.ndarray) -> np.ndarray:
    """+2/−2 for a strong directional trend, +1/−1 for a weak one, 0 otherwise; NaN where an input is NaN."""
    d = pdi - mdi
    tie = TIE_REL * np.maximum(np.abs(pdi), np.abs(mdi))  # stable comparison of +DI and −DI
    out = np.zeros(adx.shape[0])
    out = np.where((adx > 20) & (d > tie), 1.0, out)
    out = np.where((adx > 20) & (d < -tie), -1.0, out)
    out = np.where((adx > 25) & (d > 10), 2.0, out)
    out = np.where((adx > 25) & (-d > 10), -2.0, out)
    return np.where(np.isnan(adx) | np.isnan(d), np.nan, out)


def _changed(v: np.ndarray) -> np.ndarray:
    """True where v differs from the previous bar and both are defined."""
    prev = shift(v, 1)
    return ~np.isnan(v) & ~np.isnan(prev) & (v != prev)


def capped_age(change: np.ndarray, valid: np.ndarray, cap: int) -> np.ndarray:
    """Bars since the last change (0 on it), at most `cap`; NaN while < cap earlier valid values and no change seen.

    NaN where the value itself is not valid.
    """
    n = change.shape[0]
    idx = np.arange(n)
    last = np.maximum.accumulate(np.where(change, idx, -1))
    earlier = np.cumsum(valid) - valid  # valid values before t
    age = np.where(last >= 0, np.minimum(idx - last, cap), np.where(earlier >= cap, cap, np.nan))
    return np.where(valid, age.astype(np.float64), np.nan)


def _window_sum_exact(v: np.ndarray, k: int) -> np.ndarray:
    """Σ of the last k values of an integer-valued series with NaN (→ NaN), by exact cumulative counts."""
    isnan = np.isnan(v)
    vals = np.concatenate(([0.0], np.cumsum(np.where(isnan, 0.0, v))))
    nans = np.concatenate(([0], np.cumsum(isnan)))
    idx = np.arange(v.shape[0])
    lo = np.maximum(idx + 1 - k, 0)
    s = vals[idx + 1] - vals[lo]
    bad = (idx + 1 < k) | (nans[idx + 1] - nans[lo] > 0)
    return np.where(bad, np.nan, s)


def persistence(state: np.ndarray, k: int) -> np.ndarray:
    """Fraction of the previous k states equal to the current one (NaN if any of them or the current is NaN)."""
    n = state.shape[0]
    isnan = np.isnan(state)
    codes = np.where(isnan, 0, state).astype(np.int64)
    onehot = np.zeros((n + 1, int(codes.max()) + 1 if n else 1), dtype=np.int64)
    onehot[np.arange(1, n + 1), codes] = 1
    onehot[1:][isnan] = 0
    cs = np.cumsum(onehot, axis=0)
    nans = np.concatenate(([0], np.cumsum(isnan)))
    idx = np.arange(n)
    lo = np.maximum(idx - k, 0)
    same = cs[idx, codes] - cs[lo, codes]  # rows t-k .. t-1
    bad = isnan | (idx < k) | (nans[idx] - nans[lo] > 0)
    return np.where(bad, np.nan, same / k)
