"""Month-partitioned runs equal whole-series computation (FEATURES.md Numerics agreement)."""

from __future__ import annotations

import numpy as np
import polars as pl

from bqx.engine import load, run
from bqx.core.registry import REGISTRY
from bqx.core.runner import compute
from engine_helpers import synth_bars

FAMILIES = ["rate_index", "bqx", "targets", "labels"]


def _agree(got: pl.Series, want: pl.Series, bounded: bool) -> None:
    assert got.is_null().to_list() == want.is_null().to_list(), got.name
    g = got.drop_nulls().to_numpy()
    w = want.drop_nulls().to_numpy()
    if len(w) == 0:
        return
    if bounded:
        tol = np.full_like(w, 1e-6)
    else:  # 1e-7 relative or 1e-9 x the column's median |value|, whichever is looser
        tol = np.maximum(1e-7 * np.abs(w), 1e-9 * np.median(np.abs(w)))
    bad = np.abs(g - w) > tol
    assert not bad.any(), f"{got.name}: {int(bad.sum())} values differ, first at {int(np.argmax(bad))}"


def test_month_partitioned_equals_whole_series_with_short_middle_month(tmp_path):
    # February has 60 bars: bqx of March (context 150) must read January too, and targets of
    # January (lookahead 75; labels 119) must read February and March.
    bars = synth_bars(months={"2024-01": 1200, "2024-02": 60, "2024-03": 1200})
    res = run(tmp_path / "s", source=bars, stages=["targets"], executor="serial")
    assert res.ok and len(res.done) == 24  # rate_index, bqx, extraction, targets
    cols = [c for f in FAMILIES for c in REGISTRY.get(f).column_names()]
    lags = [c for c in REGISTRY.get("lags").column_names() if c.startswith("bqx_w15_return")]
    stored = load(tmp_path / "s", columns=cols + lags).collect().sort("pair", "ts")
    whole = compute(bars, FAMILIES + ["lags"]).sort("pair", "ts")
    assert stored.height == whole.height == 2 * 2460
    assert stored["ts"].equals(whole["ts"])
    bounded = {c.name for f in FAMILIES + ["lags"] for c in REGISTRY.get(f).columns() if c.bounded}
    for c in cols + lags:
        _agree(stored[c], whole[c], c in bounded)
    # the warm-up is at the start of the data only, never at a month start
    march = stored.filter((pl.col("pair") == "EURUSD") & (pl.col("ts").dt.month() == 3))
    assert march["bqx_w75_return"].null_count() == 0
    assert march["bqx_w15_return_lag240"].null_count() == 0
    # a view loaded from March alone takes its context from February and January
    only = load(tmp_path / "s", start="2024-03", columns=lags).collect().sort("pair", "ts")
    want = whole.filter(pl.col("ts").dt.month() == 3).sort("pair", "ts")
    assert only.height == want.height == 2 * 1200
    for c in lags:
        _agree(only[c], want[c], False)


def test_load_selects_pairs_months_and_columns(tmp_path):
    bars = synth_bars(months={"2024-01": 300, "2024-02": 300})
    run(tmp_path / "s", source=bars, stages=["bqx"], executor="serial")
    lf = load(tmp_path / "s", pairs=["USDJPY"], start="2024-02", end="2024-02", columns=["bqx_w15_return", "close"])
    df = lf.collect()
    assert isinstance(lf, pl.LazyFrame)
    assert df.columns == ["pair", "ts", "bqx_w15_return", "close"]
    assert df.height == 300 and df["pair"].unique().to_list() == ["USDJPY"]
    assert df["ts"].dt.month().unique().to_list() == [2]
    import pytest
    from bqx.errors import UsageError

    with pytest.raises(UsageError, match="bqx_w15_return"):
        load(tmp_path / "s", columns=["bqx_w15_retrun"])
