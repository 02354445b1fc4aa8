"""rate_index, bqx, targets and lags on hand-checkable bars (FEATURES.md stages 1.5-1.7, 2.2)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from bqx.core.runner import compute

T0 = datetime(2024, 7, 1, tzinfo=timezone.utc)


def bars(closes, pair="EURUSD", start=T0) -> pl.DataFrame:
    c = np.asarray(closes, dtype=float)
    n = len(c)
    return pl.DataFrame({
        "pair": [pair] * n,
        "ts": [start + timedelta(minutes=i) for i in range(n)],
        "open": c, "high": c + 0.001, "low": c - 0.001, "close": c, "volume": np.ones(n),
    })


def test_rate_index_is_100_at_the_baseline_bar():
    out = compute(bars([2.0, 2.5, 1.0, 4.0]), ["rate_index"])
    assert out["rate_index"].to_list() == [100.0, 125.0, 50.0, 200.0]  # 100 * c / 2.0
    assert out["rate_index_high"].to_list() == pytest.approx([100 * 2.001 / 2, 100 * 2.501 / 2, 100 * 1.001 / 2, 100 * 4.001 / 2])


def test_rate_index_baseline_is_first_bar_of_the_earliest_month():
    # a pair starting mid-month still uses its first bar at or after 00:00 UTC on the 1st
    out = compute(bars([4.0, 5.0], start=T0 + timedelta(days=3)), ["rate_index"])
    assert out["rate_index"].to_list() == [100.0, 125.0]


def test_bqx_w15_on_a_hand_series():
    closes = np.arange(1.0, 41.0)  # x_t = 100 * t / 1 for t = 1..40
    out = compute(bars(closes), ["bqx"])
    x = 100.0 * closes
    t = 20  # row index; previous 15 bars are rows 5..19
    prev = x[5:20]
    assert out["bqx_w15_return"][t] == pytest.approx(np.sum(prev - x[t]) / x[t], rel=1e-12)
    assert out["bqx_w15_return"][t] == pytest.approx(15 * (np.mean(prev) - x[t]) / x[t], rel=1e-12)
    assert out["bqx_w15_return"][t] < 0  # a rise: the past sits below the present
    assert out["bqx_w15_max"][t] == x[19] and out["bqx_w15_min"][t] == x[5]
    assert out["bqx_w15_avg"][t] == pytest.approx(np.mean(prev))
    assert out["bqx_w15_std"][t] == pytest.approx(np.std(prev), rel=1e-10)
    assert out["bqx_w15_endpoint"][t] == pytest.approx((x[5] - x[t]) / x[t])
    # warm-up: row 14 has only 14 previous bars
    assert out["bqx_w15_return"][14] is None and out["bqx_w15_return"][15] is not None
    assert out["bqx_agg_accel"][29] is None and out["bqx_agg_accel"][30] is not None


def test_bqx_aggregates():
    rng = np.random.default_rng(3)
    closes = 1.1 * np.exp(np.cumsum(rng.normal(0, 1e-4, 300)))
    out = compute(bars(closes), ["bqx"])
    t = 200
    n = np.array([out[f"bqx_w{w}_return"][t] / w for w in (15, 30, 45, 60, 75)])
    x_t = 100 * closes[t] / closes[0]
    assert out["bqx_agg_mean"][t] == pytest.approx(n.mean(), rel=1e-10)
    assert out["bqx_agg_dispersion"][t] == pytest.approx(n.std(), rel=1e-9)
    assert out["bqx_agg_term"][t] == pytest.approx(n[0] - n[-1], rel=1e-9)
    assert out["bqx_agg_range"][t] == pytest.approx((out["bqx_w75_max"][t] - out["bqx_w75_min"][t]) / x_t)
    assert out["bqx_agg_volatility"][t] == pytest.approx(out["bqx_w75_std"][t] / x_t)
    assert out["bqx_agg_accel"][t] == pytest.approx(n[0] - out["bqx_w15_return"][t - 15] / 15, rel=1e-9)
    ends = [out[f"bqx_w{w}_endpoint"][t] for w in (15, 30, 45, 60, 75)]
    assert out["bqx_agg_endpoint_mean"][t] == pytest.approx(np.mean(ends), rel=1e-10)


def test_flat_prices_give_exact_zeros():
    out = compute(bars([1.23456] * 100), ["bqx"])
    assert out["bqx_w15_return"][50] == 0.0 and out["bqx_w75_endpoint"][90] == 0.0
    assert out["bqx_agg_mean"][90] == 0.0


def test_targets_read_the_future_bqx():
    rng = np.random.default_rng(4)
    closes = 1.1 * np.exp(np.cumsum(rng.normal(0, 1e-4, 200)))
    out = compute(bars(closes), ["targets", "bqx"])
    for h in (15, 30, 45, 60, 75):
        col = out[f"target_bqx_h{h}"]
        assert col[100] == out[f"bqx_w{h}_return"][100 + h]
        assert col[199 - h + 1] is None and col[199 - h] is not None  # NULL where row t+h does not exist


def test_lags_are_past_values():
    rng = np.random.default_rng(5)
    closes = 1.1 * np.exp(np.cumsum(rng.normal(0, 1e-4, 400)))
    out = compute(bars(closes), ["lags", "bqx"])
    assert out.select(pl.col("^.*_lag\\d+$")).width == 148 == 37 * 4
    assert out["bqx_w15_return_lag60"][300] == out["bqx_w15_return"][240]
    assert out["bqx_agg_mean_lag240"][380] == out["bqx_agg_mean"][140]
    assert out["bqx_w15_return_lag240"][254] is None  # 254 - 240 = 14 < warm-up 15
