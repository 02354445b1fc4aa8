"""Truncation and perturbation of one family over its sampled partitions; in-process or in spawned workers.

Built-in families may run in a process pool (spawned, one per core, like the engine's executor):
each worker opens the store itself. User families always run in the calling process, where
they are registered.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import datetime
from typing import Any, Mapping

from bqx.core.declaration import Family
from bqx.core.registry import BUILTIN_MODULES, REGISTRY
from bqx.validate.boundary import check_boundary
from bqx.validate.perturbation import check_perturbation
from bqx.validate.recompute import open_window
from bqx.validate.report import CheckResult
from bqx.validate.sampling import choose_partitions, choose_timestamps, rng_for
from bqx.validate.storeview import StoreView
from bqx.validate.sweep import check_sweep, detection_probability
from bqx.validate.truncation import check_truncation, reference

Outcome = tuple[CheckResult, CheckResult, CheckResult, CheckResult, list[str]]


def check_family(view: StoreView, fam: Family, *, samples: int, partitions: int, month_tasks: int, seed: int,
                 data_end: datetime, cuts: int, sweeps: int) -> Outcome:
    """The truncation, perturbation and sweep results of `fam`, the sweep's context failures (for the
    boundary check) and the partitions they covered."""
    rng = rng_for(seed, fam.name)
    trunc, pert = CheckResult("truncation"), CheckResult("perturbation")
    sweep, context = CheckResult("sweep"), CheckResult("boundary")
    covered: list[str] = []
    chosen = choose_partitions(view.done(fam), month_tasks if fam.cross_pair else partitions, rng)
    share = -(-cuts // max(1, len(chosen)))  # every family gets `cuts` cut points over its partitions
    reaches: list[int] = []
    for pair, month in chosen:
        covered.append(f"{pair}/{month}" if pair else month)
        t0 = time.perf_counter()
        try:
            win = open_window(view, fam, pair, month)
            refs = reference(view, win)
        except Exception as exc:  # noqa: BLE001 - a broken store or family is reported, not raised
            trunc.error(f"reading {pair or 'every pair'} {month} failed: {type(exc).__name__}: {exc}", pair)
            continue
        ts = choose_timestamps(win.month_ts(), samples, rng, data_end)
        check_truncation(view, win, ts, trunc, refs)
        del refs  # the later checks do not need it: memory stays that of one recompute or two
        t1 = time.perf_counter()
        check_perturbation(view, win, ts, pert, rng)
        t2 = time.perf_counter()
        if cuts > 0 and sweeps > 0:
            reaches.append(check_sweep(view, win, sweep, context, rng_for(seed, fam.name, "sweep", pair or "", month),
                                       target=cuts, max_sweeps=sweeps, least=share))
        trunc.seconds += t1 - t0
        pert.seconds += t2 - t1
        sweep.seconds += time.perf_counter() - t2
    if cuts > 0 and sweeps > 0:
        reach = f"; reach of the last cuts {min(reaches)}-{max(reaches)} rows" if reaches else ""
        sweep.note = (f"{sweep.samples} cuts over {len(covered)} partition(s): P(catch) = "
                      f"{detection_probability(0.01, sweep.samples):.4f} for a 1-bar lookahead on 1 % of rows"
                      f"{reach} (declared context {fam.context(view.fam_params(fam))})")
    else:
        sweep.status, sweep.note = "skip", "no cuts asked"
    return trunc, pert, sweep, context, covered


_VIEWS: dict[tuple[str, str], StoreView] = {}


def _worker_view(store: str, params: Mapping[str, Any] | None) -> StoreView:
    """The store opened once per worker process."""
    import json
    import logging

    logging.getLogger("bqx").setLevel(logging.ERROR)
    key = (store, json.dumps(params, sort_keys=True, default=str))
    if key not in _VIEWS:
        _VIEWS[key] = StoreView(store, params)
    return _VIEWS[key]


def _job(store: str, params: Mapping[str, Any] | None, name: str, kwargs: dict[str, Any]) -> Outcome:
    """Worker entry point: one family."""
    view = _worker_view(store, params)
    try:
        return check_family(view, REGISTRY.get(name), **kwargs)
    finally:
        view.clear()


def boundaries(view: StoreView, fams: list[Family], seed: int, months: int, pairs: int) -> dict[str, CheckResult]:
    """The boundary check of `fams` (one group: all per-pair or all cross-pair), a result per family."""
    results = {f.name: CheckResult("boundary") for f in fams}
    check_boundary(view, fams, results, rng_for(seed, "boundary"), months=months, pairs=pairs)
    view.clear()
    return results


def _boundary_job(store: str, params: Mapping[str, Any] | None, names: list[str], seed: int, months: int,
                  pairs: int) -> dict[str, CheckResult]:
    """Worker entry point: the boundary check of one group of families."""
    return boundaries(_worker_view(store, params), [REGISTRY.get(n) for n in names], seed, months, pairs)


def submit_boundaries(pool: ProcessPoolExecutor, view: StoreView, fams: list[Family], seed: int, months: int,
                      pairs: int) -> list[tuple[list[Family], Future]]:
    """The boundary checks of the per-pair and of the cross-pair families as two jobs after the families' (so
    that at most two large recomputes, one per worker, are in memory at once)."""
    groups = [[f for f in fams if f.cross_pair == cross] for cross in (True, False)]
    return [(g, pool.submit(_boundary_job, str(view.root), view.params, [f.name for f in g], seed, months, pairs))
            for g in groups if g]


def poolable(fam: Family) -> bool:
    """Built-in families: a fresh spawned process registers them by importing their module."""
    return fam.module in BUILTIN_MODULES


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def cost(fam: Family) -> float:
    """A rough order of work, largest first, so the pool's lanes end together."""
    return (1000.0 if fam.cross_pair else 0.0) + len(fam.column_names()) + len(fam.inputs)


def submit_all(view: StoreView, fams: list[Family], workers: int, kwargs: dict[str, Any]) -> tuple[ProcessPoolExecutor | None, dict[str, Future]]:
    """Start the pool's jobs (largest first); returns the pool and a future per family name."""
    if workers <= 1 or len(fams) < 2:
        return None, {}
    import multiprocessing as mp

    from bqx.engine.lifeline import bind_to_driver

    # workers end with this process, also when it is killed (they would otherwise idle on, each holding its memory)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=bind_to_driver,
                               initargs=(os.getpid(),))
    futures = {f.name: pool.submit(_job, str(view.root), view.params, f.name, kwargs)
               for f in sorted(fams, key=cost, reverse=True)}
    return pool, futures
