"""What `bqx export --cv` adds while the export streams: the cv columns of each row, the cells
(rows and scaler moments per (pair, cv_group, cv_reach, cv_embargo)), and at the end
metadata/folds.json and one scaler per split in scalers/cv/ fitted on that split's training rows.
"""

from __future__ import annotations

import json
import time
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from bqx.export.folds import CV_COLUMNS, CV_SCALERS, FOLDS_JSON, FoldPlan, split_counts
from bqx.export.scaler import Moments, ScalerFit
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
        """Rows and scaler moments of the pool rows per cv cell (the time counted is the partitioning only: the
        moments replace the block's own, see `merged`)."""
        t0 = time.perf_counter()
        spent = 0.0
        out = []
        for key, part in sorted(train.partition_by(list(CV_COLUMNS), as_dict=True).items()):
            t1 = time.perf_counter()
            m = Moments(self.scaled)
            m.update(part)
            spent += time.perf_counter() - t1
            out.append((tuple(int(k) for k in key), part.height, m))
        self.seconds += time.perf_counter() - t0 - spent
        return out

    def merged(self, cells: list[tuple[tuple[int, int, int], int, Moments]]) -> Moments:
        """The moments of all the cells' rows (the block's training moments, without a second pass over them)."""
        m = Moments(self.scaled)
        for _, _, part in cells:
            m.merge(part)
        return m


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
    for s in range(len(fp.splits)):
        fit = ScalerFit(cv.scaled, scope, kinds)
        for pair in sorted(cells):
            items = cells[pair]
            if not items:
                continue
            keys = np.asarray([k for k, _, _ in items], dtype=np.int64)
            ok = fp.train_mask(s, keys[:, 0], keys[:, 1], keys[:, 2])
            for (_, _, m), take in zip(items, ok):
                if take:
                    fit.merge(pair, m)
        rel = f"{CV_SCALERS}/split_{s:03d}.json"
        doc = fit.result(pairs).to_dict() | {"split": s, "fitted_on": f"the training rows of split {s} only"}
        write(rel, doc)
        paths.append(rel)
    folds_doc = fp.to_dict(span_rule(cv.targets, cv.lookahead), counts) | {"scalers": paths}
    folds_doc["cost_seconds"] = {"columns_and_cells": round(cv.seconds, 3), "splits_and_scalers": round(time.perf_counter() - t0, 3),
                                 "note": "wall seconds summed over the export's threads; the cells' scaler moments, which "
                                         "replace the blocks' own, are not counted"}
    write(FOLDS_JSON, folds_doc)
    return folds_doc


def dumps(doc: Any) -> bytes:
    return (json.dumps(doc, indent=1, default=str, allow_nan=False) + "\n").encode()
