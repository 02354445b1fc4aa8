"""The runner gives a family exactly what it declares: bars and the columns of its input families."""

from __future__ import annotations

import polars as pl
import pytest

from bqx import Column, compute, family


def test_a_family_sees_only_its_declared_inputs(sample):
    bars = sample(("EURUSD",), "2024-07", 1).head(200)

    @family(name="peeks", stage="peeks", inputs=("rate_index",), context=0, register=False,
            columns=lambda p: [Column("peeks_x", "continuous", 0, "reads a bqx column it did not declare")])
    def peeks(frame: pl.DataFrame, ctx) -> pl.DataFrame:
        return frame.select(pl.col("bqx_w15_return").alias("peeks_x"))

    @family(name="declares", stage="declares", inputs=("rate_index",), context=0, register=False,
            columns=lambda p: [Column("declares_x", "level", 0, "the rate index, a declared input")])
    def declares(frame: pl.DataFrame, ctx) -> pl.DataFrame:
        assert "bqx_w15_return" not in frame.columns and {"ts", "close", "rate_index"} <= set(frame.columns)
        return frame.select(pl.col("rate_index").alias("declares_x"))

    from bqx.core.registry import REGISTRY

    try:
        REGISTRY.add(declares)
        out = compute(bars, ["bqx", "declares"])
        assert out["declares_x"].to_list() == compute(bars, ["rate_index"])["rate_index"].to_list()
        REGISTRY.add(peeks)
        with pytest.raises(pl.exceptions.ColumnNotFoundError, match="bqx_w15_return"):
            compute(bars, ["bqx", "peeks"])
    finally:
        REGISTRY.remove("peeks")
        REGISTRY.remove("declares")
