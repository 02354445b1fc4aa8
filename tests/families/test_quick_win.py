"""quick_win (FEATURES.md stage S2.1): trading days across DST changes, pivots, round levels, pandas oracles."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import polars as pl
import pytest

from bqx.core.runner import compute
from tests.conftest import sample_bars

UTC = timezone.utc


def _minutes(start: datetime, end: datetime) -> list[datetime]:
    return [start + timedelta(minutes=i) for i in range(int((end - start).total_seconds() // 60))]


def _bars(ts: list[datetime], closes=None, pair="EURUSD", spread=0.0002, volume=1.0) -> pl.DataFrame:
    n = len(ts)
    c = np.asarray(closes, dtype=float) if closes is not None else 1.1 + 0.001 * np.sin(np.arange(n) / 50.0)
    o = np.r_[c[0], c[:-1]]
    return pl.DataFrame({
        "pair": [pair] * n, "ts": ts, "open": o, "high": np.maximum(o, c) + spread / 2,
        "low": np.minimum(o, c) - spread / 2, "close": c, "volume": np.full(n, volume),
    })


def _week(monday: datetime, dst_hour_before: int, dst_hour_after: int) -> list[datetime]:
    """Thursday 12:00 UTC to Monday 23:59 UTC without the week-end close (Fri 17:00 to Sun 17:00 New York)."""
    thu = monday - timedelta(days=4)
    fri_close = monday - timedelta(days=3) + timedelta(hours=dst_hour_before)
    sun_open = monday - timedelta(days=1) + timedelta(hours=dst_hour_after)
    return _minutes(thu + timedelta(hours=12), fri_close) + _minutes(sun_open, monday + timedelta(days=1))


@pytest.mark.parametrize(
    "monday, before, after",
    [
        (datetime(2024, 3, 11, tzinfo=UTC), 22, 21),  # Fri 17:00 EST = 22:00 UTC; Sun 17:00 EDT = 21:00 UTC
        (datetime(2024, 11, 4, tzinfo=UTC), 21, 22),  # Fri 17:00 EDT = 21:00 UTC; Sun 17:00 EST = 22:00 UTC
    ],
)
def test_trading_days_follow_new_york_17h_across_dst(monday, before, after):
    ts = _week(monday, before, after)
    out = compute(_bars(ts), ["quick_win"])
    count = out["qw_bar_count_day"].to_numpy()
    stamps = out["ts"].to_list()
    starts = [stamps[i] for i in np.flatnonzero(count == 1)]
    thu_close = monday - timedelta(days=4) + timedelta(hours=before)  # Thursday 17:00 New York, same offset as Friday
    monday_close = monday + timedelta(hours=after)
    # day starts: Thursday 17:00 (Friday's day), Sunday 17:00 (Monday's day), Monday 17:00 (Tuesday's day)
    assert starts == [thu_close, monday - timedelta(days=1) + timedelta(hours=after), monday_close]
    # the first (partial) day is NULL; the Friday day counts 1 .. 1440 bars (17:00 to 17:00 is 24 h)
    first = stamps.index(thu_close)
    assert np.isnan(count[:first]).all()
    fri_day = count[first:first + 1440]
    assert (fri_day == np.arange(1, 1441)).all()


def test_day_return_pivot_and_the_partial_first_days():
    # three full trading days after a partial one; New York is UTC−4 in July: days start 21:00 UTC
    start = datetime(2024, 7, 8, 18, 0, tzinfo=UTC)
    ts = _minutes(start, datetime(2024, 7, 12, 3, 0, tzinfo=UTC))
    n = len(ts)
    c = 1.1 + 1e-5 * np.arange(n) + 0.0005 * np.sin(np.arange(n) / 97.0)
    bars = _bars(ts, c)
    out = compute(bars, ["quick_win"])
    b = bars.to_pandas()
    day = (b["ts"].dt.tz_convert("America/New_York") + pd.Timedelta(hours=7)).dt.date
    days = sorted(day.unique())
    assert len(days) == 5  # partial Jul 8 (18:00-21:00 UTC), Jul 9, 10, 11, partial Jul 12
    k = day.map({d: i for i, d in enumerate(days)}).to_numpy()
    dr = out["qw_day_ret_bps"].to_numpy()
    piv = out["qw_pivot_dist_bps"].to_numpy()
    assert np.isnan(dr[k == 0]).all() and not np.isnan(dr[k >= 1]).any()
    assert np.isnan(piv[k <= 1]).all() and not np.isnan(piv[k >= 2]).any()
    # a row of day 3: ln(c / open of day 3's first bar); P from day 2's high, low and last close
    i = int(np.flatnonzero(k == 3)[100])
    first3 = int(np.flatnonzero(k == 3)[0])
    assert dr[i] == pytest.approx(np.log(c[i] / b["open"][first3]) * 1e4)
    d2 = b[k == 2]
    p = (d2["high"].max() + d2["low"].min() + d2["close"].iloc[-1]) / 3
    assert piv[i] == pytest.approx((c[i] - p) / c[i] * 1e4)


@pytest.mark.parametrize(
    "pair, close, level",
    [
        ("EURUSD", 1.1030, 1.105),  # 50 pips = 0.005: 1.100 and 1.105 around, 1.105 nearer
        ("EURUSD", 1.1025, 1.100),  # half-way: the lower level
        ("EURUSD", 1.10249, 1.100),
        ("USDJPY", 150.26, 150.5),  # 50 pips = 0.5 for JPY pairs
        ("USDJPY", 150.25, 150.0),  # half-way: lower
        ("USDJPY", 149.99, 150.0),
    ],
)
def test_round_level_distance(pair, close, level):
    ts = _minutes(datetime(2024, 7, 9, 0, 0, tzinfo=UTC), datetime(2024, 7, 9, 0, 3, tzinfo=UTC))
    out = compute(_bars(ts, [close] * 3, pair=pair), ["quick_win"])
    assert out["qw_round_dist_bps"][2] == pytest.approx((close - level) / close * 1e4, abs=1e-9)


def test_flat_bars_and_missing_volume_are_null():
    ts = _minutes(datetime(2024, 7, 9, 0, 0, tzinfo=UTC), datetime(2024, 7, 9, 2, 0, tzinfo=UTC))
    out = compute(_bars(ts, [1.1] * len(ts), spread=0.0, volume=0.0), ["quick_win"])
    assert out["qw_clv"].is_null().all()  # h = l
    assert out["qw_vwap60_dev_bps"].is_null().all()  # no volume
    assert out["qw_range_ratio_60"].is_null().all()  # mean range 0
    assert (out["qw_range_bps"] == 0).all() and (out["qw_ret_120"].drop_nulls() == 0).all()


@pytest.mark.parametrize("pair", ["EURUSD", "USDJPY", "GBPNZD"])
def test_bar_features_against_pandas(pair):
    bars = sample_bars(("EURUSD", "USDJPY", "GBPNZD"), "2024-07", 1).filter(pl.col("pair") == pair).head(5000)
    out = compute(bars, ["quick_win"]).to_pandas()
    b = bars.to_pandas()
    o, h, l, c, v = b["open"], b["high"], b["low"], b["close"], b["volume"]

    def same(col, want, atol=1e-9):
        got = out[col].to_numpy(dtype=float)
        want = np.asarray(want, dtype=float)
        assert np.array_equal(np.isnan(got), np.isnan(want)), col
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=atol, err_msg=col)

    for k in (120, 240, 1440):
        same(f"qw_ret_{k}", np.log(c / c.shift(k)) * 1e4)
    same("qw_range_bps", (h - l) / c * 1e4)
    same("qw_body_bps", (c - o) / c * 1e4)
    same("qw_gap_bps", (o - c.shift()) / c.shift() * 1e4)
    same("qw_clv", np.where(h > l, ((c - l) - (h - c)) / (h - l), np.nan))
    same("qw_hi60_dist_bps", (h.rolling(60).max() - c) / c * 1e4)
    same("qw_lo60_dist_bps", (c - l.rolling(60).min()) / c * 1e4)
    vwap = ((h + l + c) / 3 * v).rolling(60).sum() / v.rolling(60).sum()
    same("qw_vwap60_dev_bps", (c - vwap) / c * 1e4, atol=1e-7)
    same("qw_range_ratio_60", (h - l) / (h - l).rolling(60).mean(), atol=1e-8)
