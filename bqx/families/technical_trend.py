"""technical, trend part (15 columns): MACD, ADX/DI/ADXR with FEATURES.md's NULL rules, SAR, EMA/SMA, Ichimoku lines."""

from __future__ import annotations

import numpy as np
import talib

from bqx.core.declaration import Column
from bqx.kernels.rolling import shift, snap_diff
from bqx.kernels.recursions import dmi
from bqx.kernels.technical import linreg_slope, sar, window_max, window_min

EPS = 1e-12  # FEATURES.md Numerics: the smoothed true range is zero when <= 1e-12 · x_t
TIE = 1e-9  # FEATURES.md Numerics, stable comparisons: values within 1e-9 · x_t are equal

TR_ZERO = "TA-Lib's smoothed true range (Wilder sum of TR over 14) ≤ 1e-12 · x_t"
SNAP = " (exactly 0 when the two prices are within 1e-9 · x_t: stable comparisons)"
STABLE = ("; the up and down moves compared with FEATURES.md's stable rule (within 1e-9 · x_t they are equal, and +DM "
          "counts only when up > down + ε and up > ε, −DM alike), so it differs from TA-Lib's (exact comparison) where "
          "a tie of quantised prices would let rounding noise pick a side")
ADX_NULL = ("before the first bar where the smoothed true range is > 1e-12 · x_t (a flat start); from that bar on "
            "TA-Lib's value, its zero-seeded start included")


def columns() -> list[Column]:
    return [
        Column("ti_macd", "level", 33, "TA-Lib MACD(12, 26, 9) macd line = EMA12 − EMA26 of x, rate-index units"),
        Column("ti_macd_signal", "level", 33, "TA-Lib MACD(12, 26, 9) signal = EMA9 of the macd line"),
        Column("ti_macd_hist", "level", 33, "TA-Lib MACD(12, 26, 9) histogram = macd − signal"),
        Column("ti_adx_14", "continuous", 27, "ADX(14) on xh, xl, x: TA-Lib's recurrence and seeding" + STABLE, ADX_NULL, bounded=True),
        Column("ti_plus_di_14", "continuous", 14, "+DI(14) on xh, xl, x: TA-Lib's PLUS_DI recurrence" + STABLE, TR_ZERO, bounded=True),
        Column("ti_minus_di_14", "continuous", 14, "−DI(14) on xh, xl, x: TA-Lib's MINUS_DI recurrence" + STABLE, TR_ZERO, bounded=True),
        Column("ti_adxr_14", "continuous", 40, "ADXR(14) = (ADX_t + ADX_(t−13)) / 2 of ti_adx_14 (TA-Lib's ADXR" + STABLE[1:] + ")",
               "ti_adx_14 is NULL at t or t−13 (" + ADX_NULL + ")", bounded=True),
        Column("ti_sar_dist", "continuous", 1,
               "(x − SAR)/x, SAR(0.02, 0.2) on xh, xl by TA-Lib's recurrence with stable comparisons (within 1e-9 · x_t "
               "equal): a long reverses when low ≤ SAR + ε (touching reverses, as in TA-Lib), a new extreme needs "
               "high > EP + ε, the start is short only if bar 1's −DM counts; differs from TA-Lib's where a tie of quantised "
               "prices decides; path dependent, converged within the family's context"),
        Column("ti_ema20_dist", "continuous", 19, "(x − EMA20)/x, TA-Lib EMA seeded with the SMA of the first 20 values"),
        Column("ti_ema50_dist", "continuous", 49, "(x − EMA50)/x, TA-Lib EMA seeded with the SMA of the first 50 values"),
        Column("ti_sma20_slope", "continuous", 20, "(SMA20(t) − SMA20(t−1)) / x_t = (x_t − x_(t−20)) / (20 · x_t)" + SNAP),
        Column("ti_sma50_slope", "continuous", 50, "(SMA50(t) − SMA50(t−1)) / x_t = (x_t − x_(t−50)) / (50 · x_t)" + SNAP),
        Column("ti_tenkan_dist", "continuous", 8, "(x − MIDPRICE9)/x, MIDPRICE9 = (max xh + min xl)/2 over L_9" + SNAP),
        Column("ti_kijun_dist", "continuous", 25, "(x − MIDPRICE26)/x, MIDPRICE26 = (max xh + min xl)/2 over L_26" + SNAP),
        Column("ti_linreg_slope_14", "level", 13, "TA-Lib LINEARREG_SLOPE(14) of x: OLS slope per bar, rate-index units"),
    ]


def compute(x: np.ndarray, xh: np.ndarray, xl: np.ndarray, ema20: np.ndarray) -> dict[str, np.ndarray]:
    """The 15 trend columns; ema20 = TA-Lib EMA(x, 20)."""
    out: dict[str, np.ndarray] = {}
    macd, signal, hist = talib.MACD(x, 12, 26, 9)
    out["ti_macd"], out["ti_macd_signal"], out["ti_macd_hist"] = macd, signal, hist

    # PLUS_DI, MINUS_DI, ADX, ADXR: TA-Lib's ADX redone in one pass, stable comparisons and NULL rules inside
    (out["ti_plus_di_14"], out["ti_minus_di_14"], out["ti_adx_14"], out["ti_adxr_14"]) = dmi(xh, xl, x, 14, EPS, TIE)

    out["ti_sar_dist"] = (x - sar(xh, xl, x, 0.02, 0.2, TIE)) / x
    for n, ema in ((20, ema20), (50, talib.EMA(x, 50))):
        out[f"ti_ema{n}_dist"] = (x - ema) / x
        out[f"ti_sma{n}_slope"] = snap_diff(x - shift(x, n), x) / (n * x)
    for name, n in (("ti_tenkan_dist", 9), ("ti_kijun_dist", 26)):  # TA-Lib's MIDPRICE = (MAX + MIN) / 2
        out[name] = snap_diff(x - (window_max(xh, n) + window_min(xl, n)) / 2.0, x) / x
    out["ti_linreg_slope_14"] = linreg_slope(x, 14)
    return out
