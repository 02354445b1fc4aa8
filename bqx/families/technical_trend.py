"""technical, trend part (15 columns): MACD, ADX/DI/ADXR with FEATURES.md's NULL rules, SAR, EMA/SMA, Ichimoku lines."""

from __future__ import annotations

import numpy as np
import talib

from bqx.families.base import Column
from bqx.families.kernels import scale_is_zero, shift
from bqx.families.recursions import wilder_sum

TR_ZERO = "TA-Lib's smoothed true range (Wilder sum of TR over 14) ≤ 1e-12 · x_t"
ADX_NULL = ("before the first bar where the smoothed true range is > 1e-12 · x_t (a flat start); from that bar on "
            "TA-Lib's value, its zero-seeded start included")


def columns() -> list[Column]:
    return [
        Column("ti_macd", "level", 33, "TA-Lib MACD(12, 26, 9) macd line = EMA12 − EMA26 of x, rate-index units"),
        Column("ti_macd_signal", "level", 33, "TA-Lib MACD(12, 26, 9) signal = EMA9 of the macd line"),
        Column("ti_macd_hist", "level", 33, "TA-Lib MACD(12, 26, 9) histogram = macd − signal"),
        Column("ti_adx_14", "continuous", 27, "TA-Lib ADX(14) on xh, xl, x", ADX_NULL, bounded=True),
        Column("ti_plus_di_14", "continuous", 14, "TA-Lib PLUS_DI(14) on xh, xl, x", TR_ZERO, bounded=True),
        Column("ti_minus_di_14", "continuous", 14, "TA-Lib MINUS_DI(14) on xh, xl, x", TR_ZERO, bounded=True),
        Column("ti_adxr_14", "continuous", 40, "TA-Lib ADXR(14) = (ADX_t + ADX_(t−13)) / 2",
               "ti_adx_14 is NULL at t or t−13 (" + ADX_NULL + ")", bounded=True),
        Column("ti_sar_dist", "continuous", 1,
               "(x − SAR)/x, TA-Lib SAR(0.02, 0.2) on xh, xl; path dependent, converged within the family's context"),
        Column("ti_ema20_dist", "continuous", 19, "(x − EMA20)/x, TA-Lib EMA seeded with the SMA of the first 20 values"),
        Column("ti_ema50_dist", "continuous", 49, "(x − EMA50)/x, TA-Lib EMA seeded with the SMA of the first 50 values"),
        Column("ti_sma20_slope", "continuous", 20, "(SMA20(t) − SMA20(t−1)) / x_t = (x_t − x_(t−20)) / (20 · x_t)"),
        Column("ti_sma50_slope", "continuous", 50, "(SMA50(t) − SMA50(t−1)) / x_t = (x_t − x_(t−50)) / (50 · x_t)"),
        Column("ti_tenkan_dist", "continuous", 8, "(x − MIDPRICE9)/x, MIDPRICE9 = (max xh + min xl)/2 over L_9"),
        Column("ti_kijun_dist", "continuous", 25, "(x − MIDPRICE26)/x, MIDPRICE26 = (max xh + min xl)/2 over L_26"),
        Column("ti_linreg_slope_14", "level", 13, "TA-Lib LINEARREG_SLOPE(14) of x: OLS slope per bar, rate-index units"),
    ]


def compute(x: np.ndarray, xh: np.ndarray, xl: np.ndarray, tr: np.ndarray) -> dict[str, np.ndarray]:
    """The 15 trend columns; tr = TA-Lib TRANGE (NaN on the first row)."""
    out: dict[str, np.ndarray] = {}
    nan = np.nan
    macd, signal, hist = talib.MACD(x, 12, 26, 9)
    out["ti_macd"], out["ti_macd_signal"], out["ti_macd_hist"] = macd, signal, hist

    str14 = wilder_sum(tr, 14, 1)  # TA-Lib's prevTR, output rows from 14 on
    tr_zero = scale_is_zero(str14, x)
    positive = np.flatnonzero(str14 > 1e-12 * x)
    first = int(positive[0]) if positive.size else x.shape[0]
    started = np.arange(x.shape[0]) >= first
    out["ti_plus_di_14"] = np.where(tr_zero, nan, talib.PLUS_DI(xh, xl, x, 14))
    out["ti_minus_di_14"] = np.where(tr_zero, nan, talib.MINUS_DI(xh, xl, x, 14))
    adx = np.where(started, talib.ADX(xh, xl, x, 14), nan)
    out["ti_adx_14"] = adx
    out["ti_adxr_14"] = np.where(np.isnan(shift(adx, 13)) | np.isnan(adx), nan, talib.ADXR(xh, xl, x, 14))

    out["ti_sar_dist"] = (x - talib.SAR(xh, xl, 0.02, 0.2)) / x
    for n in (20, 50):
        out[f"ti_ema{n}_dist"] = (x - talib.EMA(x, n)) / x
        out[f"ti_sma{n}_slope"] = (x - shift(x, n)) / (n * x)
    out["ti_tenkan_dist"] = (x - talib.MIDPRICE(xh, xl, 9)) / x
    out["ti_kijun_dist"] = (x - talib.MIDPRICE(xh, xl, 26)) / x
    out["ti_linreg_slope_14"] = talib.LINEARREG_SLOPE(x, 14)
    return out
