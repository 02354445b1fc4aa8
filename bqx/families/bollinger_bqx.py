"""bollinger_bqx (stage 2.1.1): Bollinger bands of bqx_w15_return over the last n values."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl

from bqx.core.declaration import Column, Ctx, series
from bqx.core.registry import family
from bqx.kernels.rolling import rolling_mean, rolling_mean_std, safe_div, std_is_zero

SOURCE = "bqx_w15_return"
SOURCE_WARMUP = 15
DEFAULTS = {"windows": (20, 30, 60, 120), "k": 2.0}

_SIGMA0 = ("σ ≤ 1e-9 · mean |y| or σ ≤ 1e-12 over the window (y dimensionless), in which case σ is taken as exactly 0")


def columns(p: Mapping[str, Any]) -> list[Column]:
    ws, k = p["windows"], p["k"]
    y = f"y = {SOURCE}"
    cols: list[Column] = []
    for n in ws:
        warm = SOURCE_WARMUP + n - 1
        cols += [
            Column(f"bbq_mid_{n}", "continuous", warm, f"mean of y over the last {n} values; {y}"),
            Column(f"bbq_upper_{n}", "continuous", warm, f"bbq_mid_{n} + {k:g}σ, σ = population std of y over the last {n} values; {y}; {_SIGMA0}"),
            Column(f"bbq_lower_{n}", "continuous", warm, f"bbq_mid_{n} − {k:g}σ; {y}; {_SIGMA0}"),
            Column(f"bbq_width_{n}", "continuous", warm, f"upper − lower = {2 * k:g}σ over the last {n} values; {y}; 0 where {_SIGMA0}"),
            Column(f"bbq_pctb_{n}", "continuous", warm, f"(y − lower) / (upper − lower) over the last {n} values; {y}",
                   nullable_when=f"σ is zero: {_SIGMA0}", bounded=True),
        ]
    short, long = min(ws), max(ws)
    cols.append(Column("bbq_squeeze", "continuous", SOURCE_WARMUP + long - 1, f"bbq_width_{short} / bbq_width_{long}",
                       nullable_when=f"σ over the last {long} values is zero: {_SIGMA0}"))
    return cols


@family(name="bollinger_bqx", stage="bollinger_bqx", inputs=("bqx",), columns=columns, params=DEFAULTS,
        context=lambda p: max(p["windows"]) - 1)
def bollinger_bqx(frame: pl.DataFrame, ctx: Ctx) -> pl.DataFrame:
    """mid = mean, upper/lower = mid ± kσ, width = 2kσ, pctb = (y − lower)/(upper − lower) over L_n of y."""
    ws, k = ctx.params["windows"], float(ctx.params["k"])
    y = frame[SOURCE].cast(pl.Float64).fill_null(np.nan).to_numpy()
    out: dict[str, np.ndarray] = {}
    zero: dict[int, np.ndarray] = {}
    for n in ws:
        mid, sigma = rolling_mean_std(y, n)
        zero[n] = std_is_zero(sigma, rolling_mean(np.abs(y), n), dimensionless=True)
        sigma = np.where(zero[n], 0.0, sigma)
        upper, lower = mid + k * sigma, mid - k * sigma
        out[f"bbq_mid_{n}"] = mid
        out[f"bbq_upper_{n}"] = upper
        out[f"bbq_lower_{n}"] = lower
        out[f"bbq_width_{n}"] = 2.0 * k * sigma
        out[f"bbq_pctb_{n}"] = safe_div(y - lower, upper - lower, zero[n])
    short, long = min(ws), max(ws)
    out["bbq_squeeze"] = safe_div(out[f"bbq_width_{short}"], out[f"bbq_width_{long}"], zero[long])
    return pl.DataFrame([series(c.name, out[c.name]) for c in columns(ctx.params)])
