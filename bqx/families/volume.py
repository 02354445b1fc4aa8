"""volume (stage extraction): the bar's volume against its recent level, trend, spread and link to returns."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl

from bqx.core.declaration import Column, Ctx, null_frame, series
from bqx.core.registry import family
from bqx.kernels.rolling import rolling_mean, shift
from bqx.kernels.rolling import rolling_corr
from bqx.kernels.window_stats import (
    divide, rolling_min_max, rolling_slope, scale_zero, window_mean_std,
)

DEFAULTS = {"ratio_windows": (15, 30, 60), "window": 60, "spike": 2.0}

NO_VOLUME = "the pair has no volume (e.g. HistData)"


def columns(p: Mapping[str, Any]) -> list[Column]:
    w, k = p["window"], p["spike"]
    mean_zero = f"{NO_VOLUME}, or zero mean volume over L_{{n}} (all volumes 0)"
    mz = mean_zero.format(n=w)
    cols = [
        Column(f"vol_ratio_{n}", "continuous", n - 1, f"v_t / mean(v over L_{n}); NULL when the mean is 0",
               nullable_when=mean_zero.format(n=n))
        for n in p["ratio_windows"]
    ]
    cols += [
        Column("vol_spike", "binary", w - 1, f"1 if v_t > {k:g} · mean(v over L_{w}) else 0; NULL when the mean is 0",
               nullable_when=mz),
        Column(f"vol_slope_{w}", "continuous", w - 1,
               f"OLS slope of v on bar position 0…{w - 1} over L_{w}, divided by mean(v over L_{w}); NULL when the mean is 0",
               nullable_when=mz),
        Column(f"vol_sum_{w}", "continuous", w - 1, f"Σ v over L_{w}", nullable_when=NO_VOLUME),
        Column(f"vol_wret_{w}", "continuous", w, f"Σ r·v / Σ v over L_{w}, r = ln(c_t/c_(t−1)); NULL when Σ v is 0",
               nullable_when=mz),
        Column(f"vol_absret_corr_{w}", "continuous", w,
               f"Pearson corr(v, |r|) over L_{w}; NULL when std(v) ≤ 1e-9 · mean v or std(|r|) ≤ 1e-9 · mean |r| "
               "or ≤ 1e-12 (constant volume or flat prices over the window)",
               nullable_when=f"{NO_VOLUME}, or zero std of v or of |r| over L_{w}", bounded=True),
        Column(f"vol_pos_{w}", "continuous", w - 1,
               f"(v_t − min) / (max − min) of v over L_{w}; NULL when max − min ≤ 1e-12 · max (constant volume)",
               nullable_when=f"{NO_VOLUME}, or constant volume over L_{w}", bounded=True),
        Column(f"vol_cv_{w}", "continuous", w - 1, f"std(v) / mean(v) over L_{w} (population std); NULL when the mean is 0",
               nullable_when=mz),
    ]
    return cols


def _context(p: Mapping[str, Any]) -> int:
    return max(p["window"], *p["ratio_windows"])


@family(name="volume", stage="extraction", inputs=("bars",), columns=columns, params=DEFAULTS, context=_context)
def volume(frame: pl.DataFrame, ctx: Ctx) -> pl.DataFrame:
    """vol_ratio_n = v_t / mean(v over L_n); spike, slope, sum, return-weighting, correlation, position, cv over L_60."""
    p = ctx.params
    names = [col.name for col in columns(p)]
    if ctx.pair is not None and not ctx.pair.has_volume:
        return null_frame(names, frame.height)
    w = int(p["window"])
    v = frame["volume"].to_numpy().astype(np.float64)
    c = frame["close"].to_numpy().astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.log(c / shift(c, 1))
    out: dict[str, np.ndarray] = {}
    for n in sorted({*p["ratio_windows"], w}):
        m = window_mean_std(v, n)
        zero = scale_zero(m["mean"], m["min"], m["max"])
        if n in p["ratio_windows"]:
            out[f"vol_ratio_{n}"] = divide(v, m["mean"], zero)
        if n == w:
            main, main_zero = m, zero
    mean = main["mean"]
    out["vol_spike"] = np.where(main_zero | np.isnan(mean), np.nan, (v > float(p["spike"]) * mean).astype(np.float64))
    out[f"vol_slope_{w}"] = divide(rolling_slope(v, w), mean, main_zero)
    out[f"vol_sum_{w}"] = mean * w
    rv = r * v
    _, rv_hi = rolling_min_max(np.abs(rv), w)
    rv_sum = np.where(rv_hi == 0.0, 0.0, rolling_mean(rv, w) * w)
    out[f"vol_wret_{w}"] = divide(rv_sum, mean * w, main_zero)
    out[f"vol_absret_corr_{w}"] = rolling_corr(v, np.abs(r), w, dimensionless=(False, True))
    rng = main["max"] - main["min"]
    out[f"vol_pos_{w}"] = divide(v - main["min"], rng, scale_zero(rng, main["min"], main["max"]))
    out[f"vol_cv_{w}"] = divide(main["std"], mean, main_zero)
    return pl.DataFrame([series(name, np.asarray(out[name], dtype=np.float64)) for name in names])
