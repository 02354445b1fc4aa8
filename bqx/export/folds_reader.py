"""`bqx.export.folds(path)`: an export's pool with its cross-validation splits, for polars, pandas and scikit-learn."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import polars as pl
from pyarrow import dataset as ds

from bqx.errors import UsageError
from bqx.export.folds import FOLDS_JSON, FoldPlan
from bqx.export.layout import MARKER
from bqx.export.writer import S3Options, open_destination


@dataclass
class Folds:
    """The pool (rows before the test boundary) as one frame sorted by (pair, ts), and its splits.

    - `frame`: pair, ts, the exported columns and cv_group, cv_reach, cv_embargo (polars; `.to_pandas()` for pandas);
    - `splits`: per split, (train row indices, test row indices) into `frame` — pass it as scikit-learn's `cv=`;
    - `exprs`: per split, (train, test) polars expressions selecting the same rows of any frame with the cv columns;
    - `paths`: CPCV backtest paths (split per group), `meta`: metadata/folds.json.
    """

    frame: pl.DataFrame
    splits: list[tuple[np.ndarray, np.ndarray]]
    exprs: list[tuple[pl.Expr, pl.Expr]]
    paths: list[list[int]]
    plan: FoldPlan
    meta: dict

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return iter(self.splits)

    def __len__(self) -> int:
        return len(self.splits)


def folds(path: str | Path, s3: S3Options | None = None) -> Folds:
    """Read an export written with `--cv` (a directory or an s3:// prefix; `s3` as for the export): the
    pool frame and each split's train and test rows. An export without its completion marker (interrupted,
    failed, or being rewritten) is refused: its files may be partial."""
    dest = open_destination(path, s3)
    if not dest.exists(FOLDS_JSON):
        raise UsageError(f"{dest.url} has no {FOLDS_JSON}: it was not exported with --cv",
                         hint="Export again with --cv walk-forward:K or --cv cpcv:N,k.")
    if not dest.exists(MARKER):
        raise UsageError(f"{dest.url} has no {MARKER}: the export was interrupted or failed",
                         hint=f"Export again, or see what is wrong with `bqx validate --export {dest.url}`.")
    meta = json.loads(dest.read_bytes(FOLDS_JSON))
    plan = FoldPlan.from_dict(meta)
    fs, root = dest.arrow()
    table = ds.dataset(f"{root}/features/train", filesystem=fs, format="parquet", partitioning="hive").to_table()
    frame = pl.from_arrow(table).drop("year_month", strict=False).sort("pair", "ts")
    frame = frame.select("pair", *[c for c in frame.columns if c != "pair"])
    g, r, e = (frame[c].to_numpy().astype(np.int64) for c in ("cv_group", "cv_reach", "cv_embargo"))
    splits = [(np.flatnonzero(plan.train_mask(s, g, r, e)), np.flatnonzero(plan.test_mask(s, g)))
              for s in range(len(plan.splits))]
    exprs = [(plan.train_expr(s), plan.test_expr(s)) for s in range(len(plan.splits))]
    return Folds(frame, splits, exprs, plan.paths, plan, meta)
