"""`--importance`: purged walk-forward folds by hand, complete-linkage clusters, and a run on a small sample."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from bqx.signal import compute_signal
from bqx.signal.importance import clusters, permutation_importance, walk_forward
from bqx.signal.run import IMPORTANCE_FILE


def test_walk_forward_purges_rows_whose_span_reaches_the_test_group():
    ts = np.arange(0, 100, dtype=np.int64)  # 100 rows, one per unit of time; 3 folds -> 4 groups of 25
    end = ts + 5  # [t, t + 5]
    folds = walk_forward(ts, end, 3)
    assert len(folds) == 3
    train, test = folds[0]
    assert test.tolist() == list(range(25, 50))
    assert train.tolist() == list(range(0, 20))  # rows 20..24 reach 25..29, inside the test group: purged
    train, test = folds[2]
    assert test.tolist() == list(range(75, 100))
    assert train.tolist() == list(range(0, 70))  # trained on every earlier group, minus the 5 purged rows
    long_span = walk_forward(ts, ts + 30, 3)[0][0]
    assert long_span.tolist() == []  # every row of group 0 reaches group 1


def test_clusters_join_only_features_correlated_with_every_member():
    rng = np.random.default_rng(0)
    a = rng.normal(size=2000)
    b = a + 0.01 * rng.normal(size=2000)  # a near copy of a
    c = rng.normal(size=2000)
    d = np.where(rng.random(2000) < 0.05, np.nan, c * 3 + 1)  # c, rescaled, with NULLs
    e = a + 0.7 * rng.normal(size=2000)  # related to a, but |rho| < 0.9
    got = clusters(np.column_stack([a, b, c, d, e]), ["a", "b", "c", "d", "e"])
    assert got == [[0, 1], [2, 3], [4]]


def test_importance_runs_on_a_small_sample(signal_store):
    result = compute_signal(signal_store, families=["bqx"], workers=1, sample_rows=6000)
    assert result.sample is not None
    assert 5000 <= result.sample.height <= 6000  # 1,500 per (pair, month), less the months' last rows
    assert result.sample["ts"].is_sorted() and (result.sample["end_ts"] > result.sample["ts"]).all()
    imp = permutation_importance(result, folds=3, target="target_bqx_h15", workers=1)
    assert imp.rows == result.sample.filter(pl.col("target_bqx_h15").is_not_null()).height
    assert imp.folds == 3 and imp.target == "target_bqx_h15"
    members = [f for group in imp.table["features"].to_list() for f in group]
    assert sorted(members) == sorted(result.selection.features)  # each feature in exactly one cluster
    assert imp.clusters == imp.table.height < len(members)  # the 37 bqx columns have near copies
    assert np.isfinite(imp.table["importance"].to_numpy()).all()
    assert f"{imp.rows:,} sampled training rows" in imp.note
    assert (result.directory / IMPORTANCE_FILE).is_file()
    with pytest.raises(Exception, match="is not one of the targets"):
        permutation_importance(result, folds=3, target="bqx_w15_return", workers=1)


def test_a_missing_lightgbm_is_one_clear_usage_error(monkeypatch):
    import sys

    from bqx.errors import UsageError
    from bqx.signal.importance import lightgbm

    monkeypatch.setitem(sys.modules, "lightgbm", None)  # import lightgbm now raises ModuleNotFoundError
    with pytest.raises(UsageError, match="--importance needs lightgbm") as exc:
        lightgbm()
    assert exc.value.exit_code == 2 and "pip install lightgbm" in str(exc.value)
