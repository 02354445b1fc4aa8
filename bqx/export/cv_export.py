"""What `bqx export --cv` adds while the export streams: the cv columns of each row, the cells
(rows and scaler moments per (pair, cv_group, cv_reach, cv_embargo)), and at the end
metadata/folds.json and one scaler per split in scalers/cv/ fitted on that split's training rows.
"""

from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from bqx.export.folds import CV_COLUMNS, CV_SCALERS, FOLDS_JSON, FoldPlan, split_counts
from bqx.export.scaler import GLOBAL, Moments, ScalerFit
from bqx.export.spans import row_spans, span_rule


class CvColumns:
    """Per-pair state of a folds export; methods are safe to call from one thread per pair."""

    def __init__(self, fp: FoldPlan, targets: Sequence[str], lookahead: Mapping[str, int],
                 ts_by_pair: Mapping[str, np.ndarray], scaled: Sequence[str]):
        self.fp, self.targets, self.lookahead, self.ts = fp, tuple(targets), dict(lookahead), ts_by_pair
        self.scaled = tuple(scaled)
        self.seconds = 0.0  # fold construction time (columns and cells), summed over threads

    def add(self, pair: str, frame: pl.DataFrame, pool: np.ndarray) -> pl.DataFrame:
        """`frame` (float64 as stored, with the targets) plus the three int8 cv columns; `pool` marks pool rows."""
        t0 = time.perf_counter()
        ts = frame["ts"].dt.cast_time_unit("us").cast(pl.Int64).to_numpy()
        cols = self.fp.columns(self.ts[pair], ts, row_spans(frame, self.targets, self.lookahead), pool)
        out = frame.with_columns([pl.Series(k, v, dtype=pl.Int8) for k, v in cols.items()])
        self.seconds += time.perf_counter() - t0
        return out

    def cells(self, train: pl.DataFrame) -> list[tuple[tuple[int, int, int], int, Moments]]:
        """Rows and scaler moments (count, mean, M2 per column, NULLs ignored) of the pool rows per cv cell, in one
        group-by over the block."""
        t0 = time.perf_counter()
        first = train.select(CV_COLUMNS).row(0) if train.height else None
        if first is not None and train.select([(pl.col(c) == v).all() for c, v in zip(CV_COLUMNS, first)]).row(0) == (True,) * 3:
            m = Moments(self.scaled)  # one cell (most blocks: a month inside one group): the block's own moments
            m.update(train)
            self.seconds += time.perf_counter() - t0
            return [(tuple(int(v) for v in first), train.height, m)]
        aggs: list[pl.Expr] = [pl.len().alias("_rows")]
        for i, c in enumerate(self.scaled):
            x = pl.col(c).cast(pl.Float64)
            aggs += [x.count().alias(f"_n{i}"), x.mean().alias(f"_m{i}"), (x.var(ddof=0) * x.count()).alias(f"_q{i}")]
        g = train.group_by(list(CV_COLUMNS)).agg(aggs).sort(list(CV_COLUMNS))
        k = len(self.scaled)
        n = g.select([f"_n{i}" for i in range(k)]).to_numpy().astype(np.float64).reshape(g.height, k)
        mean = np.nan_to_num(g.select([f"_m{i}" for i in range(k)]).to_numpy().astype(np.float64).reshape(g.height, k))
        m2 = np.nan_to_num(g.select([f"_q{i}" for i in range(k)]).to_numpy().astype(np.float64).reshape(g.height, k))
        out = []
        for j, key in enumerate(g.select(CV_COLUMNS).iter_rows()):
            m = Moments(self.scaled)
            m.n, m.mean, m.m2 = n[j], np.where(n[j] > 0, mean[j], 0.0), np.where(n[j] > 0, m2[j], 0.0)
            out.append((tuple(int(v) for v in key), int(g["_rows"][j]), m))
        self.seconds += time.perf_counter() - t0
        return out

    def merged(self, cells: list[tuple[tuple[int, int, int], int, Moments]]) -> Moments:
        """The moments of all the cells' rows (the block's training moments, without a second pass over them)."""
        return combine(self.scaled, [m for _, _, m in cells])


def combine(columns: Sequence[str], parts: Sequence[Moments]) -> Moments:
    """Count, mean and M2 of the union of blocks, combined at once (the pairwise update of Chan et al. summed)."""
    out = Moments(columns)
    if not parts:
        return out
    n = np.stack([p.n for p in parts])
    mean = np.stack([p.mean for p in parts])
    m2 = np.stack([p.m2 for p in parts])
    total = n.sum(axis=0)
    safe = np.where(total > 0, total, 1.0)
    mu = (n * mean).sum(axis=0) / safe
    out.n, out.mean = total, np.where(total > 0, mu, 0.0)
    out.m2 = (m2 + n * (mean - out.mean) ** 2).sum(axis=0)
    return out


def finish(cv: CvColumns, cells: Mapping[str, list[tuple[tuple[int, int, int], int, Moments]]], scope: str,
           kinds: Sequence[str], pairs: Sequence[str], write: Any) -> dict[str, Any]:
    """Write metadata/folds.json and scalers/cv/split_XXX.json; return the folds document (with timings)."""
    t0 = time.perf_counter()
    fp = cv.fp
    frames = {}
    for pair, items in cells.items():
        if items:
            keys = np.asarray([k for k, _, _ in items], dtype=np.int64)
            frames[pair] = pl.DataFrame({"cv_group": keys[:, 0], "cv_reach": keys[:, 1], "cv_embargo": keys[:, 2],
                                         "rows": [n for _, n, _ in items]})
    counts = split_counts(fp, frames)
    paths = []
    keys = {p: np.asarray([k for k, _, _ in items], dtype=np.int64).reshape(-1, 3) for p, items in cells.items()}
    for s in range(len(fp.splits)):
        fit = ScalerFit(cv.scaled, scope, kinds)
        chosen: dict[str, list[Moments]] = {}
        for pair in sorted(cells):
            k = keys[pair]
            ok = fp.train_mask(s, k[:, 0], k[:, 1], k[:, 2]) if len(k) else np.zeros(0, dtype=bool)
            chosen[pair] = [m for (_, _, m), take in zip(cells[pair], ok) if take]
        if scope == GLOBAL:
            fit.moments[GLOBAL] = combine(cv.scaled, [m for pair in sorted(chosen) for m in chosen[pair]])
        else:
            fit.moments.update({pair: combine(cv.scaled, ms) for pair, ms in chosen.items()})
        rel = f"{CV_SCALERS}/split_{s:03d}.json"
        doc = fit.result(pairs).to_dict() | {"split": s, "fitted_on": f"the training rows of split {s} only"}
        write(rel, doc)
        paths.append(rel)
    folds_doc = fp.to_dict(span_rule(cv.targets, cv.lookahead), counts) | {"scalers": paths}
    folds_doc["cost_seconds"] = {"columns_and_cells": round(cv.seconds, 3), "splits_and_scalers": round(time.perf_counter() - t0, 3),
                                 "note": "wall seconds summed over the export's threads"}
    write(FOLDS_JSON, folds_doc)
    return folds_doc

