"""targets (stage 1.7): the BQX momentum measured h bars ahead — the only family that looks ahead."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import polars as pl

from bqx.core.declaration import Column, Ctx, series
from bqx.core.registry import family
from bqx.kernels.rolling import shift

DEFAULTS = {"horizons": (15, 30, 45, 60, 75)}


def columns(p: Mapping[str, Any]) -> list[Column]:
    return [
        Column(f"target_bqx_h{h}", "continuous", 0,
               f"bqx_w{h}_return at row t+{h}: the momentum over the coming {h} bars; NULL where row t+{h} does not exist",
               nullable_when=f"row t+{h} does not exist (the last {h} bars of the data)")
        for h in p["horizons"]
    ]


@family(name="targets", stage="targets", inputs=("bqx",), columns=columns, params=DEFAULTS,
        context=0, lookahead=lambda p: max(p["horizons"]))
def targets(frame: pl.DataFrame, ctx: Ctx) -> pl.DataFrame:
    """target_bqx_h{h}(t) = bqx_w{h}_return(t + h)."""
    return pl.DataFrame([
        series(f"target_bqx_h{h}", shift(frame[f"bqx_w{h}_return"].to_numpy().astype(np.float64), -h))
        for h in ctx.params["horizons"]
    ])
