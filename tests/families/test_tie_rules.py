"""The stable-comparison building blocks (docs/NUMERICS.md) on hand cases: ties within ε, nothing else."""

from __future__ import annotations

import numpy as np

from bqx.kernels.aligned import rank_scaled
from bqx.kernels.rolling import snap_diff, snap_log
from bqx.kernels.order_stats import trailing_order_stats
from bqx.kernels.window_stats import rolling_entropy, rolling_le_fraction


def test_snaps_make_equal_prices_exactly_zero():
    c = np.array([1.1, 1.1 * (1 + 1e-13), 1.1 * (1 + 2e-9)])
    d = snap_diff(c - 1.1, c)
    assert d[0] == 0.0 and d[1] == 0.0 and d[2] != 0.0  # 1e-13 · c is equal, 2e-9 · c is not
    r = snap_log(np.log(c / 1.1))
    assert r[1] == 0.0 and r[2] > 0.0
    assert np.isnan(snap_log(np.array([np.nan])))[0]


def test_le_fraction_counts_values_within_the_tie():
    x = np.array([1.0, 2.0, 2.0 + 1e-12, 3.0, 2.0])
    # window of 5 at t = 4 (x_t = 2): values <= 2 are 1, 2, 2 (3 of 5); 2 + 1e-12 counts only with the tie
    assert rolling_le_fraction(x, 5)[4] == 3 / 5
    assert rolling_le_fraction(x, 5, 1e-9)[4] == 4 / 5


def test_trailing_pctile_counts_values_within_the_tie():
    v = np.array([1.0, 2.0 + 1e-12, 3.0, 2.0])
    pct = trailing_order_stats(v, 3, (0.5,))[1]
    pct_tie = trailing_order_stats(v, 3, (0.5,), 1e-9)[1]
    assert pct[3] == 1 / 3 and pct_tie[3] == 2 / 3  # previous 3: 1, 2 + 1e-12, 3; current 2


def test_rank_ties_within_1e9_of_the_largest_are_averaged():
    m = np.array([[1.0, 1.0 + 1e-12, 3.0, 0.5]])
    # exact: ranks 2, 3, 4, 1 -> (r − 1)/3; with the tie the first two share rank 2.5
    np.testing.assert_allclose(rank_scaled(m, tie_rel=0.0)[0], [1 / 3, 2 / 3, 1.0, 0.0])
    np.testing.assert_allclose(rank_scaled(m)[0], [0.5, 0.5, 1.0, 0.0])


def test_entropy_puts_a_value_just_below_an_edge_on_it():
    # 4 values, 2 bins over [0, 2]: the edge is 1.0; 1 − 1e-12 goes to the upper bin with the tie
    x = np.array([0.0, 1.0 - 1e-12, 1.5, 2.0])
    exact = rolling_entropy(x, 4, 2)[3]
    stable = rolling_entropy(x, 4, 2, 1e-9)[3]
    assert exact == 1.0  # 2 and 2: one bit
    assert stable == -(0.25 * np.log2(0.25) + 0.75 * np.log2(0.75))  # 1 and 3
