"""technical, volatility part (15 columns): ATR family, range estimators, Keltner, Donchian, Chaikin, ulcer, mass."""

from __future__ import annotations

import numpy as np
import talib

from bqx.core.declaration import Column
from bqx.kernels.rolling import rolling_sum
from bqx.kernels.recursions import range_vol
from bqx.kernels.technical import atr, volatility, window_max, window_min

LN2 = np.log(2.0)
ZERO = "≤ 1e-12 · x_t"
EPS = 1e-12  # FEATURES.md Numerics: a range, mean, sum, ATR or EMA is zero when <= 1e-12 · its inputs' magnitude


def columns() -> list[Column]:
    return [
        Column("ti_atr_14", "level", 14, "TA-Lib ATR(14) on xh, xl, x, rate-index units"),
        Column("ti_natr_14", "continuous", 14, "TA-Lib NATR(14) = 100 · ATR14 / x"),
        Column("ti_trange", "level", 1, "TA-Lib TRANGE = max(xh, x_(t−1)) − min(xl, x_(t−1)); 0 when ≤ 1e-9 · x_t (its prices equal: stable comparisons)"),
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


def compute(x: np.ndarray, xo: np.ndarray, xh: np.ndarray, xl: np.ndarray, tr: np.ndarray,
            ema20: np.ndarray) -> dict[str, np.ndarray]:
    """The 15 volatility columns; tr = TA-Lib TRANGE, ema20 = TA-Lib EMA(x, 20).

    The TA-Lib building blocks (ATR from one TR series, EMA, MAX, MIN) come first; one numba loop then
    forms every column, with the zero-denominator rule |d| <= 1e-12 · x (FEATURES.md Numerics)."""
    hl2 = np.log(xh / xl) ** 2
    co2 = np.log(x / xo) ** 2
    park, gk = range_vol(hl2, co2, 20, 2.0 * LN2 - 1.0)
    rng = xh - xl
    e1 = talib.EMA(rng, 9)
    atr14 = atr(tr, 14)
    cols = volatility(x, atr(tr, 10), atr14, atr(tr, 100), park, gk, ema20, window_max(xh, 20), window_min(xl, 20),
                      talib.EMA(rng, 10), window_max(x, 14), e1, talib.EMA(e1, 9), LN2, EPS)
    names = [c.name for c in columns() if c.name not in ("ti_atr_14", "ti_trange")]
    out = dict(zip(names, cols))
    out["ti_atr_14"], out["ti_trange"] = atr14, tr
    out["ti_mass_25"] = rolling_sum(out["ti_mass_25"], 25)
    return out
