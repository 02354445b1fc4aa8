"""Train a gradient-boosting classifier on the triple-barrier side of a bqx export with purged folds.

    bqx export --to EXPORT --cv walk-forward:4          # or --cv cpcv:6,2; the labels are exported by default
    python examples/train.py EXPORT [--horizon 30] [--rounds 200]

Reads the pool with `bqx.export.folds` (rows before the test boundary, each split's purged and
embargoed training rows), trains LightGBM (`pip install 'bqx[ml]'`) on the features to predict
`lbl_tb_h{h}_side` (−1, 0, +1) with the labels' uniqueness `lbl_tb_h{h}_w` as sample weights, and
prints the out-of-fold log-loss and balanced accuracy beside a base-rate model's (the weighted
class frequencies of each split's training rows). The test split is not touched.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import polars as pl

CLASSES = (-1.0, 0.0, 1.0)


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    """Mean −ln p(true class), probabilities clipped to [1e-15, 1]."""
    p = np.clip(proba[np.arange(len(y)), y], 1e-15, 1.0)
    return float(-np.mean(np.log(p)))


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean over the classes present of the recall of that class."""
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("export", help="a local bqx export written with --cv")
    ap.add_argument("--horizon", type=int, default=30, help="label horizon h (15, 30 or 60; default 30)")
    ap.add_argument("--rounds", type=int, default=200, help="boosting rounds (default 200)")
    ap.add_argument("--max-rows", type=int, default=200_000, help="training rows per split at most (evenly spaced)")
    ap.add_argument("--threads", type=int, default=2, help="LightGBM threads (default 2)")
    args = ap.parse_args(argv)

    import lightgbm as lgb

    from bqx.export import folds, read_export_metadata

    meta = read_export_metadata(args.export)
    f = folds(args.export)
    side, weight = f"lbl_tb_h{args.horizon}_side", f"lbl_tb_h{args.horizon}_w"
    if side not in f.frame.columns:
        print(f"{args.export} has no {side}: export the labels (the default, or --targets lbl_tb_h{args.horizon})",
              file=sys.stderr)
        return 2
    features = list(meta["features"])
    frame = f.frame
    x = frame.select(features).cast(pl.Float32).to_numpy()
    y_raw = frame[side].to_numpy()
    w_raw = frame[weight].to_numpy()
    labelled = ~np.isnan(y_raw.astype(np.float64))
    y = np.searchsorted(np.asarray(CLASSES), np.nan_to_num(y_raw.astype(np.float64)))
    w = np.nan_to_num(w_raw.astype(np.float64))  # a NULL weight (unknown overlap) gives the row no weight

    oof = np.zeros((len(y), len(CLASSES)))  # summed over the splits that test a row (CPCV tests each group several times)
    base = np.zeros((len(y), len(CLASSES)))
    count = np.zeros(len(y))
    for s, (train, test) in enumerate(f.splits):
        train = train[labelled[train] & (w[train] > 0)]
        test = test[labelled[test]]
        if len(train) > args.max_rows:
            train = train[np.linspace(0, len(train) - 1, args.max_rows).astype(np.int64)]
        if not len(train) or not len(test):
            continue
        prior = np.bincount(y[train], weights=w[train], minlength=len(CLASSES))
        prior = prior / prior.sum()
        params = {"objective": "multiclass", "num_class": len(CLASSES), "learning_rate": 0.05, "num_leaves": 31,
                  "min_data_in_leaf": 50, "bagging_fraction": 0.8, "bagging_freq": 1, "feature_fraction": 0.5,
                  "verbosity": -1, "num_threads": args.threads, "seed": s}
        model = lgb.train(params, lgb.Dataset(x[train], label=y[train], weight=w[train]), num_boost_round=args.rounds)
        proba = model.predict(x[test])
        oof[test] += proba
        base[test] += prior
        count[test] += 1
        print(f"split {s}: {len(train):,} training rows, {len(test):,} test rows")
    done = count > 0
    if not done.any():
        print("no split had labelled training and test rows", file=sys.stderr)
        return 1
    yy = y[done]
    print(f"out-of-fold on {int(done.sum()):,} labelled rows ({meta['folds']['cv']}, h = {args.horizon}):")
    print(f"  {'model':<16}{'log-loss':>10}{'balanced acc':>14}")
    for name, p in (("lightgbm", oof[done] / count[done, None]), ("base rate", base[done] / count[done, None])):
        print(f"  {name:<16}{log_loss(yy, p):>10.4f}{balanced_accuracy(yy, p.argmax(axis=1)):>14.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
