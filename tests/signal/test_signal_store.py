"""`compute_signal` on a real store: pandas' Spearman on the training rows (read through `bqx.load`), training rows only,
--split all, and targets taken from the declarations (a user family declared like a target is picked up)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

import bqx
from bqx.core.registry import REGISTRY
from bqx.engine.run import run
from bqx.signal import compute_signal
from bqx.signal.run import FAMILY_FILE, FEATURE_FILE, IC_FILE, SIGNAL_DIR
from bqx.signal.select import signal_targets

FIXED = ["target_bqx_h15", "target_bqx_h30", "target_bqx_h45", "target_bqx_h60", "target_bqx_h75"]
OUTCOMES = [f"lbl_tb_h{h}_{c}" for h in (15, 30, 60) for c in ("side", "ret")]
# the store's targets stage computes the labels too once the labels family is registered (11 targets then)
EXPECTED = FIXED + (OUTCOMES if "labels" in REGISTRY else [])
CHECKED = ["rate_index", "bqx_w15_return", "bqx_agg_accel", "bqx_w60_std_lag240", "bqx_w75_endpoint_lag60"]


def _reference(store, result, feature: str, target: str, pair: str, month: str) -> tuple[float, int]:
    frame = bqx.load(store, pairs=[pair], start=month, end=month, columns=[feature, target]).collect().sort("ts")
    plan = result.selection.plan
    keep = plan.label(pair, frame["ts"]) == "train" if plan is not None else pl.Series([True] * frame.height)
    rows = frame.filter(keep & pl.col(feature).is_not_null() & pl.col(target).is_not_null())
    if rows.height < 100:
        return float("nan"), rows.height
    return pd.Series(rows[feature].to_numpy()).corr(pd.Series(rows[target].to_numpy()), method="spearman"), rows.height


@pytest.fixture(scope="module")
def result(signal_store):
    return compute_signal(signal_store, workers=1)


def test_ic_equals_pandas_spearman_on_training_rows(signal_store, result):
    assert result.targets == EXPECTED
    cells = result.cells
    assert set(CHECKED) <= set(cells["feature"].unique())
    for feature in CHECKED:
        for target in ["target_bqx_h15", "target_bqx_h75"] + EXPECTED[5:][:2]:
            for pair in ("EURUSD", "USDJPY"):
                for month in ("2024-07", "2024-08"):
                    ref, n = _reference(signal_store, result, feature, target, pair, month)
                    got = cells.filter((pl.col("feature") == feature) & (pl.col("target") == target)
                                       & (pl.col("pair") == pair) & (pl.col("month") == month)).row(0, named=True)
                    assert got["n"] == n
                    assert got["ic"] == pytest.approx(ref, abs=1e-12), (feature, target, pair, month)


def test_files_written_with_the_spec_columns(signal_store, result):
    where = signal_store / SIGNAL_DIR
    ic = pl.read_parquet(where / IC_FILE)
    assert ic.columns == ["feature", "target", "pair", "month", "ic", "n"]
    assert ic.schema["ic"] == pl.Float64 and ic.height == result.cells.height
    assert ic.height == len(result.selection.features) * len(EXPECTED) * 2 * 2  # features x targets x pairs x months
    assert ic["ic"].is_nan().sum() == 0  # NULL, never NaN
    summary = pl.read_parquet(where / FEATURE_FILE)
    assert {"mean_ic", "std_ic", "ir", "sign_share", "t_stat", "family", "horizon"} <= set(summary.columns)
    assert summary.height == len(result.selection.features) * len(EXPECTED)
    fam = pl.read_parquet(where / FAMILY_FILE)
    assert {"rate_index", "bqx", "lags"} <= set(fam["family"]) and "labels" not in set(fam["family"])
    # the training rows stop at the boundary: August has fewer than July
    rows = result.cells.group_by("month").agg(pl.col("n").max())
    assert dict(rows.iter_rows())["2024-08"] < dict(rows.iter_rows())["2024-07"]


PRICES = ["open", "high", "low", "close", "bid_open", "bid_high", "bid_low", "bid_close", "ask_open", "ask_high",
          "ask_low", "ask_close"]


def _rerun_with_bar_moved(store, at) -> None:
    """Move EURUSD's bar at `at` up by 1 % (all its prices) and let the engine recompute what depends on it."""
    from tests.conftest import sample_bars

    bars = sample_bars(("EURUSD", "USDJPY"), "2024-07", 2)
    hit = (pl.col("pair") == "EURUSD") & (pl.col("ts") == at)
    bars = bars.with_columns([pl.when(hit).then(pl.col(c) * 1.01).otherwise(pl.col(c)).alias(c) for c in PRICES])
    assert run(store, source=bars, stages=["targets"], executor="serial").ok


def test_only_training_rows_count(store_copy):
    """A bar moved inside the test split changes features and targets there only: the IC stays; one moved among the
    training rows changes it."""
    def ic_of(root):
        res = compute_signal(root, families=["bqx"], workers=1)
        cell = res.cells.filter((pl.col("feature") == "bqx_w15_return") & (pl.col("target") == "target_bqx_h15")
                                & (pl.col("pair") == "EURUSD") & (pl.col("month") == "2024-08"))
        return cell["ic"].item(), res

    before, res = ic_of(store_copy)
    plan = res.selection.plan
    frame = bqx.load(store_copy, pairs=["EURUSD"], start="2024-08", end="2024-08",
                     columns=["bqx_w15_return"]).collect().sort("ts")
    split = plan.label("EURUSD", frame["ts"])
    test_row = frame["ts"].filter(split == "test")[100]
    _rerun_with_bar_moved(store_copy, test_row)
    after = bqx.load(store_copy, pairs=["EURUSD"], start="2024-08", end="2024-08",
                     columns=["bqx_w15_return"]).collect().sort("ts")
    assert not after["bqx_w15_return"].equals(frame["bqx_w15_return"])  # the store did change, in the test split
    assert ic_of(store_copy)[0] == before
    train_row = frame["ts"].filter(split == "train")[5000]
    _rerun_with_bar_moved(store_copy, train_row)
    assert ic_of(store_copy)[0] != before


def test_split_all_uses_every_row(signal_store, result):
    every = compute_signal(signal_store, families=["rate_index"], split="all", workers=1)
    assert every.boundaries == {}
    one = lambda r: r.cells.filter((pl.col("feature") == "rate_index") & (pl.col("target") == "target_bqx_h15")  # noqa: E731
                                   & (pl.col("pair") == "EURUSD") & (pl.col("month") == "2024-08")).row(0, named=True)
    ref, n = _reference(signal_store, every, "rate_index", "target_bqx_h15", "EURUSD", "2024-08")
    assert one(every)["n"] == n > one(result)["n"]
    assert one(every)["ic"] == pytest.approx(ref, abs=1e-12)


def test_start_end_select_months_and_views_keep_their_context(signal_store, result):
    aug = compute_signal(signal_store, start="2024-08", end="2024-08", families=["lags"], workers=1)
    assert aug.cells["month"].unique().to_list() == ["2024-08"]
    joined = aug.cells.join(result.cells, on=["feature", "target", "pair", "month"], suffix="_all")
    assert joined.height == aug.cells.height
    assert (joined["n"] == joined["n_all"]).all()  # lags at the month's start come from July's rows
    assert np.allclose(joined["ic"].to_numpy(), joined["ic_all"].to_numpy(), atol=1e-12, equal_nan=True)


def test_a_user_family_declared_like_a_target_is_a_target(store_copy):
    def fwd(frame: pl.DataFrame, ctx) -> pl.DataFrame:
        c = pl.col("close")
        return frame.select(((c.shift(-10) / c).log()).alias("fwd_r10"))

    # in the targets' stage, as the labels are (the export's catalog knows only the built-in stages)
    fam = bqx.family(name="fwd", stage="targets", inputs=("bars",), context=0, lookahead=10, register=False,
                     columns=lambda p: [bqx.Column("fwd_r10", "continuous", 0, "log return over the next 10 bars",
                                                   nullable_when="the last 10 bars")])(fwd)
    bqx.register(fam)
    try:
        assert run(store_copy, source=None, stages=["targets"], executor="serial").ok
        res = compute_signal(store_copy, families=["bqx"], workers=1)
        assert sorted(res.targets) == sorted(EXPECTED + ["fwd_r10"])
        assert "fwd_r10" not in res.selection.features
        ref, n = _reference(store_copy, res, "bqx_w15_return", "fwd_r10", "USDJPY", "2024-07")
        got = res.cells.filter((pl.col("feature") == "bqx_w15_return") & (pl.col("target") == "fwd_r10")
                               & (pl.col("pair") == "USDJPY") & (pl.col("month") == "2024-07")).row(0, named=True)
        assert got["n"] == n and got["ic"] == pytest.approx(ref, abs=1e-12)
        assert res.features.filter(pl.col("target") == "fwd_r10")["horizon"].unique().to_list() == [10]
        with pytest.raises(bqx.errors.UsageError, match="targets, not features"):
            compute_signal(store_copy, families=["fwd"], workers=1)
    finally:
        REGISTRY.remove("fwd")


LABELS = [f"lbl_tb_h{h}_{c}" for h in (15, 30, 60) for c in ("side", "t1", "ret", "w")]


def test_the_labels_give_their_side_and_ret_eleven_targets_in_all(tmp_path):
    """With the labels family in a store, the targets are the 5 fixed horizons plus each horizon's side and ret."""
    stand_in = "labels" not in REGISTRY
    if stand_in:  # the labels family is built on another branch: declare its columns as FEATURES.md names them
        def labels(frame: pl.DataFrame, ctx) -> pl.DataFrame:  # never computed here
            raise AssertionError

        fam = bqx.family(name="labels", stage="labels", inputs=("bars",), context=59, lookahead=119, register=False,
                         columns=lambda p: [bqx.Column(c, "count" if c.endswith("t1") else
                                                       "categorical" if c.endswith("side") else "continuous", 0, c)
                                            for c in LABELS])(labels)
        bqx.register(fam)
    try:
        for stage in ("targets", REGISTRY.get("labels").stage):
            (tmp_path / stage).mkdir(exist_ok=True)
        got = signal_targets(tmp_path, {})
        names = [t.name for t in got]
        assert names[:5] == FIXED
        assert sorted(names[5:]) == sorted(f"lbl_tb_h{h}_{c}" for h in (15, 30, 60) for c in ("side", "ret"))
        assert len(names) == 11
        assert {t.name: t.horizon for t in got}["lbl_tb_h30_ret"] == 30
    finally:
        if stand_in:
            REGISTRY.remove("labels")


def test_refused_while_a_writer_holds_the_store(signal_store):
    from bqx.errors import StoreLockedError
    from bqx.store.lock import store_lock

    with store_lock(signal_store, "run"):
        with pytest.raises(StoreLockedError, match="a signal now would read a store in the middle of a change"):
            compute_signal(signal_store, families=["rate_index"], workers=1)
