"""fit_quality (stage 2.8): how well, how consistently and how stably the rolling fits describe x and bqx."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl

from bqx.core.declaration import Column, Ctx, series
from bqx.core.registry import family
from bqx.kernels.rolling import rolling_mean, rolling_std, shift
from bqx.families.regression import DOMAINS
from bqx.kernels.rolling import rolling_autocorr

DEFAULTS = {"windows": (15, 30, 45, 60, 75, 90), "domains": ("idx", "bqx"), "ref_window": 60, "span": 60,
            "tie_tol": 1e-9}

_RMSE0 = ("rmse_w{w}{at} is zero: ≤ 1e-9 · std(y) over its window or std(y) zero (exactly where "
          "reg_{d}_w{w}_resid_z{at} is NULL)")


def columns(p: Mapping[str, Any]) -> list[Column]:
    ws = tuple(sorted(p["windows"]))
    ref, span = p["ref_window"], p["span"]
    short, long = ws[0], ws[-1]
    others = len(ws) - 1
    cols: list[Column] = []
    for d in p["domains"]:
        src, yw, dimensionless = DOMAINS[d]
        full = yw + long - 1  # warm-up of the longest fit
        rw = yw + ref - 1  # warm-up of the reference fit
        r2s = f"reg_{d}_wW_r2 over W in {ws}"
        any_null = f"any reg_{d}_wW_r2 is NULL (a constant window)"
        cols += [
            Column(f"fq_{d}_r2_mean", "continuous", full, f"mean of {r2s}", any_null, bounded=True),
            Column(f"fq_{d}_r2_std", "continuous", full, f"population std of {r2s}", any_null, bounded=True),
            Column(f"fq_{d}_r2_slope", "continuous", full, f"OLS slope of {r2s} against ln W", any_null, bounded=True),
            Column(f"fq_{d}_best_window", "ordinal", full,
                   f"the W with the highest reg_{d}_wW_r2; r2 values within {p['tie_tol']:g} of the highest count as "
                   "tied and the smaller W wins", any_null),
            Column(f"fq_{d}_rmse_ratio", "continuous", full, f"reg_{d}_w{short}_rmse / reg_{d}_w{long}_rmse",
                   _RMSE0.format(w=long, at="", d=d)),
            Column(f"fq_{d}_fcst_err", "continuous", rw + 1,
                   f"|y_t − reg_{d}_w{ref}_forecast(t−1)| / reg_{d}_w{ref}_rmse(t−1), y = {src}: the realised error "
                   "of the last one-bar forecast", _RMSE0.format(w=ref, at="(t−1)", d=d)),
            Column(f"fq_{d}_resid_ac_{span}", "continuous", rw + span - 1,
                   f"lag-1 autocorrelation of reg_{d}_w{ref}_resid over the last {span} values",
                   f"the std of either side of the {span - 1} pairs is zero: ≤ 1e-9 · mean |y| over the last {span} "
                   f"bars, y = {src}" + (", or ≤ 1e-12 (dimensionless)" if dimensionless else ""), bounded=True),
            Column(f"fq_{d}_r2_stability_{span}", "continuous", rw + span - 1,
                   f"population std of reg_{d}_w{ref}_r2 over the last {span} values",
                   f"any reg_{d}_w{ref}_r2 in the window is NULL", bounded=True),
            Column(f"fq_{d}_rmse_trend_{span}", "continuous", rw + span,
                   f"reg_{d}_w{ref}_rmse(t) / reg_{d}_w{ref}_rmse(t−{span}) − 1", _RMSE0.format(w=ref, at=f"(t−{span})", d=d)),
            Column(f"fq_{d}_curv_agree", "continuous", full,
                   f"fraction of the other {others} windows whose a2 has the sign of reg_{d}_w{ref}_a2; sign in "
                   "{−1, 0, +1}, 0 when |a2| ≤ 1e-9 · std(y) over its window or std(y) zero (where vertex_u is NULL); "
                   "equal signs agree, 0 included", bounded=True),
        ]
    return cols


def _col(frame: pl.DataFrame, name: str) -> np.ndarray:
    return frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy()


def _domain(frame: pl.DataFrame, p: Mapping[str, Any], d: str) -> dict[str, np.ndarray]:
    src, _, dimensionless = DOMAINS[d]
    ws = tuple(sorted(p["windows"]))
    ref, span = p["ref_window"], p["span"]
    reg = lambda w, m: _col(frame, f"reg_{d}_w{w}_{m}")  # noqa: E731
    y = _col(frame, src)
    r2 = np.vstack([reg(w, "r2") for w in ws])
    out: dict[str, np.ndarray] = {}
    out["r2_mean"] = r2.mean(axis=0)
    out["r2_std"] = r2.std(axis=0)
    lw = np.log(np.asarray(ws, dtype=np.float64))
    lc = lw - lw.mean()
    out["r2_slope"] = (lc @ r2) / (lc @ lc)
    best = np.argmax(r2 >= np.nanmax(np.where(np.isnan(r2), -np.inf, r2), axis=0) - p["tie_tol"], axis=0)
    out["best_window"] = np.where(np.isnan(r2).any(axis=0), np.nan, np.asarray(ws, dtype=np.float64)[best])

    def rmse_or_nan(w: int) -> np.ndarray:
        """rmse where it may divide (NaN where it is zero by the Numerics rule, i.e. where resid_z is NULL)."""
        return np.where(np.isnan(reg(w, "resid_z")), np.nan, reg(w, "rmse"))

    out["rmse_ratio"] = reg(ws[0], "rmse") / rmse_or_nan(ws[-1])
    rmse_ref = rmse_or_nan(ref)
    out["fcst_err"] = np.abs(y - shift(reg(ref, "forecast"), 1)) / shift(rmse_ref, 1)
    out[f"resid_ac_{span}"] = rolling_autocorr(reg(ref, "resid"), span, dimensionless=dimensionless,
                                               scale=rolling_mean(np.abs(y), span))
    out[f"r2_stability_{span}"] = rolling_std(reg(ref, "r2"), span)
    out[f"rmse_trend_{span}"] = reg(ref, "rmse") / shift(rmse_ref, span) - 1.0
    signs = {}
    for w in ws:
        a2 = reg(w, "a2")
        signs[w] = np.where(np.isnan(a2), np.nan, np.where(np.isnan(reg(w, "vertex_u")), 0.0, np.sign(a2)))
    others = [w for w in ws if w != ref]
    agree = np.mean([signs[w] == signs[ref] for w in others], axis=0)
    out["curv_agree"] = np.where(np.isnan(np.vstack(list(signs.values()))).any(axis=0), np.nan, agree)
    return out


@family(name="fit_quality", stage="fit_quality", inputs=("regression", "rate_index", "bqx"), columns=columns,
        params=DEFAULTS, context=lambda p: p["span"])
def fit_quality(frame: pl.DataFrame, ctx: Ctx) -> pl.DataFrame:
    """Per domain: r2 across windows (mean, std, slope, best W), error ratios and trends, residual autocorrelation."""
    values: dict[str, np.ndarray] = {}
    for d in ctx.params["domains"]:
        values.update({f"fq_{d}_{k}": v for k, v in _domain(frame, ctx.params, d).items()})
    return pl.DataFrame([series(c.name, values[c.name]) for c in columns(ctx.params)])
