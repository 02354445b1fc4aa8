"""Stores computed by bqx.run for the live tests, over ~8 trading days (more than the deepest declared
context, regimes' 8,700 rows) plus a user family: EURUSD and USDJPY, and a wider one whose cross-pair
families have values; a replay helper and FEATURES.md Agreement."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import bqx
from bqx.engine.run import run
from bqx.core.registry import REGISTRY
from tests.conftest import sample_bars

PAIRS = ("EURUSD", "USDJPY")
FIRST = datetime(2024, 7, 19, tzinfo=timezone.utc)
LAST = datetime(2024, 8, 1, tzinfo=timezone.utc)
USER = "live_user"


def _user_columns(p):
    return [bqx.Column("live_user_dev", "continuous", p["window"], "close minus its mean over the last window bars",
                       nullable_when="never")]


def user_family() -> bqx.Family:
    def compute(frame: pl.DataFrame, ctx: bqx.Ctx) -> pl.DataFrame:
        w = ctx.params["window"]
        x = frame["rate_index"]
        return pl.DataFrame({"live_user_dev": (x - x.rolling_mean(w)).cast(pl.Float64)})

    return bqx.family(name=USER, stage=USER, inputs=("rate_index",), columns=_user_columns, context=lambda p: p["window"],
                      params={"window": 45}, register=False)(compute)


#: the parity store: every EUR pair (so EUR's currency index is defined), USDJPY (the EUR/USD/JPY triangle)
WIDE_PAIRS = ("EURUSD", "EURGBP", "EURJPY", "EURCHF", "EURAUD", "EURCAD", "EURNZD", "USDJPY")


def _store(tmp_path_factory, pairs: tuple[str, ...], name: str) -> Path:
    """Every built-in stage and the user family on `pairs`, 2024-07-19 .. 2024-07-31, by bqx.run."""
    logging.getLogger("bqx").setLevel(logging.ERROR)
    bars = sample_bars(pairs, "2024-07", 1).filter((pl.col("ts") >= FIRST) & (pl.col("ts") < LAST))
    root = tmp_path_factory.mktemp(name) / "store"
    bqx.register(user_family())
    try:
        result = run(root, source=bars, executor="serial")
        assert result.ok, result.failed
    finally:
        REGISTRY.remove(USER)
    return root


@pytest.fixture(scope="session")
def live_store(tmp_path_factory) -> Path:
    """EURUSD and USDJPY (the input, CLI and full-day tests)."""
    return _store(tmp_path_factory, PAIRS, "live")


@pytest.fixture(scope="session")
def wide_store(tmp_path_factory) -> Path:
    """WIDE_PAIRS: the cross-pair families have values to compare (the default parity test)."""
    return _store(tmp_path_factory, WIDE_PAIRS, "wide")


@pytest.fixture
def with_user():
    bqx.register(user_family())
    yield
    REGISTRY.remove(USER)


def stored_bars(root: Path, since: datetime) -> pl.DataFrame:
    """The store's bars at or after `since`, every pair, in time order (what a replay feeds)."""
    parts = [pl.read_parquet(f).filter(pl.col("ts") >= since).select(pl.lit(f.parts[-3][5:]).alias("pair"), pl.all())
             for f in sorted(root.glob("bars/pair=*/year_month=2024-07/data.parquet"))]
    return pl.concat(parts).sort("ts", "pair")


def minutes(bars: pl.DataFrame) -> list[pl.DataFrame]:
    return [m for _, m in bars.partition_by("ts", as_dict=True, maintain_order=True).items()]


def kinds(columns) -> dict[str, tuple[str, bool]]:
    """Each column's (kind, bounded), as its family declares it."""
    out = {}
    for fam in REGISTRY:
        for c in fam.columns():
            out[c.name] = (c.kind, c.bounded)
    return {c: out[c] for c in columns}


def assert_agrees(got: pl.DataFrame, ref: pl.DataFrame, columns, kinds) -> None:
    """FEATURES.md Agreement, column by column: continuous 1e-7 relative or 1e-9 x median |value|, bounded 1e-6
    absolute, discrete exactly; NULL where and only where the batch has NULL."""
    j = got.join(ref, on=["pair", "ts"], how="inner", suffix="__ref")
    assert j.height == got.height == ref.height, (got.height, ref.height, j.height)
    problems = []
    for c in columns:
        a = j[c].cast(pl.Float64).fill_null(np.nan).to_numpy()
        b = j[f"{c}__ref"].cast(pl.Float64).fill_null(np.nan).to_numpy()
        na, nb = np.isnan(a), np.isnan(b)
        if (na != nb).any():
            problems.append(f"{c}: NULL at {int((na != nb).sum())} rows where the batch differs")
            continue
        m = ~na
        if not m.any():
            continue
        d = np.abs(a[m] - b[m])
        kind, bounded = kinds[c]
        if bounded:
            tol = np.full(d.shape, 1e-6)
        elif kind in ("binary", "categorical", "ordinal", "count"):
            tol = np.zeros(d.shape)
        else:
            tol = np.maximum(1e-7 * np.abs(b[m]), 1e-9 * np.median(np.abs(b[m])))
        if (d > tol).any():
            problems.append(f"{c}: {int((d > tol).sum())} rows differ, max {d.max():.3g}")
    assert not problems, problems
