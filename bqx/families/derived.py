"""derived (stage 2.5): momentum alignment, trend strength, volatility regime and slope term from bqx and regression."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl

from bqx.core.declaration import Column, Ctx, series
from bqx.core.registry import family
from bqx.families.bqx import DEFAULTS as BQX_DEFAULTS
from bqx.families.bqx import columns as bqx_columns
from bqx.kernels.rolling import TIE_REL, sign_eps
from bqx.kernels.regression import EPS_SCALE, window_std_from_fit
from bqx.kernels.order_stats import trailing_order_stats

DEFAULTS = {
    "bqx_windows": (15, 30, 45, 60, 75),
    "reg_windows": (15, 30, 45, 60, 75, 90),
    "regime_window": 7200,
    "regime_quantiles": (1 / 3, 2 / 3),
    "mtf_windows": (15, 60),
}

def _bqx_warmup(name: str) -> int:
    return {c.name: c.warmup for c in bqx_columns(BQX_DEFAULTS)}[name]


def columns(p: Mapping[str, Any]) -> list[Column]:
    bw, rw, n = p["bqx_windows"], p["reg_windows"], p["regime_window"]
    q1, q2 = p["regime_quantiles"]
    fast, slow = p["mtf_windows"]
    short, long = min(rw), max(rw)
    return [
        Column("drv_momentum_alignment", "ordinal", max(bw),
               f"Σ over W in {tuple(bw)} of sign(bqx_wW_return), sign 0 when |v| ≤ 1e-10 ({-len(bw)} … {len(bw)})"),
        Column("drv_trend_strength", "continuous", max(rw) - 1,
               f"mean over W in {tuple(rw)} of sign(reg_idx_wW_a1) · reg_idx_wW_r2 (signed, in [−1, 1]); sign 0 when "
               "|a1| ≤ 1e-9 · std(x) over the window, std(x) recovered from rmse, lin_slope and a2 of the fit",
               nullable_when="any reg_idx_wW_r2 is NULL (a constant window)", bounded=True),
        Column("drv_volatility_regime", "ordinal", _bqx_warmup("bqx_agg_volatility") + n,
               f"0 if bqx_agg_volatility < the {q1:.4g} quantile of its previous {n} values (t excluded, linear "
               f"interpolation), 2 if > the {q2:.4g} quantile, else 1; within 1e-9 of a quantile counts as equal (stable comparisons)",
               nullable_when=f"any of the previous {n} values is NULL"),
        Column("drv_mtf_divergence", "ordinal", max(fast, slow),
               f"sign(bqx_w{fast}_return) − sign(bqx_w{slow}_return), sign 0 when |v| ≤ 1e-10 (−2 … 2)"),
        Column("drv_slope_term", "level", long - 1,
               f"reg_idx_w{short}_a1 / {short - 1} − reg_idx_w{long}_a1 / {long - 1}: per-bar fitted slopes at t, short minus long"),
    ]


def _col(frame: pl.DataFrame, name: str) -> np.ndarray:
    return frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy()


@family(name="derived", stage="derived", inputs=("bqx", "regression"), columns=columns, params=DEFAULTS,
        context=lambda p: p["regime_window"])
def derived(frame: pl.DataFrame, ctx: Ctx) -> pl.DataFrame:
    """Signs of momentum and fitted slopes, the trailing-tercile volatility regime and the slope term structure."""
    p = ctx.params
    bw, rw, n = p["bqx_windows"], p["reg_windows"], p["regime_window"]
    fast, slow = p["mtf_windows"]
    sgn = {w: sign_eps(_col(frame, f"bqx_w{w}_return")) for w in set(bw) | {fast, slow}}
    out = {"drv_momentum_alignment": np.sum([sgn[w] for w in bw], axis=0)}
    terms = []
    for w in rw:
        a1 = _col(frame, f"reg_idx_w{w}_a1")
        std = window_std_from_fit(w, _col(frame, f"reg_idx_w{w}_rmse"), _col(frame, f"reg_idx_w{w}_lin_slope"),
                                  _col(frame, f"reg_idx_w{w}_a2"))
        terms.append(sign_eps(a1, EPS_SCALE * std) * _col(frame, f"reg_idx_w{w}_r2"))
    out["drv_trend_strength"] = np.mean(terms, axis=0)
    vol = _col(frame, "bqx_agg_volatility")
    lo, hi = trailing_order_stats(vol, n, p["regime_quantiles"])[:2]
    regime = np.where(vol < lo - TIE_REL, 0.0, np.where(vol > hi + TIE_REL, 2.0, 1.0))  # stable comparisons
    out["drv_volatility_regime"] = np.where(np.isnan(lo) | np.isnan(vol), np.nan, regime)
    out["drv_mtf_divergence"] = sgn[fast] - sgn[slow]
    short, long = min(rw), max(rw)
    out["drv_slope_term"] = _col(frame, f"reg_idx_w{short}_a1") / (short - 1) - _col(frame, f"reg_idx_w{long}_a1") / (long - 1)
    return pl.DataFrame([series(c.name, out[c.name]) for c in columns(p)])
