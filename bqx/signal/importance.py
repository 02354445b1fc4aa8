"""Permutation importance of clusters of correlated features under purged walk-forward folds (`--importance`).

- Rows: a random sample of training rows, an equal share per (pair, month), collected by the IC
  pass (`compute_signal(sample_rows=...)`); its size is stated in the output.
- Clusters: Spearman |rho| > 0.9 on the sample (NULLs take the column's mean rank); a feature
  joins the first cluster all of whose members it passes the threshold with (complete linkage,
  catalog order), so permuting one member alone cannot be masked by a near copy left in place.
- Folds: the sample's time range cut into K + 1 groups of equal length; fold i trains on groups
  0 .. i-1 and tests group i. A training row is purged when [t, t + span] reaches the test group
  (span = the largest target horizon, in rows of the row's pair: `end_ts` is the ts of row t + span).
  An embargo after the test group would only drop rows later than it, and walk-forward trains on
  earlier groups only, so none applies.
- Model: LightGBM gradient boosting (regression on the target; histogram-based, fast on a few
  hundred thousand rows and a few hundred columns; its native API needs only numpy, no scikit-learn).
  Score: the Spearman correlation of the out-of-fold prediction with the target (an IC, like the
  table). Importance of a cluster = base score - score with its columns permuted together (one
  permutation of the test rows), averaged over the folds; `std` over the folds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import polars as pl

from bqx.errors import UsageError
from bqx.signal.rank_ic import partition_ic
from bqx.signal.run import IMPORTANCE_FILE, write_signal_file

THRESHOLD = 0.9
CLUSTER_ROWS = 20_000  # evenly spaced rows of the sample for the correlation matrix
ROUNDS = 100
LGBM_PARAMS = {"objective": "regression", "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 50,
               "bagging_fraction": 0.8, "bagging_freq": 1, "feature_fraction": 0.8, "verbose": -1}


@dataclass
class Importance:
    target: str
    rows: int  # sampled rows
    folds: int
    clusters: int
    threshold: float
    metric: str
    base_score: float  # mean over the folds
    table: pl.DataFrame  # cluster, features (list), importance, std, per fold
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "sample_rows": self.rows, "folds": self.folds, "clusters": self.clusters,
                "threshold": self.threshold, "metric": self.metric, "base_score": self.base_score, "note": self.note,
                "table": self.table.to_dicts()}


def lightgbm() -> Any:
    """The lightgbm module, or a clear error naming the extra to install."""
    try:
        import lightgbm as lgb
    except ModuleNotFoundError:
        raise UsageError("--importance needs lightgbm, which is not installed",
                         hint="pip install lightgbm, then rerun.") from None
    return lgb


def clusters(x: np.ndarray, names: Sequence[str], threshold: float = THRESHOLD) -> list[list[int]]:
    """Complete-linkage groups of columns of x (rows, F) whose pairwise Spearman |rho| > threshold (on <= CLUSTER_ROWS rows)."""
    if x.shape[0] > CLUSTER_ROWS:
        x = x[np.linspace(0, x.shape[0] - 1, CLUSTER_ROWS).astype(np.int64)]
    ranks = (pl.from_numpy(np.asarray(x, dtype=np.float64), schema=list(names), orient="row")
             .select(pl.all().fill_nan(None).rank("average")).to_numpy())
    present = ~np.isnan(ranks)
    mean = np.where(present.any(axis=0), np.nanmean(np.where(present, ranks, 0.0), axis=0, where=present), 0.0)
    ranks = np.where(present, ranks, mean)
    sd = ranks.std(axis=0)
    z = np.zeros_like(ranks)
    ok = sd > 0
    z[:, ok] = (ranks[:, ok] - ranks[:, ok].mean(axis=0)) / sd[ok]
    rho = np.abs(z.T @ z / max(1, x.shape[0]))
    out: list[list[int]] = []
    for f in range(x.shape[1]):
        for group in out:
            if ok[f] and all(ok[g] and rho[f, g] > threshold for g in group):
                group.append(f)
                break
        else:
            out.append([f])
    return out


def walk_forward(ts: np.ndarray, end_ts: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, test rows) of the k walk-forward folds over K + 1 equal time groups, purged by [t, end_ts]."""
    t0, t1 = int(ts.min()), int(ts.max()) + 1
    edges = np.linspace(t0, t1, k + 2).astype(np.int64)
    group = np.clip(np.searchsorted(edges, ts, side="right") - 1, 0, k)
    out = []
    for i in range(1, k + 1):
        test = np.flatnonzero(group == i)
        train = np.flatnonzero((group < i) & (end_ts < edges[i]))  # [t, end] must not reach the test group
        out.append((train, test))
    return out


def _score(pred: np.ndarray, y: np.ndarray) -> float:
    ic, _ = partition_ic(pred[None, :], y[None, :], min_rows=2)
    return float(ic[0, 0]) if np.isfinite(ic[0, 0]) else 0.0


def permutation_importance(result: Any, *, folds: int = 4, target: str | None = None, seed: int = 0,
                           threshold: float = THRESHOLD, workers: int | None = None) -> Importance:
    """Cluster importance on `result.sample` (from `compute_signal(sample_rows=...)`); written to signal/importance.parquet."""
    lgb = lightgbm()
    sample = result.sample
    if sample is None or sample.height < 100 * (folds + 1):
        raise UsageError(f"--importance needs at least {100 * (folds + 1)} sampled training rows, got "
                         f"{0 if sample is None else sample.height}", hint="Raise --sample, or select more months.")
    features = list(result.selection.features)
    targets = [t.name for t in result.selection.targets]
    fixed = [t for t in result.selection.targets if t.family == "targets"]
    target = target or (max(fixed, key=lambda t: t.horizon).name if fixed else targets[0])
    if target not in targets:
        raise UsageError(f"--target {target!r} is not one of the targets: {', '.join(targets)}")
    data = sample.filter(pl.col(target).is_not_null())
    x = data.select(features).to_numpy().astype(np.float32)
    y = data[target].to_numpy().astype(np.float64)
    ts = data["ts"].dt.epoch("us").to_numpy()
    end = data["end_ts"].dt.epoch("us").to_numpy()
    groups = clusters(x, features, threshold)
    rng = np.random.default_rng(seed)
    base, drops = [], np.zeros((len(groups), folds))
    for i, (train, test) in enumerate(walk_forward(ts, end, folds)):
        if len(train) < 100 or len(test) < 100:
            raise UsageError(f"walk-forward fold {i + 1} has {len(train)} training and {len(test)} test rows after the "
                             "purge; too few", hint="Raise --sample or lower --folds.")
        params = {**LGBM_PARAMS, "seed": seed, "num_threads": workers or 0}
        model = lgb.train(params, lgb.Dataset(x[train], y[train], free_raw_data=True), num_boost_round=ROUNDS)
        xt = x[test].copy()
        s0 = _score(model.predict(xt), y[test])
        base.append(s0)
        perm = rng.permutation(len(test))
        for c, cols in enumerate(groups):
            saved = xt[:, cols].copy()
            xt[:, cols] = saved[perm]
            drops[c, i] = s0 - _score(model.predict(xt), y[test])
            xt[:, cols] = saved
    table = pl.DataFrame({
        "cluster": list(range(len(groups))),
        "features": [[features[f] for f in g] for g in groups],
        "importance": drops.mean(axis=1), "std": drops.std(axis=1, ddof=1) if folds > 1 else np.zeros(len(groups)),
        "per_fold": drops.tolist(),
    }).sort("importance", descending=True)
    write_signal_file(result.directory, IMPORTANCE_FILE, table)
    note = (f"{data.height:,} sampled training rows; purged walk-forward, {folds} folds; LightGBM "
            f"{ROUNDS} trees; score = Spearman IC of the prediction")
    return Importance(target, data.height, folds, len(groups), threshold, "spearman", float(np.mean(base)), table, note)
