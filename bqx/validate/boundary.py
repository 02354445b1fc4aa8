"""The boundary check: a month computed with the family's declared context equals the continuous series.

For sampled months that have a previous month, the whole chain of the checked families is
computed afresh from bars, continuously from a bounded start (runner.compute_frames with the
store's anchors, baseline and parameters; nothing is read from the store): REFERENCE_LEAD times
the chain's composed context (each family's context plus the largest of its inputs'), and at
least MIN_LEAD bars, before the month, or the pair's first bar when that is later. The declared
convergence: a family whose value depends on bars further back than REFERENCE_LEAD x its composed
context (an expanding statistic from the first bar) differs here and is a context error; one that
depends on at most its context agrees exactly as it would from the first bar, so memory and time
do not grow with the months before the checked one. Each family is then
recomputed alone on the month's rows plus its own declared context (inputs taken from the
continuous chain, rows trimmed by the engine's own rule, bqx.engine.window) and compared with the continuous values
over the month's first `rows` bars, where a too-short context shows. A family that passes
truncation and perturbation but fails here has a context error, not a leak.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Mapping

import numpy as np
import polars as pl

from bqx.bar_schema import BAR_COLUMNS
from bqx.core.declaration import Family
from bqx.core.registry import REGISTRY
from bqx.core.runner import compute_frames, resolve
from bqx.engine.window import task_frames
from bqx.validate.recompute import compute
from bqx.validate.report import CheckResult
from bqx.validate.sampling import order_pairs
from bqx.validate.storeview import StoreView
from bqx.validate.truncation import compare_rows


REFERENCE_LEAD = 3  # the continuous reference starts this many composed contexts before the month ...
MIN_LEAD = 20_000  # ... and at least this many bars before it


def boundary_months(view: StoreView, k: int, rng: np.random.Generator) -> list[str]:
    """Up to k months that some pair entered from a previous month: the earliest first, then random."""
    months = view.months()
    candidates = [m for m in months[1:] if any(m in ms and ms.index(m) > 0 for ms in view.months_by_pair.values())]
    if not candidates or k <= 0:
        return []
    order = [candidates[0]] + [candidates[i] for i in rng.permutation(len(candidates))]
    return list(dict.fromkeys(order))[:k]


def composed_context(view: StoreView, chain: list[Family]) -> int:
    """The largest context along the chain: a family's own plus the largest of its inputs' (bars: 0)."""
    eff: dict[str, int] = {}
    for fam in chain:  # dependency order
        eff[fam.name] = fam.context(view.fam_params(fam)) + max((eff.get(i, 0) for i in fam.inputs), default=0)
    return max(eff.values(), default=0)


def reference_lead(view: StoreView, chain: list[Family]) -> int:
    """Bars before the month from which the continuous reference starts."""
    return max(MIN_LEAD, REFERENCE_LEAD * composed_context(view, chain))


def compare_rows_after(view: StoreView, fam: Family, pair: str, month_start: datetime, cont: pl.DataFrame,
                       got: pl.DataFrame, result: CheckResult, detail: str) -> None:
    names = list(fam.column_names(view.fam_params(fam)))
    want = cont.filter(pl.col("ts") >= month_start).select("ts", *names)
    got = got.filter(pl.col("ts") >= month_start).select("ts", *names)

    class _W:  # compare_rows needs the columns only
        columns = tuple(fam.columns(view.fam_params(fam)))

    compare_rows(_W, want, got, pair, result, want, detail)  # type: ignore[arg-type]


def _keep(fam: Family, frame: pl.DataFrame, view: StoreView) -> pl.DataFrame:
    """Bars and the columns of the family's direct inputs, as its task would read them."""
    cols = [c for c in BAR_COLUMNS if c in frame.columns]
    for name in fam.inputs:
        if name != "bars":
            cols += [c for c in REGISTRY.get(name).column_names(view.fam_params(REGISTRY.get(name))) if c not in cols]
    return frame.select(cols)


def compared_rows(view: StoreView, fams: list[Family]) -> int:
    """Rows compared after the month's start: twice the largest context or warm-up of the families, at least 2,000."""
    return max([2000] + [2 * max([f.context(view.fam_params(f))] + [c.warmup for c in f.columns(view.fam_params(f))])
                         for f in fams])


def check_boundary(view: StoreView, fams: list[Family], results: Mapping[str, CheckResult], rng: np.random.Generator,
                   *, months: int, pairs: int) -> None:
    """Fill each family's boundary CheckResult (per-pair families on `pairs` pairs, cross-pair ones on every pair;
    each group compared over its own `compared_rows`)."""
    chosen = boundary_months(view, months, rng)
    if not chosen:
        for f in fams:
            results[f.name].status = "skip"
            results[f.name].note = "one month only"
        return
    anchors = view.anchors_for_chain()
    per_pair = [f for f in fams if not f.cross_pair]
    cross = [f for f in fams if f.cross_pair]
    for month in chosen:
        start, _ = view.month_bounds(month)
        if per_pair:
            entered = [p for p in view.pairs() if month in view.months_by_pair[p] and view.months_by_pair[p].index(month) > 0]
            chain = resolve([f.name for f in per_pair])
            for pair in order_pairs(entered, rng)[:pairs]:
                _run_chain(view, per_pair, chain, month, start, [pair], compared_rows(view, per_pair), anchors, results)
        if cross:
            chain = resolve([f.name for f in cross])
            _run_chain(view, cross, chain, month, start, view.pairs_in(month), compared_rows(view, cross), anchors,
                       results)


def _run_chain(view: StoreView, fams: list[Family], chain: list[Family], month: str, start: datetime,
               pairs: list[str], rows: int, anchors: Mapping[str, object], results: Mapping[str, CheckResult]) -> None:
    t0 = time.perf_counter()
    month_end = view.month_bounds(month)[1]
    lead = reference_lead(view, chain)
    bars, firsts = {}, {}
    for p in pairs:
        b = view.bars(p, view.months_before(p, month, lead))
        first = int(b["ts"].search_sorted(start, side="left"))
        b = b.slice(max(0, first - lead))
        firsts[p] = int(b["ts"].search_sorted(start, side="left"))
        bars[p] = b
    ends = [bars[p]["ts"][min(firsts[p] + rows, bars[p].height) - 1] for p in pairs if bars[p].height > firsts[p]]
    if not ends:
        return
    end = min(ends)
    bars = {p: b.filter(pl.col("ts") <= end) for p, b in bars.items()}
    try:
        cont, _ = compute_frames(bars, chain, params=view.params, infos=view.infos, baseline=view.baseline,
                                 anchors={k: (dict(v) if isinstance(v, dict) else v) for k, v in anchors.items()})
    except Exception as exc:  # noqa: BLE001
        for f in fams:
            results[f.name].error(f"continuous chain of {month} raised {type(exc).__name__}: {exc}")
        return
    spent = time.perf_counter() - t0
    for fam in fams:
        res = results[fam.name]
        t1 = time.perf_counter()
        ctx = fam.context(view.fam_params(fam))
        where = "all pairs" if fam.cross_pair else pairs[0]
        detail = (f"{month} from {where}: computed with its declared context {ctx} vs continuously from "
                  f"{lead} bars earlier (or the first bar)")
        own = task_frames(cont, start, month_end, context=ctx, lookahead=0, month_task=fam.cross_pair)
        sub = {p: _keep(fam, f, view) for p, f in own.items()}
        try:
            got = compute(view, fam, sub)
        except Exception as exc:  # noqa: BLE001
            res.error(f"{detail}: recompute raised {type(exc).__name__}: {exc}")
            continue
        res.samples += 1
        for p, frame in got.items():
            compare_rows_after(view, fam, p, start, cont[p], frame, res, detail)
        res.seconds += time.perf_counter() - t1 + spent / len(fams)
