"""A read-only view of a store for the validator: bars, stored columns, anchors, baseline, parameters.

Everything is read the way the engine's worker reads it (bqx.engine.worker): the same stage
specs, the same anchors and baseline from the manifest, the same pair infos, so a family
recomputed here sees exactly the inputs its task saw.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any, Mapping

import polars as pl

from bqx.engine.fingerprint import digest
from bqx.engine.partitions import add_months, month_start
from bqx.engine.plan import StageSpec, stage_specs
from bqx.engine.window import task_months, task_spans
from bqx.store.backend import backend_for
from bqx.store.layout import bars_stats, has_bars, partition_path, partition_rel, read_partition, store_root
from bqx.store.state import StoreState, open_state, pair_infos
from bqx.errors import UsageError
from bqx.core.declaration import Ctx, Family, PairInfo
from bqx.core.registry import REGISTRY
from bqx.core.runner import baseline_time, params_for


class StoreView:
    """The parts of a store that validation reads (declarations and manifest kept; data read on demand)."""

    def __init__(self, root: str | os.PathLike[str], params: Mapping[str, Mapping[str, Any]] | None = None,
                 state: StoreState | None = None):
        self.root = store_root(root)  # a Path, or the URL of a store on object storage
        self.backend = backend_for(self.root)
        state = state or open_state(root)
        if not state.has_manifest or not has_bars(self.root):
            raise UsageError(f"{self.root} is not a bqx store (no manifest.sqlite or bars/)",
                             hint="Run `bqx run --store DIR` first, or pass the right --store.")
        self.state = state
        self.tasks, self.anchor_rows, self.bars_rows = state.tasks, state.anchors, state.bars
        self.params = dict(params) if params is not None else (state.params or None)
        self.specs: dict[str, StageSpec] = stage_specs(self.params)
        self.bar_files = {k: v[0] for k, v in bars_stats(self.root).items()}  # (pair, month) -> file in the store
        self.months_by_pair: dict[str, list[str]] = {}
        for pair, month in self.bar_files:
            self.months_by_pair.setdefault(pair, []).append(month)
        if not self.bar_files:
            raise UsageError(f"store {self.root} has no bars", hint="Run `bqx run` first.")
        self.baseline = state.baseline or month_start(min(m for _, m in self.bar_files))
        self.infos: dict[str, PairInfo] = pair_infos(self.root, self.months_by_pair, state.catalog)

    # -- declarations ---------------------------------------------------------------------
    def fam_params(self, fam: Family) -> Mapping[str, Any]:
        return params_for(fam, self.params)

    def spec_of(self, fam: Family) -> StageSpec | None:
        spec = self.specs.get(fam.stage)
        return spec if spec is not None and fam.name in {f.name for f in spec.families} else None

    # -- partitions ------------------------------------------------------------------------
    def pairs(self) -> list[str]:
        return sorted(self.months_by_pair)

    def months(self) -> list[str]:
        return sorted({m for _, m in self.bar_files})

    def pairs_in(self, month: str) -> list[str]:
        return sorted(p for p, ms in self.months_by_pair.items() if month in ms)

    def done(self, fam: Family) -> list[tuple[str | None, str]]:
        """(pair or None, month) of the family's stored partitions whose task is done."""
        if fam.view:  # views are not stored: every partition of their stored inputs
            ups = [REGISTRY.get(i) for i in fam.inputs if i != "bars"]
            keys = sorted(self.bar_files)
            there = {rel for u in {u.stage for u in ups} for rel in self.backend.stats(u)}  # one listing per stage
            return [k for k in keys if all(partition_rel(u.stage, *k) in there for u in ups)]
        rows = [(k[1], k[2]) for k, t in self.tasks.items() if k[0] == fam.stage and t.status == "done"]
        if fam.cross_pair:
            return sorted({(None, m) for _, m in rows}, key=lambda k: k[1])
        return sorted((p, m) for p, m in rows if p is not None and (p, m) in self.bar_files)

    # -- data (nothing is kept between calls: memory stays that of the check that reads) ----------
    def bars(self, pair: str, months: list[str] | None = None) -> pl.DataFrame:
        """The pair's bars of `months` (default all), in time order."""
        use = sorted(self.months_by_pair[pair]) if months is None else sorted(months)
        parts = [self._read(self.bar_files[(pair, m)]).sort("ts") for m in use]
        return pl.concat(parts) if len(parts) != 1 else parts[0]

    def last_ts(self) -> datetime:
        """The last bar of the data (each pair's last month read, ts only)."""
        return max(self._read(self.bar_files[(p, max(ms))], ["ts"])["ts"].max()
                   for p, ms in self.months_by_pair.items())

    def _read(self, rel: str, columns: list[str] | None = None) -> pl.DataFrame:
        """A store file (the columns given, or all), through the store's backend."""
        return read_partition(self.root, rel, columns)

    def clear(self) -> None:
        """Nothing to forget: reads are not cached (kept for the callers that free memory between checks)."""

    def stored_family(self, fam: Family, pair: str, months: list[str] | None = None) -> pl.DataFrame:
        """The family's stored columns (ts + columns) of the pair over `months` (default all)."""
        use = sorted(self.months_by_pair[pair]) if months is None else sorted(months)
        cols = ["ts", *fam.column_names(self.fam_params(fam))]
        parts = []
        for m in use:
            rel = partition_rel(fam.stage, pair, m)
            try:
                parts.append(self._read(rel, cols).sort("ts"))
            except FileNotFoundError:
                raise FileNotFoundError(f"stage {fam.stage} has no stored partition {pair} {m} "
                                        f"({partition_path(self.root, fam.stage, pair, m)}); rerun `bqx run`") from None
        return pl.concat(parts) if len(parts) != 1 else parts[0]

    def input_frame(self, fam: Family, pair: str, months: list[str] | None = None) -> pl.DataFrame:
        """The pair's bars with the stored columns of the family's direct inputs, as its task read them."""
        use = sorted(self.months_by_pair[pair]) if months is None else sorted(months)
        return pl.concat([self._input_month(fam, pair, m) for m in use]) if len(use) != 1 else \
            self._input_month(fam, pair, use[0])

    def task_shape(self, fam: Family, pair: str | None) -> tuple[int, int, bool]:
        """(context, lookahead, month task) of the task that computed the family's partition: its stage's."""
        spec = self.spec_of(fam)
        p = self.fam_params(fam)
        if spec is None:  # a view: computed on its own, as load() computes it
            return fam.context(p), fam.lookahead(p), fam.cross_pair and pair is None
        return spec.context, spec.lookahead, spec.month_task and pair is None

    def task_frames(self, fam: Family, pair: str | None, month: str) -> dict[str, pl.DataFrame]:
        """Per pair, the rows the task of (family, pair or month) read, by the engine's own rule
        (bqx.engine.window: the same months, the same rows), with the stored columns of the family's inputs.
        Only `ts` is read to decide; each month's rows are then read, trimmed and joined into one copy."""
        context, lookahead, month_task = self.task_shape(fam, pair)
        rows = {k: self.rows_of(*k) for k in self.bar_files}
        reads = task_months(self.months_by_pair, rows, pair, month, context=context, lookahead=lookahead,
                            month_task=month_task)
        parts = {p: [(m, self._read(self.bar_files[(p, m)], ["ts"])["ts"]) for m in ms]
                 for p, ms in reads.items()}
        start, end = self.month_bounds(month)
        spans = task_spans(parts, start, end, context=context, lookahead=lookahead, month_task=month_task)
        out = {}
        for p, slices in spans.items():
            pieces = [self._input_month(fam, p, m).slice(a, b - a) for m, a, b in slices if b > a]
            if pieces:
                out[p] = pl.concat(pieces, rechunk=True) if len(pieces) > 1 else pieces[0].rechunk()
        return out

    def _input_month(self, fam: Family, pair: str, month: str) -> pl.DataFrame:
        frame = self.bars(pair, [month])
        for name in fam.inputs:
            if name == "bars":
                continue
            dep = REGISTRY.get(name)
            up = self.stored_family(dep, pair, [month])
            if up.height != frame.height or not up["ts"].equals(frame["ts"]):
                raise ValueError(f"stored {dep.stage} {pair} {month} has {up.height} rows not aligned with its "
                                 f"{frame.height} bars; rerun `bqx run`")
            frame = frame.hstack(up.drop("ts"))
        return frame

    def months_before(self, pair: str, month: str, rows: int) -> list[str]:
        """The months of the pair up to `month` that hold its `rows` previous bars, and `month` itself."""
        months = sorted(self.months_by_pair[pair])
        if month not in months:
            return []
        i = lo = months.index(month)
        n = 0
        while n < rows and lo > 0:
            lo -= 1
            n += self.rows_of(pair, months[lo])
        return months[lo: i + 1]

    def rows_of(self, pair: str, month: str) -> int:
        row = self.bars_rows.get((pair, month))
        if row is not None:
            return int(row[1])
        return self.bars(pair, [month]).height

    def anchor(self, fam: Family, pair: str | None) -> Mapping[str, Any] | None:
        if fam.anchor is None:
            return None
        value = self.anchor_rows.get((fam.name, pair or ""))
        if value is None:
            raise ValueError(f"family {fam.name}: the manifest has no anchor for {pair or 'the store'}; rerun `bqx run`")
        return value

    def anchors_for_chain(self) -> dict[str, Any]:
        """Anchors in runner.compute_frames form: family -> anchor (cross-pair) or {pair: anchor}."""
        out: dict[str, Any] = {}
        for (fam, pair), value in self.anchor_rows.items():
            if pair == "":
                out[fam] = dict(value)
            else:
                out.setdefault(fam, {})[pair] = dict(value)
        return out

    def ctx(self, fam: Family, pair: str | None) -> Ctx:
        return Ctx(params=self.fam_params(fam), baseline_time=self.baseline,
                   pair=self.infos[pair] if pair else None, pairs=self.infos, anchor=self.anchor(fam, pair))

    def month_bounds(self, month: str) -> tuple[datetime, datetime]:
        return month_start(month), month_start(add_months(month, 1))

    def fingerprint(self) -> str:
        """What the store holds now: every task's status and fingerprint, and every bars file's digest."""
        return store_fingerprint(self.tasks, self.bars_rows)


def store_fingerprint(tasks: Mapping[Any, Any], bars_rows: Mapping[Any, Any]) -> str:
    return digest({
        "tasks": sorted([k[0], k[1] or "", k[2], t.status, t.fingerprint or ""] for k, t in tasks.items()),
        "bars": sorted([k[0], k[1], v[0]] for k, v in bars_rows.items()),
    })


def current_fingerprint(root: str | os.PathLike[str], state: StoreState | None = None) -> str | None:
    """The fingerprint of the store's manifest state now (`state`: one already opened, else it is read)."""
    state = state or open_state(root)
    return store_fingerprint(state.tasks, state.bars) if state.has_manifest else None


__all__ = ["StoreView", "current_fingerprint", "baseline_time"]
