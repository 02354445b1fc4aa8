"""statistics (stage extraction): distribution of the 1-bar log return r = ln(c_t / c_{t−1}) over recent bars."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl

from bqx.core.declaration import Column, Ctx, series
from bqx.core.registry import family
from bqx.kernels.rolling import EPS_SIGN, TIE_LOG, rolling_central_moments, rolling_mean, shift, snap_log
from bqx.kernels.rolling import rolling_autocorr
from bqx.kernels.window_stats import (
    divide, rolling_entropy, rolling_min_max, rolling_quantiles_mad, std_zero, window_mean_std,
)

DEFAULTS = {"window": 60, "std_windows": (15, 60, 240), "short": 15, "mom": 5, "bins": 10}

QUANTILES = (0.10, 0.25, 0.50, 0.75, 0.90)
SIGMA_ZERO = "σ ≤ 1e-9 · mean |r| or ≤ 1e-12 over the window (a constant window)"


def columns(p: Mapping[str, Any]) -> list[Column]:
    w, s, mom, bins = p["window"], p["short"], p["mom"], p["bins"]
    zero = f"zero std of r over L_{w} ({SIGMA_ZERO})"
    cols = [Column(f"stat_absmean_{w}", "continuous", w, f"mean of |r| over L_{w}")]
    cols += [Column(f"stat_std_{n}", "continuous", n, f"population std of r over L_{n}; exactly 0 on a constant window")
             for n in p["std_windows"]]
    cols += [
        Column(f"stat_skew_{w}", "continuous", w, f"m3 / m2^1.5 of r over L_{w} (biased central moments); NULL when {SIGMA_ZERO}",
               nullable_when=zero),
        Column(f"stat_kurt_{w}", "continuous", w, f"m4 / m2² − 3 of r over L_{w} (biased); NULL when {SIGMA_ZERO}",
               nullable_when=zero),
        Column(f"stat_min_{w}", "continuous", w, f"min of r over L_{w}"),
        Column(f"stat_max_{w}", "continuous", w, f"max of r over L_{w}"),
    ]
    cols += [Column(f"stat_q{round(q * 100)}_{w}", "continuous", w, f"{round(q * 100)} % quantile of r over L_{w}, linear interpolation")
             for q in QUANTILES]
    cols += [
        Column(f"stat_mad_{w}", "continuous", w, f"median of |r − median(r)| over L_{w} (unscaled)"),
        Column(f"stat_bpv_{w}", "continuous", w,
               f"sqrt((π/2) · mean over the {w - 1} consecutive pairs in L_{w} of |r_k|·|r_(k−1)|): bipower volatility"),
        Column("stat_jump", "continuous", w,
               f"|r_t| / stat_bpv_{w}; NULL when the bipower volatility is zero (≤ 1e-9 · mean |r| or ≤ 1e-12 over L_{w})",
               nullable_when=f"zero bipower volatility over L_{w}"),
        Column(f"stat_ret_z_{w}", "continuous", w, f"(r_t − mean(r)) / std(r) over L_{w}; NULL when {SIGMA_ZERO}",
               nullable_when=zero),
        Column(f"stat_autocorr_{w}", "continuous", w,
               f"lag-1 autocorrelation of r over L_{w} (Pearson over the {w - 1} consecutive pairs); NULL when either "
               "member series of the pairs has zero std (≤ 1e-9 · its mean |r| or ≤ 1e-12)",
               nullable_when=f"zero std of r among the pairs in L_{w}", bounded=True),
        Column(f"stat_entropy_{w}", "continuous", w,
               f"Shannon entropy (bits) of the histogram of r over L_{w} in {bins} equal bins over [min, max] "
               "(binned as numpy.histogram, the maximum in the last bin, but a value within 1e-9 below an interior edge is on it: "
               "stable comparisons); 0 when max − min ≤ 1e-12 · max(|min|, |max|)"),
        Column("stat_mom_1", "continuous", 1, "r_t = ln(c_t / c_(t−1)); exactly 0 when |r_t| ≤ 1e-9 (equal closes: stable comparisons; every column here uses this r)"),
        Column(f"stat_mom_{mom}", "continuous", mom, f"ln(c_t / c_(t−{mom})); exactly 0 when within 1e-9"),
        Column(f"stat_up_ratio_{w}", "continuous", w,
               f"fraction of r > 0 in L_{w}; a return counts as positive only when r > 1e-10 (the sign rule), "
               "so flat bars (r = 0) are not up", bounded=True),
        Column("stat_vol_ratio", "continuous", max(w, s), f"stat_std_{s} / stat_std_{w}; NULL when {SIGMA_ZERO}",
               nullable_when=zero),
    ]
    return cols


def _context(p: Mapping[str, Any]) -> int:
    return max(p["window"], *p["std_windows"], p["short"], p["mom"])


@family(name="statistics", stage="extraction", inputs=("bars",), columns=columns, params=DEFAULTS, context=_context)
def statistics(frame: pl.DataFrame, ctx: Ctx) -> pl.DataFrame:
    """Moments, quantiles, robust scales, entropy and autocorrelation of r over L_60 (and std over 15, 60, 240)."""
    p = ctx.params
    w, s, mom = int(p["window"]), int(p["short"]), int(p["mom"])
    c = frame["close"].to_numpy().astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = snap_log(np.log(c / shift(c, 1)))  # equal closes (within 1e-9 · c) give exactly 0
        mom_n = snap_log(np.log(c / shift(c, mom)))
    absr = np.abs(r)
    out: dict[str, np.ndarray] = {}

    stats = {n: window_mean_std(r, n) for n in sorted({*p["std_windows"], w, s})}
    main = stats[w]
    zero = std_zero(main["std"], main["mean_abs"], dimensionless=True)
    out[f"stat_absmean_{w}"] = main["mean_abs"]
    for n in p["std_windows"]:
        out[f"stat_std_{n}"] = stats[n]["std"]

    mom4 = rolling_central_moments(r, w)
    m2 = np.where(zero, np.nan, mom4[1])
    out[f"stat_skew_{w}"] = divide(mom4[2], m2 ** 1.5, zero)
    out[f"stat_kurt_{w}"] = divide(mom4[3], m2 * m2, zero) - 3.0
    out[f"stat_min_{w}"], out[f"stat_max_{w}"] = main["min"], main["max"]

    quantiles, out[f"stat_mad_{w}"] = rolling_quantiles_mad(r, w, QUANTILES)
    for q, row in zip(QUANTILES, quantiles):
        out[f"stat_q{round(q * 100)}_{w}"] = row

    pair_prod = absr * shift(absr, 1)
    _, hi = rolling_min_max(pair_prod, w - 1)
    bp_mean = np.where(hi == 0.0, 0.0, np.maximum(rolling_mean(pair_prod, w - 1), 0.0))
    bpv = np.sqrt(np.pi / 2.0 * bp_mean)
    out[f"stat_bpv_{w}"] = bpv
    out["stat_jump"] = divide(absr, bpv, std_zero(bpv, main["mean_abs"], dimensionless=True))

    out[f"stat_ret_z_{w}"] = divide(r - main["mean"], main["std"], zero)
    out[f"stat_autocorr_{w}"] = rolling_autocorr(r, w, dimensionless=True)
    out[f"stat_entropy_{w}"] = rolling_entropy(r, w, int(p["bins"]), TIE_LOG)
    out["stat_mom_1"] = r
    out[f"stat_mom_{mom}"] = mom_n

    up = np.where(np.isnan(r), np.nan, (r > EPS_SIGN).astype(np.float64))
    up_count = pl.Series(up, nan_to_null=True).rolling_sum(w).to_numpy().astype(np.float64)
    out[f"stat_up_ratio_{w}"] = up_count / w
    out["stat_vol_ratio"] = divide(stats[s]["std"], main["std"], zero)

    names = [col.name for col in columns(p)]
    return pl.DataFrame([series(name, np.asarray(out[name], dtype=np.float64)) for name in names])
