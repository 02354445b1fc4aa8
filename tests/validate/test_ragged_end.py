"""A pair whose bars end a few minutes before the others' is no leak (issue 23's false alarm).

On the old code the perturbation check's "rows removed and inserted" alteration appended new bars
one minute after such a pair's own last bar -- at times before the sampled t, the last bar of the
data -- so the rows at or before t changed: extra rows in that pair ("the recompute returned rows
at other timestamps") and, for cross-pair families, other values in every pair at those minutes.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from bqx.engine.run import run
from bqx.validate import validate
from bqx.validate.perturbation import alter_rows
from tests.conftest import sample_bars

PAIRS = ("EURGBP", "EURUSD", "GBPUSD")  # one triangle: arbitrage has a residual to compute
FIRST = datetime(2024, 7, 29, tzinfo=timezone.utc)
LAST = datetime(2024, 8, 2, 6, tzinfo=timezone.utc)
EARLY = 3  # minutes EURGBP ends before the others


@pytest.fixture(scope="module")
def ragged_end(tmp_path_factory):
    logging.getLogger("bqx").setLevel(logging.ERROR)
    bars = sample_bars(PAIRS, "2024-07", 2).filter((pl.col("ts") >= FIRST) & (pl.col("ts") < LAST))
    end = bars["ts"].max()
    bars = bars.filter((pl.col("pair") != "EURGBP") | (pl.col("ts") <= end - timedelta(minutes=EARLY)))
    root = tmp_path_factory.mktemp("ragged_end") / "store"
    result = run(root, source=bars, stages=["currency_indices", "arbitrage"], executor="serial")
    assert result.ok, result.failed
    return root, bars


def test_cross_pair_families_pass_when_one_pair_ends_early(ragged_end):
    root, bars = ragged_end
    last = bars.group_by("pair").agg(pl.col("ts").max()).sort("pair")["ts"].to_list()
    assert last[0] == last[1] - timedelta(minutes=EARLY) and last[1] == last[2]  # the market is ragged as meant
    report = validate(root, ["currency_indices", "arbitrage"], save=False, workers=1)
    assert report.passed, report.summary()
    for name in ("currency_indices", "arbitrage"):
        pert = report.family(name).checks["perturbation"]
        assert pert.status == "pass" and pert.samples > 0 and pert.compared > 0, pert
        # the last bar of the data was among the sampled t: the rows of the early pair were altered after it
        assert report.family(name).checks["truncation"].samples > 0


def test_rows_appended_to_a_pair_that_ended_before_t_come_after_t():
    ts = pl.datetime_range(FIRST, FIRST + timedelta(minutes=9), "1m", eager=True, time_zone="UTC").alias("ts")
    frame = pl.DataFrame({"ts": ts, "close": np.linspace(1.0, 1.1, ts.len())})
    t = FIRST + timedelta(minutes=12)  # the pair's last bar is 3 minutes before t
    out = alter_rows(frame, t, np.random.default_rng(0))
    assert out.filter(pl.col("ts") <= t).equals(frame)  # nothing at or before t changed
    assert out.height == frame.height + 5 and out["ts"].min() == FIRST
    assert out.filter(pl.col("ts") > t)["ts"].min() == t + timedelta(minutes=1)
