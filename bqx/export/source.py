"""What an export reads from a store: pairs, months, the selected columns, one pair-month at a time.

Stored columns and views come from the engine's `load` (views computed with their context
rows); this module decides which families and columns are exported and checks that every
selected stage is current (bqx.engine.gate: the partitions come from the manifest, and a failed,
blocked, stale or missing task or a vanished bars file refuses the export), and every file read is
checked against the checksum the manifest recorded when it was written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path  # noqa: F401 - Selection.store's type
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from bqx.engine.gate import inspect, require_current
from bqx.core.declaration import PairInfo
from bqx.store.state import StoreState, open_state
from bqx.store.checksum import expected_hashes, read_checked_frame
from bqx.store.layout import BARS, has_bars, partition_rel, read_partition, store_root
from bqx.errors import UsageError
from bqx.core.registry import REGISTRY
from bqx.core.runner import params_for, visible_columns
from bqx.export.spans import pick_targets

TARGETS = "targets"
TARGET_STAGE = "targets"  # the families of this stage (targets, labels) are exported as targets


@dataclass(frozen=True)
class Selection:
    """The families, columns and partitions of one export."""

    store: Path | str  # a Path, or the URL of a store on object storage (bqx.store.layout.store_root)
    pairs: tuple[str, ...]
    months: Mapping[str, tuple[str, ...]]  # pair -> months with bars
    families: tuple[str, ...]  # exported families, registry order, targets last
    features: tuple[str, ...]  # feature columns (views included), in family order
    targets: tuple[str, ...]
    params: Mapping[str, Mapping[str, Any]]
    catalog: tuple[dict[str, Any], ...]
    hashes: Mapping[str, str] = field(default_factory=dict)  # path in store -> checksum the manifest recorded
    state: StoreState | None = None  # the store's state as read for this selection (its manifest read once)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.features + self.targets

    @property
    def baseline(self) -> datetime | None:
        """The store's baseline time (bqx.store.state)."""
        return self.state.baseline if self.state is not None else None

    def info(self, pair: str) -> PairInfo:
        """The store's PairInfo of `pair`."""
        assert self.state is not None, "a selection made by select() carries the store's state"
        return self.state.pair_info(pair)


def select(store: str | os.PathLike[str], pairs: Sequence[str] | None = None,
           families: Sequence[str] | None = None, targets: Sequence[str] | None = None,
           action: str = "export") -> Selection:
    """Resolve pairs, months and columns; refuse unknown or missing families and incomplete stages.

    `targets`: which target and label columns to export (default all of the targets stage's stored
    families: the fixed-horizon targets and the labels); see bqx.export.spans.pick_targets."""
    from bqx.catalog import catalog

    root = store_root(store)
    if not has_bars(root):
        raise UsageError(f"{root} is not a bqx store (no bars/ directory)",
                         hint="Run `bqx run --store DIR` first, or pass the right --store.")
    store_state = open_state(store)
    if not store_state.has_manifest:
        raise UsageError(f"{root} is not a bqx store (no manifest.sqlite)", hint="Run `bqx run --store DIR` first.")
    computed = store_state.stages()
    hashes = expected_hashes(store_state)
    params = store_state.params

    def available(name: str) -> bool:
        fam = REGISTRY.get(name)
        if fam.view:
            return all(available(i) for i in fam.inputs if i != "bars")
        return fam.stage in computed

    if families:
        names = list(dict.fromkeys(families))
        for name in names:
            REGISTRY.get(name)  # unknown names raise with suggestions
        absent = [n for n in names if not available(n)]
        if absent:
            raise UsageError(f"families {absent} are not in store {root}",
                             hint="Compute them first: bqx run --stages " + ",".join(REGISTRY.get(n).stage for n in absent))
    else:
        names = [f.name for f in REGISTRY if available(f.name)]
    if not available(TARGETS):
        raise UsageError(f"store {root} has no targets; an export needs them",
                         hint="Run `bqx run --stages targets` (or a full `bqx run`) first.")
    names = [n for n in names if REGISTRY.get(n).stage != TARGET_STAGE]
    tnames = [f.name for f in REGISTRY if f.stage == TARGET_STAGE and available(f.name)]
    stages = sorted({REGISTRY.get(s).stage for n in names + tnames for s in _stored_inputs(n)})
    state = inspect(root, pairs=pairs, stages=stages, store_state=store_state)  # partitions: the manifest's
    by_pair = {p: list(ms) for p, ms in state.months.items()}
    if pairs:
        missing = [p for p in pairs if p not in by_pair]
        if missing:
            raise UsageError(f"pairs {missing} have no bars in store {root}; it has "
                             f"{' '.join(sorted(inspect(root, stages=[], store_state=store_state).months)) or 'none'}")
        by_pair = {p: by_pair[p] for p in pairs}
    if not by_pair:
        raise UsageError(f"store {root} has no bars", hint="Run `bqx run` first.")
    require_current(root, pairs=list(by_pair), stages=stages, action=action, state=state)
    features = tuple(c for n in names for c in REGISTRY.get(n).column_names(params_for(REGISTRY.get(n), params)))
    by_family = {n: REGISTRY.get(n).column_names(params_for(REGISTRY.get(n), params)) for n in tnames}
    picked = pick_targets([c for n in tnames for c in by_family[n]], targets, by_family)
    tnames = [n for n in tnames if any(c in picked for c in by_family[n])]
    rows = tuple(r for r in catalog(names + tnames, params) if r["family"] not in tnames or r["name"] in picked)
    return Selection(root, tuple(sorted(by_pair)), {p: tuple(ms) for p, ms in sorted(by_pair.items())},
                     tuple(names + tnames), features, picked, params, rows, hashes, store_state)


def _stored_inputs(name: str) -> list[str]:
    """The stored family itself, or for a view the stored families it reads."""
    fam = REGISTRY.get(name)
    if not fam.view:
        return [name]
    return [s for i in fam.inputs if i != "bars" for s in _stored_inputs(i)]


def pair_ts(sel: Selection, pair: str) -> np.ndarray:
    """Sorted bar timestamps of one pair (int64 microseconds, UTC), from the bars dataset."""
    parts = [read_partition(sel.store, partition_rel(BARS, pair, m), ["ts"]) for m in sel.months[pair]]
    ts = pl.concat(parts)["ts"].sort() if parts else pl.Series("ts", [], dtype=pl.Datetime("us", "UTC"))
    return ts.dt.cast_time_unit("us").cast(pl.Int64).to_numpy()


def read_month(sel: Selection, pair: str, month: str) -> pl.DataFrame:
    """ts and every selected column of one pair-month, float64 as stored, views computed (via `load`)."""
    from bqx.engine.load import load

    check_month(sel, pair, month)
    frame = load(sel.store, pairs=[pair], start=month, end=month, columns=list(sel.columns)).collect()
    return frame.drop("pair").sort("ts")


def check_month(sel: Selection, pair: str, month: str) -> None:
    """Check the bars and stage files of one pair-month that the selection reads against their recorded
    checksums (for readers that go through `load`, which reads by path; `PairStream` checks as it reads)."""
    stages = {BARS} | {REGISTRY.get(s).stage for n in sel.families for s in _stored_inputs(n)}
    for stage in sorted(stages):
        rel = partition_rel(stage, pair, month)
        if rel in sel.hashes:
            read_checked_frame(sel.store, rel, sel.hashes, ["ts"])


class PairStream:
    """The pair's months in time order, as `read_month` gives them, each stage file read once.

    A month's frame is the bars' `ts` with the selected columns of each stored stage (read by
    column, aligned by row as the engine writes them); a view is computed on the month's rows
    after the last `context` rows of the previous month, kept from the frame read before, so no
    file is read twice.
    """

    def __init__(self, sel: Selection, pair: str):
        from bqx.engine.plan import stage_specs
        from bqx.core.declaration import Ctx

        self.sel, self.pair = sel, pair
        specs = stage_specs(sel.params or None)
        owner = {c: name for name, spec in specs.items() for c in spec.columns}
        self.views = [f for f in REGISTRY if f.view and any(c in sel.columns for c in f.column_names(params_for(f, sel.params)))]
        view_cols = {c for f in self.views for c in f.column_names(params_for(f, sel.params))}
        self.read: dict[str, list[str]] = {}
        for c in sel.columns:
            if c not in view_cols:
                self.read.setdefault(owner[c], []).append(c)
        for fam in self.views:
            for dep in fam.inputs:
                if dep != "bars":
                    d = REGISTRY.get(dep)
                    cols = self.read.setdefault(d.stage, [])
                    cols += [c for c in d.column_names(params_for(d, sel.params)) if c not in cols]
        baseline = sel.baseline or datetime(1970, 1, 1, tzinfo=timezone.utc)
        self.ctx = {f.name: Ctx(params=params_for(f, sel.params), baseline_time=baseline, pair=sel.info(pair))
                    for f in self.views}
        self.context = {f.name: int(f.context(params_for(f, sel.params))) for f in self.views}
        self.tail: dict[str, pl.DataFrame] = {}

    def months(self):
        """(month, frame) for each of the pair's months, in time order."""
        for month in self.sel.months[self.pair]:
            yield month, self.month(month)

    def _checked(self, stage: str, month: str, columns: list[str] | None = None) -> pl.DataFrame:
        """A store file (the columns given, or all) once its content matched the manifest's checksum
        (StoreIntegrityError if not)."""
        return read_checked_frame(self.sel.store, partition_rel(stage, self.pair, month), self.sel.hashes, columns)

    def month(self, month: str) -> pl.DataFrame:
        from bqx.core.runner import run_pair_family

        root, pair = self.sel.store, self.pair
        bars = self._checked(BARS, month)
        wide = bars if bars["ts"].is_sorted() else bars.sort("ts")
        for stage, cols in self.read.items():
            part = self._checked(stage, month, ["ts", *[c for c in cols if c not in wide.columns]])
            if part.height == wide.height and part["ts"].equals(wide["ts"]):
                wide = wide.hstack(part.drop("ts"))
            else:
                wide = wide.join(part, on="ts", how="left", maintain_order="left")
        out = [wide.select("ts")]
        for fam in self.views:
            n = self.context[fam.name]
            visible = set(visible_columns(fam, self.sel.params))
            frame = wide.select([c for c in wide.columns if c in visible])
            prev = self.tail.get(fam.name)
            if prev is not None and n:
                frame = pl.concat([prev, frame], how="vertical_relaxed")
            skip = frame.height - wide.height
            computed = run_pair_family(fam, frame, self.ctx[fam.name])
            out.append(computed.slice(skip))
            self.tail[fam.name] = frame.tail(n) if n else frame.clear()
        full = pl.concat(out, how="horizontal")
        extra = wide.select([c for c in self.sel.columns if c in wide.columns and c not in full.columns])
        return pl.concat([full, extra], how="horizontal").select("ts", *self.sel.columns)
