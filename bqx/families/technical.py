"""technical (stage S2.2): 45 indicators on the rate index OHLC and bar volume (TA-Lib plus bqx's own).

The columns live in three helper modules (momentum, trend, volatility); this module declares the
one family. Recursive indicators (EMA, Wilder averages, SAR) depend on where the series starts;
the family's context of 3,000 bars leaves the seed a weight below 1e-12 (ATR(100) needs about
2,750) and lets SAR's path converge.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl
import talib

from bqx.families import technical_momentum, technical_trend, technical_volatility
from bqx.core.declaration import Column, Ctx, null_frame
from bqx.core.registry import family
from bqx.kernels.rolling import snap_diff
from bqx.kernels.technical import window_max, window_min

CONTEXT = 3000


def columns(p: Mapping[str, Any]) -> list[Column]:
    return technical_momentum.columns() + technical_trend.columns() + technical_volatility.columns()


@family(name="technical", stage="technical", inputs=("rate_index", "bars"), columns=columns, context=CONTEXT)
def technical(frame: pl.DataFrame, ctx: Ctx) -> pl.DataFrame:
    """TA-Lib indicators of x = rate_index (xo, xh, xl its open, high, low) with NULL for undefined cases."""

    def arr(name: str) -> np.ndarray:
        return np.ascontiguousarray(frame[name].to_numpy(), dtype=np.float64)

    x, xo, xh, xl = arr("rate_index"), arr("rate_index_open"), arr("rate_index_high"), arr("rate_index_low")
    v = np.nan_to_num(arr("volume"), nan=0.0)
    has_volume = ctx.pair.has_volume if ctx.pair is not None else bool((v != 0).any())
    names = [c.name for c in columns(ctx.params)]
    if frame.height == 0:
        return null_frame(names, 0)
    tr = snap_diff(talib.TRANGE(xh, xl, x), x)  # a range of prices equal within 1e-9 · x is 0 (stable comparisons)
    hh14, ll14 = window_max(xh, 14), window_min(xl, 14)
    out = technical_momentum.compute(x, xh, xl, v, has_volume, hh14, ll14, tr)
    ema20 = talib.EMA(x, 20)
    out.update(technical_trend.compute(x, xh, xl, ema20))
    out.update(technical_volatility.compute(x, xo, xh, xl, tr, ema20))
    # every division above is guarded, so NaN (warm-up, undefined) is the only non-finite value: NULL it
    return pl.DataFrame([_nulled(n, out[n]) for n in names])


def _nulled(name: str, values: np.ndarray) -> pl.Series:
    """A Float64 series with NULL where values is NaN (scattering the NaN positions is cheaper than fill_nan)."""
    s = pl.Series(name, np.ascontiguousarray(values, dtype=np.float64))
    nan_at = np.flatnonzero(np.isnan(values))
    if nan_at.size:
        s.scatter(nan_at, None)
    return s
