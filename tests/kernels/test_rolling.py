"""bqx.kernels.rolling: drift-free rolling moments against numpy/pandas, hand-computed windows, epsilon rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from bqx.kernels.rolling import (rolling_central_moments, rolling_corr, rolling_mean, rolling_regression_slope,
                                 rolling_std, rolling_sum, rolling_var, safe_div, shift, std_is_zero)


def _windows(x: np.ndarray, w: int) -> np.ndarray:
    return sliding_window_view(x, w)


def _prices(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 1.1 + np.cumsum(rng.normal(0.0, 1e-4, n))  # an M1-like price path around 1.1


def test_hand_computed_windows():
    x = np.array([1.0, 2.0, 4.0, 7.0])
    # means of (1,2), (2,4), (4,7); population variances (d/2)² = 0.25, 1, 2.25
    np.testing.assert_array_equal(rolling_mean(x, 2), [np.nan, 1.5, 3.0, 5.5])
    np.testing.assert_array_equal(rolling_sum(x, 2), [np.nan, 3.0, 6.0, 11.0])
    np.testing.assert_array_equal(rolling_var(x, 2), [np.nan, 0.25, 1.0, 2.25])
    np.testing.assert_array_equal(rolling_var(x, 2, ddof=1), [np.nan, 0.5, 2.0, 4.5])
    np.testing.assert_array_equal(rolling_mean(x, 5), [np.nan] * 4)  # fewer values than the window


@pytest.mark.parametrize("w", [3, 20, 240])
def test_moments_equal_numpy(w):
    x = _prices(5000)
    win = _windows(x, w)
    mean = win.mean(axis=1)
    dev = win - mean[:, None]
    np.testing.assert_allclose(rolling_mean(x, w)[w - 1:], mean, rtol=1e-13, atol=0)
    np.testing.assert_allclose(rolling_std(x, w)[w - 1:], win.std(axis=1), rtol=1e-8, atol=1e-15)
    m = rolling_central_moments(x, w)
    # the sums are taken around an anchor at most 2w - 1 rows back: rounding is relative to that span
    roll = pd.Series(x).rolling(2 * w, min_periods=1)
    span = (roll.max() - roll.min()).to_numpy()[w - 1:]
    for order, row in ((2, 1), (3, 2), (4, 3)):
        expected = (dev ** order).mean(axis=1)
        assert np.all(np.abs(m[row, w - 1:] - expected) <= 1e-10 * span ** order)
    assert np.isnan(m[:, : w - 1]).all()


def test_no_drift_over_a_year_of_minutes():
    x = _prices(525_600, seed=7) * 1000.0  # a year of M1 bars at a large price level
    w = 60
    got = rolling_mean(x, w)
    tail = _windows(x[-5000:], w).mean(axis=1)
    np.testing.assert_allclose(got[-len(tail):], tail, rtol=1e-14, atol=0)
    var = rolling_var(x, w)
    np.testing.assert_allclose(var[-len(tail):], _windows(x[-5000:], w).var(axis=1), rtol=1e-7)


def test_a_later_start_changes_nothing_beyond_rounding():
    x = _prices(20_000, seed=3)
    w, cut = 100, 12_345
    whole, part = rolling_var(x, w), rolling_var(x[cut:], w)
    np.testing.assert_allclose(part[w - 1:], whole[cut + w - 1:], rtol=1e-9)


def test_a_nan_voids_exactly_the_windows_that_hold_it():
    x = _prices(50)
    x[20] = np.nan
    w = 5
    got = rolling_mean(x, w)
    void = np.zeros(50, dtype=bool)
    void[:w - 1] = True
    void[20:20 + w] = True
    assert np.array_equal(np.isnan(got), void)
    np.testing.assert_allclose(got[30:], _windows(x[26:], w).mean(axis=1), rtol=1e-13)


def test_corr_and_slope_equal_pandas():
    rng = np.random.default_rng(5)
    x = rng.normal(size=3000)
    y = 0.6 * x + rng.normal(size=3000)
    w = 50
    ref = pd.Series(x).rolling(w).corr(pd.Series(y)).to_numpy()
    np.testing.assert_allclose(rolling_corr(x, y, w, dimensionless=True), ref, rtol=1e-9, atol=1e-12)
    cov = pd.Series(x).rolling(w).cov(pd.Series(y), ddof=0).to_numpy()
    slope = cov / pd.Series(x).rolling(w).var(ddof=0).to_numpy()
    np.testing.assert_allclose(rolling_regression_slope(y, x, w), slope, rtol=1e-9, atol=1e-12)


def test_corr_is_null_where_a_side_is_flat():
    x = np.r_[np.full(30, 1.25), np.linspace(1.0, 2.0, 30)]
    y = np.linspace(0.0, 1.0, 60)
    c = rolling_corr(x, y, 10)
    assert np.isnan(c[:30]).all()  # x constant over the window: σ_x is zero, correlation undefined
    np.testing.assert_allclose(c[39:], 1.0, rtol=1e-12)


def test_shift_and_epsilon_rules():
    x = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(shift(x, 1), [np.nan, 1.0, 2.0])
    np.testing.assert_array_equal(shift(x, -1), [2.0, 3.0, np.nan])
    np.testing.assert_array_equal(shift(x, 0), x)
    # σ ≤ 1e-9 · mean|y| is zero; a dimensionless y also when σ ≤ 1e-12
    assert std_is_zero(np.array([1e-9]), np.array([1.0])).tolist() == [True]
    assert std_is_zero(np.array([2e-9]), np.array([1.0])).tolist() == [False]
    assert std_is_zero(np.array([1e-12]), np.array([0.0]), dimensionless=True).tolist() == [True]
    np.testing.assert_array_equal(safe_div(np.array([1.0, 1.0]), np.array([0.0, 4.0]), np.array([True, False])),
                                  [np.nan, 0.25])
