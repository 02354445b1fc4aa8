"""`compute_signal`: the IC table of a store and its summaries, written to `<store>/signal/`.

Pairs are spread over a local process pool (spawn; one pair's months are read in order so views
reuse the previous month's rows); each worker returns its pair's cells and where its time went.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import polars as pl

from bqx.core.registry import REGISTRY
from bqx.io import write_parquet
from bqx.store.backend import backend_for
from bqx.store.layout import store_root
from bqx.signal import cells as cells_mod
from bqx.signal.rank_ic import MIN_ROWS
from bqx.signal.select import SignalSelection, select
from bqx.signal.summary import family_summary, feature_summary

SIGNAL_DIR = "signal"
IC_FILE = "ic.parquet"
FEATURE_FILE = "summary.parquet"
FAMILY_FILE = "summary_family.parquet"
IMPORTANCE_FILE = "importance.parquet"  # written by bqx.signal.importance


@dataclass
class SignalResult:
    """What one `bqx signal` run computed and wrote."""

    directory: Path | str  # <store>/signal: a Path, or its URL in a store on object storage
    cells: pl.DataFrame  # feature, target, pair, month, ic, n
    features: pl.DataFrame  # the per (feature, target) summary
    families: pl.DataFrame  # the per (family, target) summary
    targets: list[str]
    split: str
    boundaries: dict[str, str]
    seconds: float
    workers: int
    timings: dict[str, float] = field(default_factory=dict)  # summed over workers: read, rows, ic; plus write
    partitions: int = 0
    rows: int = 0
    selection: SignalSelection | None = None
    sample: pl.DataFrame | None = None  # with sample_rows: training rows for `importance`, float32

    def to_dict(self, top: int = 20) -> dict[str, Any]:
        from bqx.signal.summary import strongest

        return {
            "directory": str(self.directory), "files": [IC_FILE, FEATURE_FILE, FAMILY_FILE],
            "split": self.split, "boundaries": self.boundaries, "targets": self.targets,
            "features": self.features["feature"].n_unique(), "partitions": self.partitions, "training_rows": self.rows,
            "cells": self.cells.height, "null_cells": self.cells["ic"].null_count(),
            "seconds": round(self.seconds, 2), "workers": self.workers,
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
            "top": strongest(self.features, top).to_dicts(),
        }


def compute_signal(store: str | os.PathLike[str], *, pairs: Sequence[str] | None = None,
                   families: Sequence[str] | None = None, start: str | None = None, end: str | None = None,
                   split: str = "train", fractions: Sequence[float] = (0.8, 0.1, 0.1), purge: int | None = None,
                   embargo: int = 1440, workers: int | None = None, min_rows: int = MIN_ROWS,
                   sample_rows: int = 0, progress: Callable[[int, int, str], None] | None = None) -> SignalResult:
    """Compute and write `<store>/signal/{ic,summary,summary_family}.parquet`.

    `progress(done, total, pair)` is called as each pair finishes. `workers` = 1 runs in this process.
    `sample_rows`: keep about that many training rows (an equal share per (pair, month), at random)
    for `bqx.signal.importance`.
    """
    from bqx.store.lock import read_lock

    with read_lock(store, "signal"):  # like validate and export: no run or ingest may change the store meanwhile
        t0 = time.perf_counter()
        ss = select(store, pairs=pairs, families=families, start=start, end=end, split=split, fractions=fractions,
                    purge=purge, embargo=embargo)
        todo = sorted(ss.months)
        n_workers = max(1, min(workers or os.cpu_count() or 1, len(todo)))
        per = -(-sample_rows // max(1, sum(len(ss.months[p]) for p in todo))) if sample_rows else 0
        results = _run_pairs(ss, todo, n_workers, min_rows, per, progress)
        frames = [r.frame for r in results if r.frame.height]
        cells = pl.concat(frames) if frames else pl.DataFrame(schema=cells_mod.CELL_SCHEMA)
        timings = {k: sum(r.timings[k] for r in results) for k in ("read", "rows", "ic")}
        t = time.perf_counter()
        feats = feature_summary(cells, ss.family_of, ss.targets)
        fams = family_summary(feats)
        timings["summary"] = time.perf_counter() - t
        t = time.perf_counter()
        out = signal_dir(store)
        write_signal_file(out, IC_FILE, cells)
        write_signal_file(out, FEATURE_FILE, feats)
        write_signal_file(out, FAMILY_FILE, fams)
        backend_for(out).delete(IMPORTANCE_FILE)  # an earlier run's; `importance` writes this run's
        timings["write"] = time.perf_counter() - t
        bounds = {k: v.isoformat() for k, v in ss.plan.boundaries.items()} if ss.plan is not None else {}
        samples = [r.sample for r in results if r.sample is not None and r.sample.height]
        return SignalResult(out, cells, feats, fams, [t.name for t in ss.targets], split, bounds, time.perf_counter() - t0,
                            n_workers, timings, sum(r.months for r in results), sum(r.rows for r in results), ss,
                            pl.concat(samples).sort("ts", "pair") if samples else None)


def signal_dir(store: str | os.PathLike[str]) -> Path | str:
    """`<store>/signal`: a Path in a local store, its URL in a store on object storage."""
    root = store_root(store)
    return root / SIGNAL_DIR if isinstance(root, Path) else backend_for(root).join(SIGNAL_DIR)


def write_signal_file(directory: Path | str, name: str, frame: pl.DataFrame) -> None:
    """Write one signal file atomically (a local file through a temporary name, an object with one PUT)."""
    if isinstance(directory, Path):
        write_parquet(frame, directory / name)
    else:
        backend_for(directory).write_parquet(name, frame)


def _run_pairs(ss: SignalSelection, todo: list[str], workers: int, min_rows: int, sample: int,
               progress: Callable[[int, int, str], None] | None) -> list[cells_mod.PairCells]:
    say = progress or (lambda done, total, pair: None)
    if workers == 1:
        out = []
        for i, pair in enumerate(todo, 1):
            out.append(cells_mod.pair_cells(ss, pair, min_rows, sample))
            say(i, len(todo), pair)
        return out
    modules = tuple((n, REGISTRY.get(n).module) for n in ss.sel.families)
    results: dict[str, cells_mod.PairCells] = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = {pool.submit(cells_mod.run_pair, (ss, pair, min_rows, sample, modules, True)): pair for pair in todo}
        try:
            while pending:
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for fut in done:
                    pair = pending.pop(fut)
                    results[pair] = fut.result()
                    say(len(results), len(todo), pair)
        except BaseException:  # a failed pair (or Ctrl-C): do not start the others
            for fut in pending:
                fut.cancel()
            raise
    return [results[p] for p in todo]
