"""regression (stage 2.1.2): rolling quadratic and linear least-squares fits of x and of bqx_w15_return."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl

from bqx.core.declaration import Column, Ctx, series
from bqx.core.registry import family
from bqx.kernels.regression import METRICS, rolling_fits

#: domain -> (input column, warm-up of that column, dimensionless?)
DOMAINS: dict[str, tuple[str, int, bool]] = {
    "idx": ("rate_index", 0, False),
    "bqx": ("bqx_w15_return", 15, True),
}
DEFAULTS = {"windows": (15, 30, 45, 60, 75, 90), "domains": ("idx", "bqx")}

_FIT = "over L_{w}(t), u_k = (k − {w1})/{w1} ∈ [−1, 0], y ≈ a2·u² + a1·u + a0 (quadratic) and b1·u + b0 (linear)"
_STD0 = ("std(y) over the window is zero (≤ 1e-9 · mean |y|{abs}): a constant window")
_SCALE0 = "{scale} ≤ 1e-9 · std(y) over the window (a nearly exact fit) or std(y) zero"


def _metric_columns(d: str, w: int, warm: int, dimensionless: bool) -> list[Column]:
    unit = "continuous" if dimensionless else "level"
    fit = _FIT.format(w=w, w1=w - 1)
    std0 = _STD0.format(abs=", or ≤ 1e-12 for this dimensionless y" if dimensionless else "")
    spec = {
        "a2": (unit, "quadratic coefficient a2", None, False),
        "a1": (unit, "a1, the fitted slope at bar t (per unit u; per bar divide by W−1)", None, False),
        "a0": (unit, "a0, the fitted value at bar t", None, False),
        "r2": ("continuous", "1 − SSres/SStot of the quadratic fit, SSres clamped to [0, SStot]", std0, True),
        "rmse": (unit, "sqrt(SSres / W) of the quadratic fit; never NULL after warm-up (≈ 0 on a constant window)", None, False),
        "resid": (unit, "y_t − a0", None, False),
        "resid_z": ("continuous", "resid / rmse", _SCALE0.format(scale="rmse"), False),
        "lin_slope": (unit, "b1, slope of the linear fit (per unit u)", None, False),
        "lin_r2": ("continuous", "R² of the linear fit, clamped to [0, 1]", std0, True),
        "r2_gain": ("continuous", "r2 − lin_r2", std0, True),
        "forecast": (unit, f"a2·δ² + a1·δ + a0 with δ = 1/{w - 1}: the fitted curve one bar ahead", None, False),
        "vertex_u": ("continuous", "−a1 / (2·a2), the turning point in u units",
                     "|a2| ≤ 1e-9 · std(y) over the window, or std(y) zero", False),
        "lin_tstat": ("continuous", f"b1 / SE(b1), SE(b1)² = (SSres_lin / {w - 2}) / Σ(u_k − ū)²",
                      _SCALE0.format(scale="the linear fit's rms sqrt(SSres_lin / W)"), False),
        "range_pos": ("continuous", "(y_t − min) / (max − min) over the window",
                      "max − min ≤ 1e-12 · max(|max|, |min|) (a flat window)", True),
        "snr": ("continuous", "a1 / rmse", _SCALE0.format(scale="rmse"), False),
    }
    cols = []
    for m in METRICS:
        kind, text, null, bounded = spec[m]
        cols.append(Column(f"reg_{d}_w{w}_{m}", kind, warm + w - 1, f"{text}; {fit}", nullable_when=null, bounded=bounded))
    return cols


def columns(p: Mapping[str, Any]) -> list[Column]:
    cols: list[Column] = []
    for d in p["domains"]:
        src, warm, dimensionless = DOMAINS[d]
        for w in p["windows"]:
            cols += _metric_columns(d, w, warm, dimensionless)
    return cols


@family(name="regression", stage="regression", inputs=("rate_index", "bqx"), columns=columns, params=DEFAULTS,
        context=lambda p: max(p["windows"]) - 1)
def regression(frame: pl.DataFrame, ctx: Ctx) -> pl.DataFrame:
    """Per window W and domain d, least-squares fits over L_W(t), computed as fixed filters on centred windows."""
    out: list[pl.Series] = []
    for d in ctx.params["domains"]:
        src, _, dimensionless = DOMAINS[d]
        y = frame[src].cast(pl.Float64).fill_null(np.nan).to_numpy()
        for w in ctx.params["windows"]:
            fits = rolling_fits(y, w, dimensionless=dimensionless)
            out += [series(f"reg_{d}_w{w}_{m}", fits[j]) for j, m in enumerate(METRICS)]
    return pl.DataFrame(out)
