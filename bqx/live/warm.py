"""A live session's starting point: what the store knows (params, baseline, anchors, pair infos) and each pair's tail."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import polars as pl

from bqx.store.layout import BARS, bars_stats, partition_rel, read_partition
from bqx.store.state import StoreState, open_state
from bqx.errors import UsageError
from bqx.live.plan import LivePlan


def store_state(root: str | os.PathLike[str], pairs: Sequence[str], state: StoreState | None = None) -> StoreState:
    """The store's state (`state` when opened already), refused unless a run fixed its baseline and every pair has bars."""
    state = state or open_state(root)
    if not state.has_manifest:
        raise UsageError(f"no bqx store at {root} (no manifest)", hint="Run `bqx run --store DIR` first; live continues a store.")
    if state.baseline is None:
        raise UsageError(f"store {root} has no baseline time yet", hint="Run `bqx run` on it first.")
    missing = [p for p in pairs if p not in state.catalog]
    if missing:
        raise UsageError(f"pairs {missing} have no bars in store {root}; live needs each pair's history",
                         hint="Ingest their bars and run `bqx run` first, or leave them out of --pairs.")
    return state


def stage_of_column(plan: LivePlan) -> dict[str, list[str]]:
    """Stored stage -> the cached columns it holds (views are not stored)."""
    out: dict[str, list[str]] = {}
    for f in plan.families:
        if not f.family.view:
            out.setdefault(f.family.stage, []).extend(f.columns)
    return out


def read_tail(root: Path | str, pair: str, plan: LivePlan, until: datetime | None) -> pl.DataFrame:
    """The pair's last `plan.rows` bars before `until` (all if None) with the stored feature columns of those rows.

    Read through the store's backend (a local directory or s3://), newest month first, until enough rows."""
    months = sorted(m for p, m in bars_stats(root) if p == pair)
    if until is not None:
        months = [m for m in months if m <= until.strftime("%Y-%m")]
    want = plan.rows
    parts: list[pl.DataFrame] = []
    n = 0
    used: list[str] = []
    for month in reversed(months):
        bars = read_partition(root, partition_rel(BARS, pair, month))
        if until is not None:
            bars = bars.filter(pl.col("ts") < until)
        for stage, cols in stage_of_column(plan).items():
            try:
                up = read_partition(root, partition_rel(stage, pair, month), ["ts", *cols])
            except FileNotFoundError:
                raise UsageError(f"stage {stage} of {pair} {month} is not in store {root}",
                                 hint="Run `bqx run` to bring the store up to date before going live.") from None
            up = up.join(bars.select("ts"), on="ts", how="semi")
            if up.height != bars.height or not up["ts"].equals(bars["ts"]):
                raise UsageError(f"stage {stage} of {pair} {month} is not aligned with its bars",
                                 hint="Run `bqx run` to bring the store up to date.")
            bars = bars.hstack(up.drop("ts"))
        parts.insert(0, bars)
        used.insert(0, month)
        n += bars.height
        if n >= want:
            break
    if not parts or n == 0:
        raise UsageError(f"{pair} has no stored bars" + (f" before {until.isoformat()}" if until else ""))
    return pl.concat(parts, how="diagonal_relaxed").tail(want)


def anchors_for(plan: LivePlan, state: StoreState, pairs: Sequence[str]) -> dict[str, Any]:
    """family -> its anchor (cross-pair) or {pair: anchor}, as the batch tasks get them."""
    out: dict[str, Any] = {}
    for f in plan.families:
        if f.family.anchor is None:
            continue
        if f.family.cross_pair:
            a = state.anchors.get((f.name, ""))
            if a is None:
                raise UsageError(f"family {f.name}: the store has no anchor", hint="Run `bqx run` first.")
            out[f.name] = a
        else:
            missing = [p for p in pairs if (f.name, p) not in state.anchors]
            if missing:
                raise UsageError(f"family {f.name}: no stored anchor for {missing}", hint="Run `bqx run` first.")
            out[f.name] = {p: state.anchors[(f.name, p)] for p in pairs}
    return out

