"""lags (stage 2.2, a view): past values of the bqx columns, computed on load and export, never stored."""

from __future__ import annotations

from typing import Any, Mapping

import polars as pl

from bqx.core.declaration import Column, Ctx
from bqx.core.registry import family
from bqx.families.bqx import DEFAULTS as BQX_DEFAULTS
from bqx.families.bqx import columns as bqx_columns

DEFAULTS = {"lags": (60, 120, 180, 240), "sources": tuple(c.name for c in bqx_columns(BQX_DEFAULTS))}


def columns(p: Mapping[str, Any]) -> list[Column]:
    warm = {c.name: c for c in bqx_columns(BQX_DEFAULTS)}
    out = []
    for src in p["sources"]:
        base = warm.get(src)
        for k in p["lags"]:
            out.append(Column(f"{src}_lag{k}", base.kind if base else "continuous", (base.warmup if base else 0) + k,
                              f"{src} at row t−{k}", nullable_when=base.nullable_when if base else None,
                              bounded=base.bounded if base else False))
    return out


@family(name="lags", stage="lags", inputs=("bqx",), columns=columns, params=DEFAULTS,
        context=lambda p: max(p["lags"]), view=True)
def lags(frame: pl.DataFrame, ctx: Ctx) -> pl.DataFrame:
    """{column}_lag{k}(t) = column(t − k)."""
    return frame.select([
        pl.col(src).shift(k).cast(pl.Float64).alias(f"{src}_lag{k}")
        for src in ctx.params["sources"] for k in ctx.params["lags"]
    ])
