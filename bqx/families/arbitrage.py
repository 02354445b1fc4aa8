"""arbitrage (stage 2.4, cross-pair): triangle residuals on mid closes and executable round trips.

For c1 < c2 < c3 in priority order, ε_T = (ln c1c2 + ln c2c3 − ln c1c3) · 10^4, evaluated only at
union timestamps where all three pairs have a bar of their own.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl

from bqx.kernels.aligned import align, ts_series, warn_coverage
from bqx.core.declaration import Column, Ctx, series
from bqx.core.registry import family
from bqx.kernels.rolling import EPS_REL_STD, rolling_mean, rolling_mean_std
from bqx.universe import TRIANGLES

DEFAULTS = {"threshold_bps": 0.0, "z_window": 240}
BPS = 1e4
EPS_STD_BPS = 1e-12 * BPS  # 1e-12 in natural (log) units, the dimensionless std rule, expressed in bps


def columns(p: Mapping[str, Any]) -> list[Column]:
    w = p["z_window"]
    none = ("none of the pair's 6 triangles is evaluated at this bar (a pair of the triangle has no bar of its own "
            "at this timestamp or is absent from the run)")
    return [
        Column("arb_resid_bps", "continuous", 0,
               "mean over the pair's triangles evaluated at this bar of ω·ε_T, ε_T = (ln c1c2 + ln c2c3 − ln c1c3)·1e4 "
               "on mid closes, ω = +1 for c1c2 and c2c3, −1 for c1c3: the pair's price minus the implied one, in bps",
               nullable_when=none),
        Column(f"arb_resid_z_{w}", "continuous", w - 1,
               f"(arb_resid_bps − mean)/std over the pair's last {w} non-NULL arb_resid_bps values, t included; "
               f"std is zero when ≤ 1e-9·mean|v| or ≤ 1e-8 bps (1e-12 in log units)",
               nullable_when=f"arb_resid_bps is NULL, fewer than {w} earlier non-NULL values exist, or the std is zero"),
        Column("arb_exec_bps", "continuous", 0,
               "max over the pair's triangles evaluated at this bar and both directions of the executable round trips "
               "A = ln bid(c1c2) + ln bid(c2c3) − ln ask(c1c3), B = ln bid(c1c3) − ln ask(c2c3) − ln ask(c1c2), in bps; "
               "triangles whose bid/ask are missing are left out (max over the available ones)",
               nullable_when=f"no bid/ask for any evaluated triangle, or {none}"),
        Column("arb_opportunity", "binary", 0, "1 if arb_exec_bps > threshold_bps (default 0) else 0",
               nullable_when="arb_exec_bps is NULL"),
    ]


def residuals(frame: pl.DataFrame, ctx: Ctx) -> tuple[Any, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The aligned timeline, ε_T per triangle (bps) and the best round trip per triangle (bps), both (T,)."""
    al = align(frame)
    mid = np.log(al.own_values(frame, "close"))
    with np.errstate(divide="ignore", invalid="ignore"):
        bid = np.log(al.own_values(frame, "bid_close")) if "bid_close" in frame.columns else np.full_like(mid, np.nan)
        ask = np.log(al.own_values(frame, "ask_close")) if "ask_close" in frame.columns else np.full_like(mid, np.nan)
    for j, name in enumerate(al.pairs):
        info = ctx.pairs.get(name)
        if info is not None and not info.has_bidask:
            bid[:, j] = np.nan
            ask[:, j] = np.nan
    eps: dict[str, np.ndarray] = {}
    best: dict[str, np.ndarray] = {}
    for tri in TRIANGLES:
        cols = [al.col(p) for p in tri.pairs]
        if any(c is None for c in cols):
            continue
        i12, i23, i13 = cols
        eps[tri.name] = (mid[:, i12] + mid[:, i23] - mid[:, i13]) * BPS
        a = (bid[:, i12] + bid[:, i23] - ask[:, i13]) * BPS
        b = (bid[:, i13] - ask[:, i23] - ask[:, i12]) * BPS
        with np.errstate(invalid="ignore"):
            best[tri.name] = np.where(np.isnan(eps[tri.name]), np.nan, np.fmax(a, b))
    return al, eps, best


def _zscore_non_null(v: np.ndarray, w: int) -> np.ndarray:
    """(v − mean)/std over the last w non-NaN values (t included); NaN where v is NaN."""
    out = np.full_like(v, np.nan)
    keep = np.flatnonzero(~np.isnan(v))
    if keep.size < w:
        return out
    x = v[keep]
    mean, std = rolling_mean_std(x, w)
    mean_abs = rolling_mean(np.abs(x), w)
    zero = (std <= EPS_REL_STD * mean_abs) | (std <= EPS_STD_BPS)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[keep] = np.where(zero, np.nan, (x - mean) / std)
    return out


@family(name="arbitrage", stage="arbitrage", inputs=("bars",), columns=columns, params=DEFAULTS,
        context=lambda p: 2 * p["z_window"] + 10, cross_pair=True, tables=("triangles",))
def arbitrage(frame: pl.DataFrame, ctx: Ctx) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """Per pair: mean ω·ε_T over its evaluated triangles, its z-score, best executable round trip, flag."""
    w = int(ctx.params["z_window"])
    al, eps, best = residuals(frame, ctx)
    warn_coverage(al.pairs, "arbitrage", "triangles")
    p = len(al.pairs)
    total = np.zeros((al.n, p))
    count = np.zeros((al.n, p))
    top = np.full((al.n, p), np.nan)
    for tri in TRIANGLES:
        if tri.name not in eps:
            continue
        e, ok = eps[tri.name], ~np.isnan(eps[tri.name])
        for name in tri.pairs:
            j = al.col(name)
            total[:, j] += np.where(ok, tri.omega(name) * e, 0.0)
            count[:, j] += ok
            top[:, j] = np.fmax(top[:, j], best[tri.name])
    with np.errstate(invalid="ignore", divide="ignore"):
        resid = al.at_rows(np.where(count > 0, total / count, np.nan))
    z = np.full_like(resid, np.nan)
    for _, _, rows in al.segments():
        z[rows] = _zscore_non_null(resid[rows], w)
    exec_bps = al.at_rows(top)
    with np.errstate(invalid="ignore"):
        opportunity = np.where(np.isnan(exec_bps), np.nan, (exec_bps > float(ctx.params["threshold_bps"])) * 1.0)
    names = [c.name for c in columns(ctx.params)]
    cols = pl.DataFrame([series(n, v) for n, v in zip(names, (resid, z, exec_bps, opportunity))])
    dtype = frame.schema["ts"]
    table = pl.DataFrame([ts_series(al, dtype),
                          *(series(f"tri_{t.name}", eps.get(t.name, np.full(al.n, np.nan))) for t in TRIANGLES)])
    return cols, {"triangles": table}
