"""What every export sink decides before it writes a row: the selection, the validation gate, the purge, the split plan, the scaled columns."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from bqx.errors import UsageError
from bqx.export import source
from bqx.export.options import ExportOptions
from bqx.export.outcome import ExportRefusedError, validation_status
from bqx.export.scaler import ScalerFit
from bqx.export.spans import largest_span
from bqx.export.splits import SplitPlan, plan_splits


@dataclass
class ExportPlan:
    sel: Any  # source.Selection
    plan: SplitPlan
    purge: int
    horizon: int  # the largest span of the exported targets and labels (bars)
    fit: ScalerFit  # empty; fed with training rows by the sink
    scaled: list[str]  # the columns the scaler covers
    dtype: Any  # pl.Float32 or pl.Float64
    passed: bool  # the latest validation passed
    report: Any  # the latest validation report (or None)
    why: str  # its status in words
    dropped: tuple[str, ...] = field(default_factory=tuple)  # columns left out: no value in the store for any pair
    drop_empty: bool = False
    ts_by_pair: Any = None  # pair -> sorted bar timestamps (µs), kept for --cv


def prepare_export(store: Any, options: ExportOptions) -> ExportPlan:
    """Check the options, refuse a store whose latest validation did not pass (unless `no_validate`), plan the splits."""
    pairs, families, split, train_end, val_end = (options.pairs, options.families, options.split, options.train_end,
                                                  options.val_end)
    purge, embargo, scaler, precision = options.purge, options.embargo, options.scaler, options.precision
    scale_kinds, scale_targets, no_validate = options.scale_kinds, options.scale_targets, options.no_validate
    say, drop_empty, targets, cv = options.say, options.drop_empty, options.targets, bool(options.cv)
    if precision not in ("float32", "float64"):
        raise UsageError(f"--precision must be float32 or float64, got {precision!r}")
    sel = source.select(store, pairs, families, targets)
    passed, report, why = validation_status(store, sel.state)  # the state the selection read: one manifest read
    if not passed and not no_validate:
        raise ExportRefusedError(f"refusing to export store {store}: {why}.",
                                 hint="Run `bqx validate` first, or pass --no-validate (recorded in the export's metadata).")
    horizon = largest_span(sel.targets, {r["name"]: r["lookahead"] for r in sel.catalog})
    purge = horizon if purge is None else int(purge)
    if purge < horizon:
        raise UsageError(f"purge {purge} bars is shorter than the largest span {horizon} of the exported targets and "
                         "labels: training rows' targets would reach into validation", hint=f"Use --purge {horizon} or more.")
    say(f"reading bar timestamps of {len(sel.pairs)} pairs")
    ts_by_pair = {p: source.pair_ts(sel, p) for p in sel.pairs}
    if cv:  # the pool (train and validation as one range) and the test split
        from bqx.export.folds import pool_plan

        plan = pool_plan(ts_by_pair, split=split, train_end=train_end, val_end=val_end, purge=purge, embargo=embargo)
    else:
        plan = plan_splits(ts_by_pair, fractions=split, train_end=train_end, validation_end=val_end, purge=purge,
                           embargo=embargo)
    dropped: tuple[str, ...] = ()
    if drop_empty:
        sel, dropped = drop_empty_columns(sel)
        if dropped:
            say(f"dropping {len(dropped)} columns with no value in the store for any pair: {', '.join(dropped[:5])}"
                + (", ..." if len(dropped) > 5 else ""))
    kinds = tuple(scale_kinds)
    kept = set(sel.columns)
    scaled = [r["name"] for r in sel.catalog if r["kind"] in kinds and (scale_targets or r["name"] not in sel.targets)
              and r["name"] in kept]
    dtype = pl.Float32 if precision == "float32" else pl.Float64
    return ExportPlan(sel, plan, purge, horizon, ScalerFit(scaled, scaler, kinds), scaled, dtype, passed, report, why,
                      dropped, drop_empty, ts_by_pair if cv else None)


def drop_empty_columns(sel: Any) -> tuple[Any, tuple[str, ...]]:
    """The selection without its stored feature columns that have no value for any exported pair (read from
    the stage files' footers, bqx.export.columns), and those columns. Targets and views are always kept."""
    from bqx.engine.plan import stage_specs
    from bqx.export.columns import empty_in_store

    owner = {c: name for name, spec in stage_specs(sel.params or None).items() for c in spec.columns}
    by_stage: dict[str, list[str]] = {}
    for c in sel.features:
        if c in owner:
            by_stage.setdefault(owner[c], []).append(c)
    gone = set(empty_in_store(sel.store, sel.pairs, sel.months, by_stage))
    if not gone:
        return sel, ()
    return replace(sel, features=tuple(c for c in sel.features if c not in gone)), tuple(c for c in sel.features if c in gone)
