"""Stores for the report: a validated and exported one of 4 pairs (24 pairs missing, one complete triangle),
and a copy of it whose latest validation fails and that has no export."""

from __future__ import annotations

import logging
import shutil
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import sample_bars

PAIRS = ("EURGBP", "EURUSD", "GBPUSD", "USDJPY")
FIRST = datetime(2024, 7, 24, tzinfo=timezone.utc)
LAST = datetime(2024, 8, 7, tzinfo=timezone.utc)
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"  # ignored by git


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> Path:
    """Every stage on 4 pairs over 2024-07-24 .. 2024-08-06, validated (quick settings) and exported beside it."""
    from bqx.engine.run import run
    from bqx.export import export
    from bqx.validate import validate

    logging.getLogger("bqx").setLevel(logging.ERROR)
    bars = sample_bars(PAIRS, "2024-07", 2).filter((pl.col("ts") >= FIRST) & (pl.col("ts") < LAST))
    base = tmp_path_factory.mktemp("report")
    root = base / "store"
    result = run(root, source=bars, executor="serial")
    assert result.ok, result.failed
    rep = validate(root, samples=1, partitions=1, workers=1)
    assert rep.passed, rep.summary()
    export(root, str(base / "export"), embargo=60)
    return root


@pytest.fixture(scope="session")
def failed_store(store, tmp_path_factory) -> Path:
    """A copy of `store` without its export, whose latest validation (of a family reading the future) failed."""
    import bqx
    from bqx.core.registry import REGISTRY
    from bqx.validate import validate
    from bqx.validate.report import write_latest
    from bqx.engine.run import run

    root = tmp_path_factory.mktemp("report-failed") / "store"
    shutil.copytree(store, root)

    def peek(frame: pl.DataFrame, ctx) -> pl.DataFrame:
        return frame.select(pl.col("close").shift(-1).alias("peek_x"))  # the next bar's close: a leak

    fam = bqx.family(name="peek", stage="peek", inputs=("bars",), context=0, register=False,
                     columns=lambda p: [bqx.Column("peek_x", "continuous", 0, "next close", nullable_when="last bar")])(peek)
    bqx.register(fam)
    try:
        assert run(root, source=None, stages=["peek"], executor="serial").ok
        rep = validate(root, families=["peek"], samples=2, partitions=1, workers=1, save=False)
    finally:
        REGISTRY.remove("peek")
    assert not rep.passed
    write_latest(root, rep)
    return root


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
