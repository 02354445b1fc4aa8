"""Replaying stored bars one minute at a time through bqx.Live gives every column the batch stored."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

import bqx
from bqx.core.registry import REGISTRY
from tests.live.conftest import USER, assert_agrees, kinds, minutes, stored_bars

DAY_END = datetime(2024, 8, 1, tzinfo=timezone.utc)
CROSS = [f for f in REGISTRY if f.cross_pair and f.lookahead() == 0]


def replay(store, start: datetime) -> tuple[bqx.Live, pl.DataFrame]:
    live = bqx.Live(store, until=start)
    got = pl.concat([live.update(m) for m in minutes(stored_bars(store, start))])
    return live, got


def check(store, start: datetime, *, cross_defined: bool = True) -> None:
    live, got = replay(store, start)
    assert USER in [f.name for f in live.plan.families]
    assert len(live.columns) >= 608 + 1  # every built-in feature and the user family's column
    assert live.rejected.height == 0 and not live.batched.fallbacks
    ok = got.filter(pl.col("live_status") == "ok")
    ref = bqx.load(store, start=start.isoformat()).collect()
    assert ok.height == ref.height > 0
    if cross_defined:  # each cross-pair family has values here, not only NULL against NULL
        for fam in CROSS:
            defined = ref.select(pl.any_horizontal(pl.col(c).is_not_null() for c in fam.column_names()).sum()).item()
            assert defined > 0, fam.name
    assert_agrees(ok, ref, live.columns, kinds(live.columns))


def test_last_half_hour_equals_the_batch(wide_store, with_user):
    check(wide_store, DAY_END - timedelta(minutes=30))


@pytest.mark.slow
def test_last_day_equals_the_batch(live_store, with_user):
    check(live_store, DAY_END - timedelta(days=1), cross_defined=False)
