"""Targets and labels in validation: the boundary check and the reach check (PIPELINE.md §6).

A family of the targets stage that reads further ahead than it declares is a leak (caught by the
reach check); one that reads exactly as far as it declares passes; the built-in targets and labels pass.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest

import bqx
from bqx.core.declaration import series
from bqx.core.registry import REGISTRY
from bqx.engine.run import run
from bqx.kernels.rolling import shift
from bqx.validate import validate
from tests.conftest import sample_bars

FIRST = datetime(2024, 7, 22, tzinfo=timezone.utc)
LAST = datetime(2024, 8, 6, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    bars = sample_bars(("EURUSD",), "2024-07", 2).filter((pl.col("ts") >= FIRST) & (pl.col("ts") < LAST))
    root = tmp_path_factory.mktemp("reach") / "store"
    result = run(root, source=bars, stages=["targets"], executor="serial")
    assert result.ok, result.failed
    return root


def test_targets_and_labels_pass_the_boundary_and_reach_checks(store):
    report = validate(store, families=["targets", "labels"], save=False)
    assert report.passed, report.summary()
    for name in ("targets", "labels"):
        res = report.family(name)
        assert res.verdict == "exempt"
        assert res.checks["boundary"].status == "pass" and res.checks["boundary"].samples >= 1
        reach = res.checks["reach"]
        assert reach.status == "pass" and reach.samples >= 6 and reach.compared > 1000
        assert "truncation" not in res.checks


@pytest.mark.parametrize("declared,reads,verdict", [(3, 10, "leak"), (10, 10, "exempt")])
def test_a_target_family_reading_past_its_declared_lookahead_is_caught(store, declared, reads, verdict):
    name = f"peek{reads}"

    def fn(frame: pl.DataFrame, ctx) -> pl.DataFrame:
        c = frame["close"].to_numpy().astype(np.float64)
        return pl.DataFrame([series(f"{name}_x", shift(c, -reads) / c)])

    fam = bqx.family(name=name, stage="targets", inputs=("bars",), context=0, lookahead=declared, register=False,
                     columns=lambda p: [bqx.Column(f"{name}_x", "continuous", 0, "close ahead", nullable_when="data end")])(fn)
    bqx.register(fam)
    try:
        result = run(store, source=None, stages=["targets"], executor="serial")
        assert result.ok, result.failed
        report = validate(store, families=[name], save=False)
        res = report.family(name)
        assert res.verdict == verdict, report.summary()
        if verdict == "leak":
            fails = res.checks["reach"].failures
            assert all(f.column == f"{name}_x" for f in fails)
            assert any(f"rows after t + {declared} (declared lookahead) perturbed" in f.detail for f in fails)
            assert not report.passed
        else:
            assert res.checks["reach"].status == "pass" and res.checks["reach"].compared > 0
    finally:
        REGISTRY.remove(name)
