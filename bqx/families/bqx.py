"""bqx (stage 1.6): backward momentum of the rate index over the previous W bars (excluding t)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl

from bqx.core.declaration import Column, Ctx, series
from bqx.core.registry import family
from bqx.kernels.rolling import rolling_mean_std, shift, zero_small

DEFAULTS = {"windows": (15, 30, 45, 60, 75)}


def columns(p: Mapping[str, Any]) -> list[Column]:
    ws = p["windows"]
    longest = max(ws)
    cols = []
    for w in ws:
        cols += [
            Column(f"bqx_w{w}_return", "continuous", w,
                   f"Σ_(i=1..{w}) (x_(t-i) − x_t)/x_t over the previous {w} bars; positive after a fall (the past sits above the present)"),
            Column(f"bqx_w{w}_max", "level", w, f"max of x over the previous {w} bars (t excluded)"),
            Column(f"bqx_w{w}_min", "level", w, f"min of x over the previous {w} bars (t excluded)"),
            Column(f"bqx_w{w}_avg", "level", w, f"mean of x over the previous {w} bars (t excluded)"),
            Column(f"bqx_w{w}_std", "level", w, f"population std of x over the previous {w} bars (t excluded)"),
            Column(f"bqx_w{w}_endpoint", "continuous", w, f"(x_(t-{w}) − x_t)/x_t"),
        ]
    short = min(ws)
    cols += [
        Column("bqx_agg_mean", "continuous", longest, "mean over the windows of n_W = bqx_wW_return / W"),
        Column("bqx_agg_dispersion", "continuous", longest, "population std over the windows of n_W"),
        Column("bqx_agg_range", "continuous", longest, f"(bqx_w{longest}_max − bqx_w{longest}_min) / x_t"),
        Column("bqx_agg_volatility", "continuous", longest, f"bqx_w{longest}_std / x_t"),
        Column("bqx_agg_term", "continuous", longest, f"n_{short} − n_{longest}"),
        Column("bqx_agg_accel", "continuous", 2 * short, f"n_{short}(t) − n_{short}(t−{short})"),
        Column("bqx_agg_endpoint_mean", "continuous", longest, "mean over the windows of bqx_wW_endpoint"),
    ]
    return cols


@family(name="bqx", stage="bqx", inputs=("rate_index",), columns=columns, params=DEFAULTS,
        context=lambda p: 2 * max(p["windows"]))
def bqx(frame: pl.DataFrame, ctx: Ctx) -> pl.DataFrame:
    """bqx_wW_return = W · (mean of x over P_W(t) − x_t) / x_t, with window max, min, avg, std, endpoint."""
    ws = ctx.params["windows"]
    x = frame["rate_index"].to_numpy().astype(np.float64)
    prev = shift(x, 1)
    out: dict[str, np.ndarray] = {}
    n: dict[int, np.ndarray] = {}
    for w in ws:
        mean, std = rolling_mean_std(prev, w)
        ret = zero_small(w * (mean - x) / x)
        s = pl.Series(prev, nan_to_null=True)
        out[f"bqx_w{w}_return"] = ret
        out[f"bqx_w{w}_max"] = s.rolling_max(w).to_numpy()
        out[f"bqx_w{w}_min"] = s.rolling_min(w).to_numpy()
        out[f"bqx_w{w}_avg"] = mean
        out[f"bqx_w{w}_std"] = std
        out[f"bqx_w{w}_endpoint"] = zero_small((shift(x, w) - x) / x)
        n[w] = ret / w
    stack = np.vstack([n[w] for w in ws])
    longest, short = max(ws), min(ws)
    out["bqx_agg_mean"] = zero_small(stack.mean(axis=0))
    out["bqx_agg_dispersion"] = stack.std(axis=0)
    out["bqx_agg_range"] = (out[f"bqx_w{longest}_max"] - out[f"bqx_w{longest}_min"]) / x
    out["bqx_agg_volatility"] = out[f"bqx_w{longest}_std"] / x
    out["bqx_agg_term"] = zero_small(n[short] - n[longest])
    out["bqx_agg_accel"] = zero_small(n[short] - shift(n[short], short))
    out["bqx_agg_endpoint_mean"] = zero_small(np.vstack([out[f"bqx_w{w}_endpoint"] for w in ws]).mean(axis=0))
    names = [c.name for c in columns(ctx.params)]
    return pl.DataFrame([series(name, np.asarray(out[name], dtype=np.float64)) for name in names])
