"""The IC kernel against pandas' Spearman on the masked rows; NULL below 100 rows and for constant columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bqx.signal.rank_ic import MIN_ROWS, partition_ic


def _reference(x: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    both = ~np.isnan(x) & ~np.isnan(y)
    return pd.Series(x[both]).corr(pd.Series(y[both]), method="spearman"), int(both.sum())


def test_equals_pandas_spearman_over_joint_rows_with_ties_and_null_patterns():
    rng = np.random.default_rng(7)
    n = 2_000
    base = rng.normal(size=n)
    x = np.vstack([
        base,                                   # complete
        np.round(base * 2),                     # heavy ties
        np.where(np.arange(n) < 150, np.nan, base + rng.normal(size=n)),  # a warm-up
        np.where(np.arange(n) < 150, np.nan, rng.normal(size=n)),         # the same warm-up: shares its rows
        np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),        # sporadic NULLs
        rng.integers(0, 3, n).astype(float),    # categorical
    ])
    y = np.vstack([
        0.3 * base + rng.normal(size=n),
        np.where(np.arange(n) >= n - 75, np.nan, base + rng.normal(size=n)),  # the data's end
        np.where(rng.random(n) < 0.1, np.nan, np.sign(rng.normal(size=n))),  # a label's side with gaps
    ])
    ic, rows = partition_ic(x, y)
    for f in range(x.shape[0]):
        for t in range(y.shape[0]):
            ref, count = _reference(x[f], y[t])
            assert rows[f, t] == count
            assert ic[f, t] == pytest.approx(ref, abs=1e-12), (f, t)


def test_null_below_min_rows_and_defined_at_it():
    rng = np.random.default_rng(1)
    n = 300
    x = rng.normal(size=(2, n))
    y = rng.normal(size=(1, n))
    x[0, MIN_ROWS - 1:] = np.nan  # 99 rows present
    x[1, MIN_ROWS:] = np.nan  # 100 rows present
    ic, rows = partition_ic(x, y)
    assert rows[:, 0].tolist() == [MIN_ROWS - 1, MIN_ROWS]
    assert np.isnan(ic[0, 0])
    assert ic[1, 0] == pytest.approx(_reference(x[1], y[0])[0], abs=1e-12)


def test_null_for_constant_feature_or_target_by_the_stable_comparison():
    rng = np.random.default_rng(2)
    n = 500
    noise = rng.normal(size=n)
    x = np.vstack([
        np.full(n, 3.0),                      # constant
        1.0 + 1e-12 * noise,                  # rounding noise around 1: max - min <= 1e-9 * 1
        1.0 + 1e-6 * noise,                   # a real (small) variation
        np.zeros(n),                          # exact zeros
    ])
    y = np.vstack([noise + rng.normal(size=n), np.full(n, -2.0)])
    ic, rows = partition_ic(x, y)
    assert (rows == n).all()
    assert np.isnan(ic[0, 0]) and np.isnan(ic[1, 0]) and np.isnan(ic[3, 0])
    assert ic[2, 0] == pytest.approx(_reference(x[2], y[0])[0], abs=1e-12)
    assert np.isnan(ic[:, 1]).all()  # constant target


def test_constant_only_on_the_joint_rows():
    """Ranks and the constant check use exactly the rows where both are present."""
    n = 400
    x = np.where(np.arange(n) < 200, 5.0, np.arange(n, dtype=float))
    y = np.where(np.arange(n) < 200, np.arange(n, dtype=float), np.nan)
    ic, rows = partition_ic(x[None, :], y[None, :])
    assert rows[0, 0] == 200 and np.isnan(ic[0, 0])  # x is constant where y exists


def test_empty_and_shapes():
    ic, rows = partition_ic(np.empty((3, 0)), np.empty((2, 0)))
    assert ic.shape == (3, 2) and np.isnan(ic).all() and (rows == 0).all()
