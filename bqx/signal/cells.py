"""The IC cells of one pair: each month read once (the export's reader), training rows kept, every (feature, target) IC."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from bqx.signal.rank_ic import MIN_ROWS, partition_ic
from bqx.signal.select import SignalSelection

CELL_SCHEMA = {"feature": pl.String, "target": pl.String, "pair": pl.String, "month": pl.String, "ic": pl.Float64,
               "n": pl.Int64}


@dataclass
class PairCells:
    """One pair's cells and where its time went (CPU seconds of the worker process)."""

    pair: str
    frame: pl.DataFrame
    timings: dict[str, float] = field(default_factory=lambda: {"read": 0.0, "rows": 0.0, "ic": 0.0})
    rows: int = 0  # training rows used, summed over the months
    months: int = 0
    sample: pl.DataFrame | None = None  # sampled training rows (pair, ts, end_ts, features, targets) as float32


def _sample(frame: pl.DataFrame, keep: pl.Series, k: int, span: int, seed: int, pair: str,
            cols: list[str]) -> pl.DataFrame:
    """Up to k training rows of a month, at random, with `end_ts` = the ts of row t + span (rows whose t + span
    lies beyond the month are left out, so every sampled row's reach is known exactly)."""
    end = frame["ts"].shift(-span).alias("end_ts")
    pool = frame.with_columns(end).filter(keep & end.is_not_null())
    if pool.height > k:
        idx = np.sort(np.random.default_rng(seed).choice(pool.height, size=k, replace=False))
        pool = pool[idx]
    return pool.select(pl.lit(pair).alias("pair"), "ts", "end_ts", pl.col(cols).cast(pl.Float32))


def pair_cells(ss: SignalSelection, pair: str, min_rows: int = MIN_ROWS, sample: int = 0) -> PairCells:
    """IC and row count of every (feature, target) in each computed month of `pair`; `sample` rows per month kept."""
    from bqx.export.source import PairStream

    out = PairCells(pair, pl.DataFrame(schema=CELL_SCHEMA))
    stream = PairStream(ss.sel, pair)
    wanted = set(ss.months[pair])
    features, targets = list(ss.features), [t.name for t in ss.targets]
    parts, samples = [], []
    span = max((t.horizon for t in ss.targets), default=0)
    for month in ss.read[pair]:
        t0 = time.process_time()
        frame = stream.month(month)
        t1 = time.process_time()
        out.timings["read"] += t1 - t0
        if month not in wanted:
            continue
        keep = (ss.plan.label(pair, frame["ts"]) == "train") if ss.plan is not None else pl.Series([True] * frame.height)
        if sample:
            seed = int.from_bytes(f"{pair}{month}".encode(), "little") % (2**32)
            samples.append(_sample(frame, keep, sample, span, seed, pair, features + targets))
        frame = frame.filter(keep)
        if frame.height == 0:
            continue
        x = _matrix(frame, features)
        y = _matrix(frame, targets)
        t2 = time.process_time()
        out.timings["rows"] += t2 - t1
        ic, n = partition_ic(x, y, min_rows)
        out.timings["ic"] += time.process_time() - t2
        out.rows += frame.height
        out.months += 1
        parts.append(pl.DataFrame({
            "feature": np.repeat(np.asarray(features, dtype=object), len(targets)),
            "target": np.tile(np.asarray(targets, dtype=object), len(features)),
            "pair": pair, "month": month,
            "ic": pl.Series(ic.ravel(), dtype=pl.Float64, nan_to_null=True),
            "n": n.ravel(),
        }, schema=CELL_SCHEMA))
    if parts:
        out.frame = pl.concat(parts)
    if samples:
        out.sample = pl.concat(samples)
    return out


def _matrix(frame: pl.DataFrame, cols: list[str]) -> np.ndarray:
    """(len(cols), rows) float64, C-contiguous, NULL as NaN (the layout the IC kernel walks)."""
    if not cols:
        return np.empty((0, frame.height))
    a = frame.select(pl.col(cols).cast(pl.Float64)).to_numpy(order="fortran")
    return np.ascontiguousarray(a.T)


def run_pair(args: tuple[Any, ...]) -> PairCells:
    """Process-pool entry: import the selection's families in a fresh worker, then `pair_cells`."""
    from bqx.engine.worker import load_families

    ss, pair, min_rows, sample, modules, single = args
    if single:  # the pool is the parallelism: one numba thread per worker
        import numba

        numba.set_num_threads(1)
    load_families(modules)
    return pair_cells(ss, pair, min_rows, sample)
