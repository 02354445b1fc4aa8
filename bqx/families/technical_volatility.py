"""technical, volatility part (15 columns): ATR family, range estimators, Keltner, Donchian, Chaikin, ulcer, mass."""

from __future__ import annotations

import numpy as np
import talib

from bqx.families.base import Column
from bqx.families.kernels import rolling_sum, scale_is_zero, shift
from bqx.families.recursions import window_mean

LN2 = np.log(2.0)
ZERO = "≤ 1e-12 · x_t"


def columns() -> list[Column]:
    return [
        Column("ti_atr_14", "level", 14, "TA-Lib ATR(14) on xh, xl, x, rate-index units"),
        Column("ti_natr_14", "continuous", 14, "TA-Lib NATR(14) = 100 · ATR14 / x"),
        Column("ti_trange", "level", 1, "TA-Lib TRANGE = max(xh, x_(t−1)) − min(xl, x_(t−1))"),
        Column("ti_atr_ratio", "continuous", 100, "ATR(14) / ATR(100), both TA-Lib", f"ATR(100) {ZERO}"),
        Column("ti_parkinson_20", "continuous", 19, "sqrt(mean over L_20 of ln(xh/xl)² / (4 ln 2))"),
        Column("ti_gk_20", "continuous", 19,
               "Garman–Klass: sqrt(mean over L_20 of 0.5 ln(xh/xl)² − (2 ln 2 − 1) ln(x/xo)²)", "the mean is negative"),
        Column("ti_kc_upper_dist", "continuous", 19, "(upper − x)/x, Keltner upper = EMA20(x) + 2 · ATR10 (TA-Lib EMA, ATR)"),
        Column("ti_kc_lower_dist", "continuous", 19, "(x − lower)/x, Keltner lower = EMA20(x) − 2 · ATR10"),
        Column("ti_kc_pos", "continuous", 19, "(x − lower)/(upper − lower) of the Keltner channel (may leave [0, 1])",
               f"ATR10 {ZERO}"),
        Column("ti_dc_high_dist", "continuous", 19, "(max xh over L_20 − x)/x (Donchian)"),
        Column("ti_dc_low_dist", "continuous", 19, "(x − min xl over L_20)/x (Donchian)"),
        Column("ti_dc_pos", "continuous", 19, "(x − min xl)/(max xh − min xl) over L_20 (Donchian)",
               f"max xh − min xl {ZERO}", bounded=True),
        Column("ti_chaikin_vol_10", "continuous", 19,
               "100 · (E_t / E_(t−10) − 1), E = TA-Lib EMA10 of xh − xl", "E_(t−10) ≤ 1e-12 · x_(t−10)"),
        Column("ti_ulcer_14", "continuous", 26,
               "sqrt(mean over L_14 of d_k²), d_k = 100 · (x_k − max x over L_14(k)) / max x over L_14(k)"),
        Column("ti_mass_25", "continuous", 40,
               "Σ over L_25 of EMA9(xh − xl) / EMA9(EMA9(xh − xl)) (TA-Lib EMAs; the inner EMA seeds the outer one "
               "from its first 9 values)", f"EMA9(EMA9(xh − xl)) {ZERO} at any bar of the window"),
    ]


def compute(x: np.ndarray, xo: np.ndarray, xh: np.ndarray, xl: np.ndarray, tr: np.ndarray) -> dict[str, np.ndarray]:
    """The 15 volatility columns; tr = TA-Lib TRANGE."""
    out: dict[str, np.ndarray] = {}
    nan = np.nan
    atr14 = talib.ATR(xh, xl, x, 14)
    atr100 = talib.ATR(xh, xl, x, 100)
    out["ti_atr_14"] = atr14
    out["ti_natr_14"] = talib.NATR(xh, xl, x, 14)
    out["ti_trange"] = tr
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ti_atr_ratio"] = np.where(scale_is_zero(atr100, x), nan, atr14 / atr100)

    hl2 = np.log(xh / xl) ** 2
    co2 = np.log(x / xo) ** 2
    out["ti_parkinson_20"] = np.sqrt(window_mean(hl2, 20) / (4.0 * LN2))
    gk = window_mean(0.5 * hl2 - (2.0 * LN2 - 1.0) * co2, 20)
    out["ti_gk_20"] = np.sqrt(np.where(gk < 0.0, nan, gk))

    ema20 = talib.EMA(x, 20)
    atr10 = talib.ATR(xh, xl, x, 10)
    upper, lower = ema20 + 2.0 * atr10, ema20 - 2.0 * atr10
    out["ti_kc_upper_dist"] = (upper - x) / x
    out["ti_kc_lower_dist"] = (x - lower) / x
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ti_kc_pos"] = np.where(scale_is_zero(atr10, x), nan, (x - lower) / (upper - lower))

    hh, ll = talib.MAX(xh, 20), talib.MIN(xl, 20)
    out["ti_dc_high_dist"] = (hh - x) / x
    out["ti_dc_low_dist"] = (x - ll) / x
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ti_dc_pos"] = np.where(scale_is_zero(hh - ll, x), nan, (x - ll) / (hh - ll))

    rng = xh - xl
    e10 = talib.EMA(rng, 10)
    e10_prev, x_prev = shift(e10, 10), shift(x, 10)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ti_chaikin_vol_10"] = np.where(scale_is_zero(e10_prev, x_prev), nan, 100.0 * (e10 / e10_prev - 1.0))

    mx = talib.MAX(x, 14)
    d = 100.0 * (x - mx) / mx
    out["ti_ulcer_14"] = np.sqrt(window_mean(d * d, 14))

    e1 = talib.EMA(rng, 9)
    e2 = talib.EMA(e1, 9)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(scale_is_zero(e2, x), nan, e1 / e2)
    out["ti_mass_25"] = rolling_sum(ratio, 25)
    return out
