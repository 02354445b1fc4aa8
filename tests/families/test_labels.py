"""The labels family (FEATURES.md "labels") against an independent loop reference.

Month-partitioned labels written by the engine equal the reference computed on the whole series
(2 pairs x 2 sample months: the month edge, weekends and the data end included), and so do the
labels of gym-anytrading's real EURUSD hourly file (hourly bars: every bar is more than a
`max_gap` of 30 minutes after the previous one unless max_gap is raised, both are tested).
"""

from __future__ import annotations

import importlib.resources
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from bqx.bars.readers import read_source
from bqx.core.registry import REGISTRY
from bqx.core.runner import compute
from bqx.store.layout import partition_path
from tests.families.labels_reference import reference_labels

PAIRS = ("EURUSD", "USDJPY")
MONTHS = ("2024-07", "2024-08")
HORIZONS = (15, 30, 60)
GYM = importlib.resources.files("gym_anytrading") / "datasets/data/FOREX_EURUSD_1H_ASK.csv"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from bqx.engine.run import run

    root = tmp_path_factory.mktemp("labels") / "store"
    result = run(root, pairs=list(PAIRS), stages=["targets"], executor="serial")
    assert result.ok, result.failed
    return root


def _stored(root, stage: str, pair: str, columns: list[str]) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(partition_path(root, stage, pair, m), columns=["ts", *columns]) for m in MONTHS])


def _assert_equal_to_reference(got: pl.DataFrame, ref: dict, where: str) -> None:
    for name, want in ref.items():
        w = np.array([np.nan if v is None else v for v in want], dtype=np.float64)
        g = got[name].to_numpy().astype(np.float64)
        assert (np.isnan(w) == np.isnan(g)).all(), f"{where} {name}: NULL at different rows, first at " \
            f"{got['ts'][int(np.argmax(np.isnan(w) != np.isnan(g)))]}"
        ok = ~np.isnan(w)
        if name.endswith(("_side", "_t1")):
            assert (w[ok] == g[ok]).all(), f"{where} {name}: differs"
        else:
            np.testing.assert_allclose(g[ok], w[ok], rtol=1e-12, atol=0, err_msg=f"{where} {name}")


@pytest.mark.parametrize("pair", PAIRS)
def test_stored_month_partitions_equal_the_loop_reference(store, pair):
    """Over the 10 days either side of the month edge (two weekends) and the data's last 4 days (the Python
    loop over both months whole takes a minute); rows whose labels could see past a slice's start are skipped."""
    fam = REGISTRY.get("labels")
    bars = _stored(store, "bars", pair, ["close"])
    stats = _stored(store, "extraction", pair, ["stat_std_60", "stat_absmean_60"])
    got = _stored(store, "targets", pair, list(fam.column_names()))
    assert got["ts"].equals(bars["ts"]) and stats["ts"].equals(bars["ts"])
    edge_ts = datetime(2024, 8, 1, tzinfo=timezone.utc)
    last = bars["ts"][-1]
    for lo, hi, to_end in ((edge_ts - timedelta(days=10), edge_ts + timedelta(days=10), False),
                           (last - timedelta(days=4), last, True)):
        a, b = int(bars["ts"].search_sorted(lo)), int(bars["ts"].search_sorted(hi, side="right"))
        sl = slice(a, b)
        for h in HORIZONS:
            ref = reference_labels(bars["ts"][sl].to_list(), bars["close"][sl].to_list(),
                                   stats["stat_std_60"][sl].to_list(), stats["stat_absmean_60"][sl].to_list(), h)
            keep_to = b - a if to_end else b - a - 2 * h  # a slice that is not the data's end cuts labels short
            ref = {k: v[h:keep_to] for k, v in ref.items()}
            _assert_equal_to_reference(got.slice(a + h, keep_to - h), ref, f"{pair} {lo:%m-%d}..{hi:%m-%d} h={h}")
    # the cases the comparison must have met: the month edge, weekend gaps, the data end, every side
    edge = int(bars["ts"].search_sorted(datetime(2024, 8, 1, tzinfo=timezone.utc)))
    around = got.slice(edge - 60, 120)
    assert around["lbl_tb_h60_w"].null_count() == 0, "labels across the month edge are defined"
    gaps = np.flatnonzero(np.diff(bars["ts"].dt.epoch("s").to_numpy()) > 3600) + 1
    assert len(gaps) >= 6
    before_gap = got.slice(int(gaps[2]) - 5, 5)
    assert before_gap["lbl_tb_h15_t1"].null_count() > 0, "labels crossing a weekend are NULL"
    assert got.tail(1)["lbl_tb_h15_side"].null_count() == 1
    assert set(got["lbl_tb_h30_side"].drop_nulls().unique().to_list()) == {-1.0, 0.0, 1.0}
    w = got["lbl_tb_h60_w"].drop_nulls()
    assert 0 < w.min() and w.max() <= 1


def test_declared_reach_and_context():
    fam = REGISTRY.get("labels")
    assert fam.stage == "targets" and "statistics" in fam.inputs
    assert fam.lookahead() == 119 and fam.context() == 59
    assert fam.lookahead({"horizons": (10, 20), "width": 1.0, "max_gap": 60}) == 39
    assert len(fam.column_names()) == 12


def _gym_bars() -> pl.DataFrame:
    return read_source(str(GYM), tz="UTC").bars


@pytest.mark.parametrize("max_gap", [60, 30])
def test_real_eurusd_hourly_file_equals_the_loop_reference(max_gap):
    bars = _gym_bars()
    params = {"labels": {"max_gap": max_gap}}
    out = compute(bars, ["statistics", "labels"], params=params)
    ts = out["ts"].to_list()
    closes = bars.sort("ts")["close"].to_list()
    for h in HORIZONS:
        ref = reference_labels(ts, closes, out["stat_std_60"].to_list(), out["stat_absmean_60"].to_list(), h,
                               max_gap=max_gap)
        _assert_equal_to_reference(out, ref, f"gym EURUSD 1h h={h} max_gap={max_gap}")
    defined = out["lbl_tb_h15_side"].drop_nulls().len()
    if max_gap == 30:
        assert defined == 0, "hourly bars are 60 minutes apart: every label crosses a gap of more than 30 minutes"
    else:
        assert defined > 0.8 * out.height


def test_hand_built_barriers_gap_and_data_end():
    """A rising, a falling and a flat path with σ given: sides, spans, returns; a gap; the data's end."""
    t0 = datetime(2024, 1, 2, tzinfo=timezone.utc)
    n = 200
    ts = [t0 + timedelta(minutes=i) for i in range(n)]
    ts[150:] = [t + timedelta(minutes=90) for t in ts[150:]]  # a 91-minute gap before row 150
    steps = np.r_[np.full(40, 1e-4), np.full(40, -1e-4), np.zeros(120)]
    close = 1.1 * np.exp(np.cumsum(steps))
    sigma = np.full(n, 1e-4)
    sigma[:60] = np.nan
    frame = pl.DataFrame({"ts": ts, "close": close, "stat_std_60": sigma, "stat_absmean_60": np.full(n, 1e-4)},
                         nan_to_null=True).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    fam = REGISTRY.get("labels")
    out = fam.compute(frame, _ctx(fam))
    # row 65 falls by 1e-4 a bar against u = 1e-4 · sqrt(15) ≈ 3.87e-4: lower touch after 4 bars
    assert out["lbl_tb_h15_side"][65] == -1 and out["lbl_tb_h15_t1"][65] == 4
    assert out["lbl_tb_h15_ret"][65] == pytest.approx(-4e-4)
    # row 80 onwards is flat: no touch within 15 rows, vertical barrier, z = 0
    assert out["lbl_tb_h15_side"][80] == 0 and out["lbl_tb_h15_t1"][80] == 15 and out["lbl_tb_h15_ret"][80] == 0.0
    # rows 135 ... 149 reach row 150, 91 minutes after row 149: NULL; row 150 onwards is after the gap
    assert out["lbl_tb_h15_side"][134] == 0 and out["lbl_tb_h15_side"].slice(135, 15).null_count() == 15
    assert out["lbl_tb_h15_side"][150] == 0
    # the data ends: fewer than 15 rows after t and no touch
    assert out["lbl_tb_h15_side"].tail(15).null_count() == 15 and out["lbl_tb_h15_side"][184] == 0
    # uniqueness on the flat run: 15 overlapping labels of span 15 -> mean of 1/n_u
    assert out["lbl_tb_h15_w"][100] == pytest.approx(1 / 15)
    # σ NULL during its warm-up: labels NULL
    assert out["lbl_tb_h15_side"].head(60).null_count() == 60
    steep = frame.with_columns(pl.Series("close", 1.1 * np.exp(np.cumsum(np.full(n, 1e-3)))),
                               pl.Series("stat_std_60", np.full(n, 1e-4)))
    up = fam.compute(steep, _ctx(fam))
    # u = 1e-4 · sqrt(15) ≈ 3.87e-4: touched at j = 1 for h = 15 (1e-3 per bar), side +1
    assert up["lbl_tb_h15_side"][0] == 1 and up["lbl_tb_h15_t1"][0] == 1
    assert up["lbl_tb_h15_ret"][0] == pytest.approx(1e-3)
    zero = frame.with_columns(pl.lit(1e-13).alias("stat_std_60"))
    assert fam.compute(zero, _ctx(fam))["lbl_tb_h15_side"].null_count() == n, "σ ≤ 1e-12 is zero: NULL"


def _ctx(fam):
    from bqx.core.declaration import Ctx

    return Ctx(params=fam.resolve_params(), baseline_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
