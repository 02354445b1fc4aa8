"""technical, momentum part (15 columns): TA-Lib oscillators with FEATURES.md's NULL rules, Chande CMO, MFI.

Zero denominators follow FEATURES.md Numerics: a range, sum or Wilder average d of rate-index
quantities is zero when |d| <= 1e-12 · x_t (x ≈ 100, the magnitude of the prices it comes from).
"""

from __future__ import annotations

import numpy as np
import talib

from bqx.core.declaration import Column
from bqx.kernels.rolling import scale_is_zero, snap_diff
from bqx.kernels.recursions import cci, cmo, mfi, rsi, stochrsi_k, window_any, window_mean
from bqx.kernels.technical import aroonosc, stoch

EPS = 1e-12  # FEATURES.md Numerics: a range, mean, sum, ATR or EMA is zero when <= 1e-12 · its inputs' magnitude
TIE = 1e-9  # FEATURES.md Numerics, stable comparisons: values within 1e-9 · x_t are equal

ZERO = "≤ 1e-12 · x_t"
RSI_NULL = f"average gain + average loss (TA-Lib's Wilder averages of |Δx|) {ZERO}: TA-Lib returns 0 there"
RANGE14 = f"the window's high − low {ZERO}"


def columns() -> list[Column]:
    return [
        Column("ti_rsi_14", "continuous", 14, "TA-Lib RSI(14) of x", RSI_NULL, bounded=True),
        Column("ti_rsi_21", "continuous", 21, "TA-Lib RSI(21) of x", RSI_NULL, bounded=True),
        Column("ti_stoch_k", "continuous", 17, "TA-Lib STOCH(14, 3, SMA, 3, SMA) slowk on xh, xl, x",
               f"any of the 3 fast-%K windows feeding it has {RANGE14}", bounded=True),
        Column("ti_stoch_d", "continuous", 17, "TA-Lib STOCH(14, 3, SMA, 3, SMA) slowd on xh, xl, x",
               f"any of the 5 fast-%K windows feeding it has {RANGE14}", bounded=True),
        Column("ti_stochrsi_k", "continuous", 20,
               "TA-Lib STOCHRSI(14, 5, 3, SMA) fastk = 100 · (RSI − min RSI) / (max RSI − min RSI) over 5 bars; "
               "warm-up 20 because TA-Lib aligns fastk with fastd",
               "RSI's range over the 5 bars ≤ 1e-9, or any of the 5 RSI values NULL", bounded=True),
        Column("ti_willr_14", "continuous", 13, "TA-Lib WILLR(14) on xh, xl, x", RANGE14, bounded=True),
        Column("ti_cci_20", "continuous", 19, "TA-Lib CCI(20) on xh, xl, x",
               "the mean deviation of the typical price over L_20 ≤ 1e-12 · tp_t (TA-Lib returns 0 or rounding noise)"),
        Column("ti_roc_12", "continuous", 12, "TA-Lib ROC(12) = 100 · (x_t / x_(t−12) − 1)"),
        Column("ti_mom_10", "level", 10, "TA-Lib MOM(10) = x_t − x_(t−10), rate-index units (exactly 0 when the two prices are within 1e-9 · x_t: stable comparisons)"),
        Column("ti_cmo_14", "continuous", 14,
               "Chande's original CMO: 100 · (Σ up − Σ down) / (Σ up + Σ down) over the 14 changes of x in L_15 "
               "(= 100 · (x_t − x_(t−14)) / Σ|Δx|); not TA-Lib's CMO (a rescaled RSI)",
               f"Σ up + Σ down {ZERO}", bounded=True),
        Column("ti_mfi_14", "continuous", 14,
               "MFI(14) as TA-Lib defines it: 100 · positive / (positive + negative) money flow over the 14 flows in L_15, "
               "money flow = tp · v, tp = (xh + xl + x)/3, positive when tp rises, negative when it falls; computed by bqx "
               "(TA-Lib returns 0 for a window without flow); stable comparison: positive only when tp_t > tp_(t−1) + ε, "
               "negative only when tp_t < tp_(t−1) − ε, ε = 1e-9 · x_t, so it differs from TA-Lib's (an exact comparison "
               "before 0.8, a dead zone of 1e-14 · (|tp_t| + |tp_(t−1)|) since) where equal typical prices of quantised bars "
               "would let rounding noise pick a side",
               "the pair has no volume, or the money-flow sum ≤ 1e-12 · tp_t · Σ v over the window", bounded=True),
        Column("ti_ultosc", "continuous", 28, "TA-Lib ULTOSC(7, 14, 28) on xh, xl, x",
               f"the true-range sum over 7 bars (hence any of its three sums) {ZERO}", bounded=True),
        Column("ti_trix_15", "continuous", 43, "TA-Lib TRIX(15): 1-bar % change of the triple EMA(15) of x"),
        Column("ti_ppo", "continuous", 25, "TA-Lib PPO(12, 26, SMA) = 100 · (SMA12 − SMA26) / SMA26 of x"),
        Column("ti_aroonosc_14", "continuous", 14, "AROONOSC(14) on xh, xl: (100/14) · (bars since the lowest low − bars since the highest high) over L_15 "
               "as TA-Lib (ties: the most recent), with highs within 1e-9 · x_t of the maximum tied (lows alike); differs "
               "from TA-Lib's where a quantised tie within noise decides", bounded=True),
    ]


def compute(x: np.ndarray, xh: np.ndarray, xl: np.ndarray, v: np.ndarray, has_volume: bool,
            hh14: np.ndarray, ll14: np.ndarray, tr: np.ndarray) -> dict[str, np.ndarray]:
    """The 15 momentum columns; hh14/ll14 = TA-Lib MAX(xh, 14)/MIN(xl, 14), tr = TA-Lib TRANGE."""
    out: dict[str, np.ndarray] = {}
    nan = np.nan
    for n in (14, 21):
        out[f"ti_rsi_{n}"] = rsi(x, n, EPS)  # TA-Lib's RSI, NaN where TA-Lib would return 0 for 0/0

    flat14 = scale_is_zero(hh14 - ll14, np.abs(hh14))  # NaN compares False: warm-up stays TA-Lib NaN
    slowk, slowd = stoch(hh14, ll14, x, 14, 3, 3)  # TA-Lib's STOCH(14, 3, SMA, 3, SMA) from the same MAX/MIN
    out["ti_stoch_k"] = np.where(window_any(flat14, 3), nan, slowk)
    out["ti_stoch_d"] = np.where(window_any(flat14, 5), nan, slowd)

    # TA-Lib's STOCHRSI fastk from our RSI (equal to TA-Lib's wherever none of the 5 values is NULL)
    out["ti_stochrsi_k"] = stochrsi_k(out["ti_rsi_14"], 5, 20, 1e-9)

    with np.errstate(divide="ignore", invalid="ignore"):  # TA-Lib's WILLR from the same MAX/MIN, operation for operation
        out["ti_willr_14"] = np.where(flat14, nan, (hh14 - x) / ((hh14 - ll14) / -100.0))

    tp = (xh + xl + x) / 3.0
    out["ti_cci_20"] = cci(tp, 20, EPS)  # TA-Lib's CCI, NaN where the mean deviation is zero

    out["ti_roc_12"] = talib.ROC(x, 12)
    out["ti_mom_10"] = snap_diff(talib.MOM(x, 10), x)  # equal closes (within 1e-9 · x): exactly 0

    out["ti_cmo_14"] = cmo(x, 14, EPS)
    out["ti_mfi_14"] = mfi(tp, v, x, 14, EPS, TIE) if has_volume else np.full(x.shape[0], nan)
    tr7 = 7.0 * window_mean(tr, 7)
    out["ti_ultosc"] = np.where(scale_is_zero(tr7, x), nan, talib.ULTOSC(xh, xl, x, 7, 14, 28))
    out["ti_trix_15"] = talib.TRIX(x, 15)
    out["ti_ppo"] = talib.PPO(x, 12, 26, 0)
    out["ti_aroonosc_14"] = aroonosc(xh, xl, x, 14, TIE)
    return out

