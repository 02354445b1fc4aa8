"""What a live session computes: the families in dependency order, their context, the rows each column keeps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from bqx.bar_schema import BAR_COLUMNS
from bqx.core.declaration import Family
from bqx.core.registry import REGISTRY
from bqx.core.runner import params_for, resolve, visible_columns

#: A cross-pair family's window starts at the earliest pair's context row (PIPELINE.md §4, month
#: tasks): a pair with denser bars than the sparsest one needs more rows than the context.
CROSS_MARGIN = 2


@dataclass(frozen=True)
class LiveFamily:
    family: Family
    params: Mapping[str, Any]
    context: int  # rows before the new bar (own context: inputs come from the cache, computed in full)
    visible: tuple[str, ...]  # ts, bar columns, input families' columns
    columns: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.family.name

    @property
    def rows(self) -> int:
        """Rows handed to a per-pair family: its context, the new bar and one more, because polars divides a
        column by a scalar as a multiplication by its reciprocal except on a one-row column (an ulp apart)."""
        return self.context + 2


@dataclass(frozen=True)
class LivePlan:
    """Every family without lookahead (targets need the future), views included, in dependency order."""

    families: tuple[LiveFamily, ...]
    depth: Mapping[str, int]  # column -> rows to keep per pair (ts and bars: the deepest family)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for f in self.families for c in f.columns)

    @property
    def rows(self) -> int:
        return max(self.depth.values())


def live_plan(params: Mapping[str, Mapping[str, Any]] | None = None, names: list[str] | None = None) -> LivePlan:
    order = resolve(names)
    looking = {f.name for f in order if f.lookahead(params_for(f, params)) > 0}
    keep: list[Family] = []
    for fam in order:
        if fam.name in looking or any(d in looking for d in fam.inputs):
            looking.add(fam.name)
            continue
        keep.append(fam)
    fams = []
    for fam in keep:
        p = params_for(fam, params)
        fams.append(LiveFamily(fam, p, fam.context(p), tuple(visible_columns(fam, params)), fam.column_names(p)))
    depth: dict[str, int] = {c: 1 for f in fams for c in f.columns}
    need = max((_rows(f) for f in fams), default=1)
    for c in BAR_COLUMNS:
        depth[c] = need
    for f in fams:
        for dep in f.family.inputs:
            if dep == "bars":
                continue
            for c in REGISTRY.get(dep).column_names(params_for(REGISTRY.get(dep), params)):
                depth[c] = max(depth[c], _rows(f))
    return LivePlan(tuple(fams), depth)


def _rows(f: LiveFamily) -> int:
    return f.rows * (CROSS_MARGIN if f.family.cross_pair else 1)


def reads_depth(plan: LivePlan, reads: Mapping[tuple[str, Any], Sequence[str]]) -> dict[str, int]:
    """Rows each column must keep once the columns every family reads are known (1 for the rest: carried rows)."""
    depth: dict[str, int] = {c: 1 for c in plan.columns}
    for c in BAR_COLUMNS:
        depth[c] = 1
    by_name = {f.name: f for f in plan.families}
    for (name, _), cols in reads.items():
        f = by_name[name]
        for c in cols:
            if c in depth:
                depth[c] = max(depth[c], _rows(f))
    for f in plan.families:  # a family whose reads are unknown (none probed) keeps all it may read
        if not any(k[0] == f.name for k in reads):
            for c in f.visible:
                if c in depth:
                    depth[c] = max(depth[c], _rows(f))
    return depth
