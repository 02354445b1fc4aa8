"""Splits: one boundary for all pairs, purge and embargo counted on each pair's rows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from bqx.errors import UsageError
from bqx.export.splits import plan_splits

T0 = datetime(2024, 7, 1, tzinfo=timezone.utc)


def _us(minutes) -> np.ndarray:
    """Bar timestamps (µs) at the given minute offsets from T0."""
    return np.asarray([int((T0 + timedelta(minutes=int(m))).timestamp() * 1_000_000) for m in minutes], dtype=np.int64)


def test_fractions_cut_the_common_range_by_time():
    # A: minutes 0..999, B: minutes 100..1099 -> common range [100, 999], span 899 minutes
    plan = plan_splits({"A": _us(range(1000)), "B": _us(range(100, 1100))}, fractions=(0.8, 0.1, 0.1),
                       purge=0, embargo=0)
    assert plan.common_start == T0 + timedelta(minutes=100)
    assert plan.common_end == T0 + timedelta(minutes=999)
    # 100 + 0.8 * 899 = 819.2 -> floored to the minute 819; 100 + 0.9 * 899 = 909.1 -> 909
    assert plan.train_end == T0 + timedelta(minutes=819)
    assert plan.validation_end == T0 + timedelta(minutes=909)


def test_purge_and_embargo_count_rows_not_minutes():
    # pair A trades every minute; pair B has a 50-minute gap just before the boundary (minutes 450..499 missing)
    a = _us(range(0, 1000))
    b = _us([m for m in range(0, 1000) if not 450 <= m < 500])
    plan = plan_splits({"A": a, "B": b}, train_end=T0 + timedelta(minutes=500), purge=10, embargo=20)
    ex_a = {e.boundary: e for e in plan.exclusions["A"]}["train_end"]
    ex_b = {e.boundary: e for e in plan.exclusions["B"]}["train_end"]
    # A: the 10 bars 490..499 purged, the 20 bars 500..519 embargoed
    assert (ex_a.purge_first, ex_a.purge_last) == (T0 + timedelta(minutes=490), T0 + timedelta(minutes=499))
    assert (ex_a.embargo_first, ex_a.embargo_last) == (T0 + timedelta(minutes=500), T0 + timedelta(minutes=519))
    # B: the last 10 *rows* before the boundary are minutes 440..449 (the gap holds no rows)
    assert (ex_b.purge_first, ex_b.purge_last, ex_b.purge_rows) == (T0 + timedelta(minutes=440), T0 + timedelta(minutes=449), 10)
    labels = plan.label("B", pl.Series("ts", b, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")))
    counts = labels.value_counts().to_dicts()
    got = {d["split"]: d["count"] for d in counts}
    # B has 950 rows: 440 train (0..439), 10 purged, 20 embargoed (500..519), 480 after (520..999)
    assert got == {"train": 440, None: 30, "validation": 480}


def test_explicit_boundaries_and_label_intervals():
    ts = _us(range(0, 300))
    plan = plan_splits({"A": ts}, train_end=T0 + timedelta(minutes=100), validation_end=T0 + timedelta(minutes=200),
                       purge=5, embargo=7)
    labels = plan.label("A", pl.Series(ts).cast(pl.Datetime("us", "UTC"))).to_list()
    # train 0..94, purged 95..99, embargoed 100..106, validation 107..194, purged 195..199, embargoed 200..206, test 207..
    assert labels[:95] == ["train"] * 95 and labels[95:107] == [None] * 12
    assert labels[107:195] == ["validation"] * 88 and labels[195:207] == [None] * 12
    assert labels[207:] == ["test"] * 93


def test_edges_and_errors():
    ts = _us(range(0, 50))
    # boundary within the first 5 rows: fewer rows to purge than asked
    plan = plan_splits({"A": ts}, train_end=T0 + timedelta(minutes=3), purge=5, embargo=0)
    assert plan.exclusions["A"][0].purge_rows == 3
    # no test split
    plan = plan_splits({"A": ts}, fractions=(0.9, 0.1, 0.0), purge=0, embargo=0)
    assert plan.validation_end is None and set(plan.boundaries) == {"train_end"}
    with pytest.raises(UsageError, match="sum to 1"):
        plan_splits({"A": ts}, fractions=(0.8, 0.1, 0.2))
    with pytest.raises(UsageError, match="later than"):
        plan_splits({"A": ts}, train_end="2024-07-02", validation_end="2024-07-01")
    with pytest.raises(UsageError, match="common date range"):
        plan_splits({"A": _us(range(10)), "B": _us(range(20, 30))})


# -- on the exported data, checked against the store's bars --------------------------------------

@pytest.fixture(scope="module")
def small_export(store, tmp_path_factory):
    """bqx features only, purge 75, embargo 1440, float64."""
    from bqx.export import export, read_export_metadata

    dest = tmp_path_factory.mktemp("export-splits") / "out"
    export(store, str(dest), families=["bqx"], precision="float64", no_validate=True)
    return dest, read_export_metadata(str(dest))


def _store_ts(store, pair):
    return pl.read_parquet(store / "bars" / f"pair={pair}" / "**" / "*.parquet", columns=["ts"])["ts"].sort()


def test_no_training_row_target_window_reaches_the_boundary(small_export, store):
    dest, meta = small_export
    b1 = datetime.fromisoformat(meta["split"]["boundaries"]["train_end"])
    for pair in meta["pairs"]:
        bars = _store_ts(store, pair).to_list()
        train = pl.read_parquet(dest / "features" / "train" / f"pair={pair}" / "*" / "*.parquet")["ts"]
        last = bars.index(train.max())
        first_after = next(i for i, t in enumerate(bars) if t >= b1)
        # target_bqx_h75 at row `last` reads rows last+1 ... last+75: all before the boundary
        assert last + 75 < first_after
        # and the purge is tight: exactly 75 rows were dropped
        assert first_after - last - 1 == 75


def test_each_bar_at_most_once_and_embargo(small_export, store):
    dest, meta = small_export
    frame = pl.read_parquet(dest / "features" / "**" / "*.parquet", hive_partitioning=True, include_file_paths="f")
    frame = frame.with_columns(pl.col("f").str.extract(r"features/(\w+)/").alias("split"))
    assert frame.select(pl.struct("pair", "ts").is_duplicated().sum()).item() == 0
    b1 = datetime.fromisoformat(meta["split"]["boundaries"]["train_end"])
    b2 = datetime.fromisoformat(meta["split"]["boundaries"]["validation_end"])
    for pair in meta["pairs"]:
        bars = _store_ts(store, pair)
        mine = frame.filter(pl.col("pair") == pair)
        # chronological, one boundary for all pairs
        assert mine.filter(pl.col("split") == "train")["ts"].max() < b1
        assert b1 <= mine.filter(pl.col("split") == "validation")["ts"].min()
        assert mine.filter(pl.col("split") == "validation")["ts"].max() < b2 <= mine.filter(pl.col("split") == "test")["ts"].min()
        # embargo: the 1440 bars at/after each boundary are nowhere
        for b in (b1, b2):
            after = bars.filter(bars >= b)
            assert not mine["ts"].is_in(after.head(1440).implode()).any()
            assert after[1440] in set(mine["ts"].to_list())  # the first bar after the embargo is kept
        # every bar of the pair is in the export or in a recorded exclusion
        dropped = sum(v["purged"] + v["embargoed"] for v in meta["dropped"][pair].values())
        assert mine.height + dropped == bars.len()
