"""bollinger_rate (stage extraction): Bollinger bands of the rate index x over the last n bars."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl

from bqx.core.declaration import Column, Ctx, series
from bqx.core.registry import family
from bqx.kernels.window_stats import divide, scale_zero, std_zero, window_mean_std

DEFAULTS = {"windows": (20, 30, 60, 120), "k": 2.0}

SIGMA_NOTE = "σ = population std of x over L_{n}; σ is exactly 0 on a constant window"


def columns(p: Mapping[str, Any]) -> list[Column]:
    k = p["k"]
    cols = []
    for n in p["windows"]:
        warm = n - 1
        note = SIGMA_NOTE.format(n=n)
        cols += [
            Column(f"bbr_mid_{n}", "level", warm, f"mean of x over L_{n} (the last {n} bars, t included)"),
            Column(f"bbr_upper_{n}", "level", warm, f"bbr_mid_{n} + {k:g}σ; {note}"),
            Column(f"bbr_lower_{n}", "level", warm, f"bbr_mid_{n} − {k:g}σ; {note}"),
            Column(f"bbr_width_{n}", "continuous", warm,
                   f"(upper − lower) / mid · 100 = {2 * k:g}σ/mid · 100 (percent of the mid); 0 on a constant window; "
                   "NULL when |mid| ≤ 1e-12 · max |x| over the window",
                   nullable_when="zero mid (|mid| ≤ 1e-12 · max |x| over the window)"),
            Column(f"bbr_pctb_{n}", "continuous", warm,
                   f"(x − lower) / (upper − lower); NULL when σ ≤ 1e-9 · mean |x| over L_{n} (constant window)",
                   nullable_when=f"zero std of x over L_{n} (σ ≤ 1e-9 · mean |x|)", bounded=True),
        ]
    return cols


@family(name="bollinger_rate", stage="extraction", inputs=("rate_index",), columns=columns, params=DEFAULTS,
        context=lambda p: max(p["windows"]) - 1)
def bollinger_rate(frame: pl.DataFrame, ctx: Ctx) -> pl.DataFrame:
    """bbr_mid = mean(x over L_n), bands mid ± 2σ, width = 4σ/mid · 100, pctb = (x − lower)/(upper − lower)."""
    k = float(ctx.params["k"])
    x = frame["rate_index"].to_numpy().astype(np.float64)
    out: dict[str, np.ndarray] = {}
    for n in ctx.params["windows"]:
        m = window_mean_std(x, n)
        mid, sigma = m["mean"], m["std"]
        upper, lower = mid + k * sigma, mid - k * sigma
        out[f"bbr_mid_{n}"] = mid
        out[f"bbr_upper_{n}"] = upper
        out[f"bbr_lower_{n}"] = lower
        out[f"bbr_width_{n}"] = divide(2.0 * k * sigma * 100.0, mid, scale_zero(mid, m["min"], m["max"]))
        out[f"bbr_pctb_{n}"] = divide(x - lower, upper - lower, std_zero(sigma, m["mean_abs"], dimensionless=False))
    names = [c.name for c in columns(ctx.params)]
    return pl.DataFrame([series(name, np.asarray(out[name], dtype=np.float64)) for name in names])
