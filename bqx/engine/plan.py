"""The plan: stages resolved from the family declarations, their contexts, the task DAG and fingerprints.

Everything here is decided before a bar is computed: which stages exist (a stage with no family
is "not built"), what each stage reads (the stages of its families' inputs), how many rows of
context and lookahead its task needs (composed along the families of the stage), which months
each task reads, and each task's fingerprint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping, Sequence

from bqx.engine.fingerprint import code_digest, digest
from bqx.store.manifest import FORMAT_VERSION, TaskRow
from bqx.engine.partitions import Partition
from bqx.engine.window import task_months
from bqx.store.layout import RESERVED
from bqx.errors import ConfigError, UsageError
from bqx.core.declaration import Family
from bqx.core.registry import REGISTRY
from bqx.core.runner import params_for, resolve
from bqx.stages import STAGES, Stage

TaskKey = tuple[str, str | None, str]  # (stage, pair or None, month)
EST_ROWS_PER_MONTH = 31_000  # M1 bars of one pair in one month, before bars are known
EST_SECONDS_PER_CELL = 3e-8
EST_SECONDS_PER_TASK = 0.05
EST_BYTES_PER_CELL = 6.0


@dataclass(frozen=True)
class StageSpec:
    """A feature stage resolved for a parameter set."""

    stage: Stage
    families: tuple[Family, ...]  # dependency order, no views
    params: Mapping[str, Mapping[str, Any]]  # family -> resolved params
    inputs: tuple[str, ...]  # stored stages read (besides bars, always read)
    input_columns: Mapping[str, tuple[str, ...]]  # stored stage -> the columns of the input families it holds
    context: int
    lookahead: int
    month_task: bool
    columns: tuple[str, ...]
    tables: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.stage.name

    def modules(self) -> tuple[str, ...]:
        return tuple(sorted({f.module for f in self.families}))


def all_stages() -> list[Stage]:
    """The 18 stages of PIPELINE.md §3 plus any stage a user family declares."""
    known = {s.name for s in STAGES}
    extra: dict[str, Stage] = {}
    for fam in REGISTRY:
        if fam.stage not in known and fam.stage not in extra:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", fam.stage) or fam.stage in RESERVED:
                raise ConfigError(f"family {fam.name}: stage name {fam.stage!r} is not usable as a store directory",
                                  hint="Use lower-case letters, digits and _; not bars, tables or logs.")
            unit = "view" if fam.view else ("month" if fam.cross_pair else "pair-month")
            extra[fam.stage] = Stage(fam.stage, fam.stage, (), unit, f"user stage {fam.stage}")
    return list(STAGES) + list(extra.values())


def check_params(params: Mapping[str, Mapping[str, Any]] | None) -> None:
    for name, overrides in (params or {}).items():
        try:
            REGISTRY.get(name).resolve_params(overrides)
        except (KeyError, ValueError) as exc:
            raise ConfigError(str(exc).strip('"')) from None


def stage_specs(params: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, StageSpec]:
    """Every feature stage that has at least one (stored) family, in topological order."""
    check_params(params)
    fams = resolve(None, include_views=False)
    by_stage: dict[str, list[Family]] = {}
    for fam in fams:
        by_stage.setdefault(fam.stage, []).append(fam)
    specs: dict[str, StageSpec] = {}
    stages = {s.name: s for s in all_stages()}
    for name, members in by_stage.items():
        own = {f.name for f in members}
        p = {f.name: params_for(f, params) for f in members}
        inputs: list[str] = []
        input_columns: dict[str, list[str]] = {}
        eff_ctx: dict[str, int] = {}
        eff_look: dict[str, int] = {}
        for fam in members:  # dependency order
            inner = [d for d in fam.inputs if d in own]
            for dep in fam.inputs:
                if dep == "bars" or dep in own:
                    continue
                dep_fam = REGISTRY.get(dep)
                if dep_fam.view:
                    raise ConfigError(f"family {fam.name} reads {dep}, a view; views are not stored, so no family may read one")
                if dep_fam.stage not in inputs:
                    inputs.append(dep_fam.stage)
                cols = input_columns.setdefault(dep_fam.stage, [])
                cols += [c for c in dep_fam.column_names(params_for(dep_fam, params)) if c not in cols]
            eff_ctx[fam.name] = fam.context(p[fam.name]) + max((eff_ctx[d] for d in inner), default=0)
            eff_look[fam.name] = fam.lookahead(p[fam.name]) + max((eff_look[d] for d in inner), default=0)
        specs[name] = StageSpec(
            stage=stages[name],
            families=tuple(members),
            params=p,
            inputs=tuple(inputs),
            input_columns={s: tuple(c) for s, c in input_columns.items()},
            context=max(eff_ctx.values()),
            lookahead=max(eff_look.values()),
            month_task=any(f.cross_pair for f in members),
            columns=tuple(c for f in members for c in f.column_names(p[f.name])),
            tables=tuple(t for f in members for t in f.tables),
        )
    return {name: specs[name] for name in _topological(specs)}


def _topological(specs: Mapping[str, StageSpec]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}
    rank = {s.name: i for i, s in enumerate(all_stages())}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ConfigError(f"stages form a cycle: {' -> '.join(path + (name,))}")
        state[name] = 1
        for dep in sorted(specs[name].inputs, key=rank.get):
            visit(dep, path + (name,))
        state[name] = 2
        order.append(name)

    for name in sorted(specs, key=rank.get):
        visit(name, ())
    return order


def select_stages(specs: Mapping[str, StageSpec], wanted: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """(stages to plan: the wanted ones and everything they read, in order; the wanted ones by name)."""
    if wanted is None:
        return list(specs), list(specs)
    by_key = {s.id: s.name for s in all_stages()} | {s.name: s.name for s in all_stages()}
    names = []
    for key in wanted:
        if key not in by_key:
            known = ", ".join(f"{s.id} {s.name}" for s in all_stages())
            raise UsageError(f"unknown stage {key!r}; stages are: {known}")
        name = by_key[key]
        if name not in specs:
            raise UsageError(f"stage {name} has no family yet (not built); nothing to run for it")
        names.append(name)
    need: set[str] = set()

    def add(name: str) -> None:
        if name not in need:
            need.add(name)
            for dep in specs[name].inputs:
                add(dep)

    for n in names:
        add(n)
    return [s for s in specs if s in need], names


@dataclass
class Task:
    stage: str
    partition: Partition
    reads: dict[str, tuple[str, ...]]  # pair -> months read (context, own month, lookahead)
    deps: tuple[TaskKey, ...]
    fingerprint: str = ""
    rows: int = 0  # bar rows of the partition itself

    @property
    def key(self) -> TaskKey:
        return (self.stage, self.partition.pair, self.partition.month)


@dataclass
class BarsInventory:
    """What the planner knows of the bars: rows and content digest per (pair, month)."""

    rows: dict[tuple[str, str], int]
    digests: dict[tuple[str, str], str]
    months_by_pair: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        by: dict[str, list[str]] = {}
        for pair, month in sorted(self.rows):
            by.setdefault(pair, []).append(month)
        self.months_by_pair = by

    def pairs_in(self, month: str) -> list[str]:
        return sorted(p for p, ms in self.months_by_pair.items() if month in ms)


class TaskGraph:
    """Tasks created on demand with their dependencies first, so iteration order is a topological order."""

    def __init__(self, specs: Mapping[str, StageSpec], bars: BarsInventory, *, baseline: datetime,
                 anchors: Mapping[tuple[str, str], Mapping[str, Any]], infos: Mapping[str, Mapping[str, Any]]):
        self.specs = specs
        self.bars = bars
        self.baseline = baseline
        self.anchors = anchors
        self.infos = infos
        self.tasks: dict[TaskKey, Task] = {}
        self._code: dict[str, str] = {}

    def code(self, stage: str) -> str:
        if stage not in self._code:
            self._code[stage] = code_digest(self.specs[stage].modules())
        return self._code[stage]

    def add(self, stage: str, pair: str | None, month: str) -> Task:
        key = (stage, pair, month)
        if key in self.tasks:
            return self.tasks[key]
        spec = self.specs[stage]
        reads = task_months(self.bars.months_by_pair, self.bars.rows, pair, month, context=spec.context,
                            lookahead=spec.lookahead, month_task=spec.month_task)
        rows = sum(self.bars.rows[(p, month)] for p in reads if (p, month) in self.bars.rows)
        deps: list[TaskKey] = []
        inputs = []
        for p, months in reads.items():
            for m in months:
                ups = {}
                for up in spec.inputs:
                    up_task = self.add(up, None if self.specs[up].month_task else p, m)
                    if up_task.key not in deps:
                        deps.append(up_task.key)
                    ups[up] = up_task.fingerprint
                inputs.append([p, m, self.bars.digests[(p, m)], ups])
        task = Task(stage, Partition(pair, month), reads, tuple(deps), rows=rows)
        fam_names = [f.name for f in spec.families]
        task.fingerprint = digest({
            "format": FORMAT_VERSION,
            "stage": stage,
            "partition": [pair, month],
            "code": self.code(stage),
            "params": spec.params,
            "context": spec.context,
            "lookahead": spec.lookahead,
            "baseline": self.baseline.isoformat(),
            "anchors": {f"{k[0]}/{k[1]}": v for k, v in sorted(self.anchors.items())
                        if k[0] in fam_names and (k[1] == "" or k[1] in reads)},
            "infos": {p: self.infos.get(p, {}) for p in reads},
            "inputs": inputs,
        })
        self.tasks[key] = task
        return task

    def build(self, stages: Sequence[str], pairs: Sequence[str], months: Sequence[str]) -> dict[TaskKey, Task]:
        for stage in stages:
            for month in months:
                if self.specs[stage].month_task:
                    if self.bars.pairs_in(month):
                        self.add(stage, None, month)
                    continue
                for pair in pairs:
                    if (pair, month) in self.bars.rows:
                        self.add(stage, pair, month)
        return self.tasks


def fresh(task: Task, row: TaskRow | None, root: Any, stats: Mapping[str, Any] | None = None) -> bool:
    """Done with the same fingerprint, and every output file as recorded (looked up in `stats`, a listing, when given)."""
    return (row is not None and row.status == "done" and row.fingerprint == task.fingerprint
            and row.intact(root, stats))


def store_listing(root: Any) -> Mapping[str, Any] | None:
    """For an object store: every object's (size, ETag) from one listing, so checking the outputs costs no request
    per file. None for a local store (a stat per file, as cheap as a listing there)."""
    from bqx.store.backend import backend_for, is_url

    return backend_for(root).stats() if is_url(root) else None


def choose(tasks: Mapping[TaskKey, Task], rows: Mapping[TaskKey, TaskRow], root: Any, *, force_stages: Sequence[str] = (),
           retry_failed: bool = False) -> list[TaskKey]:
    """The tasks to run, in topological order.

    Normally every task that is not fresh (plus every task of `force_stages`); with `retry_failed`
    only failed tasks and the not-fresh tasks that depend on them, plus whatever not-fresh tasks
    those need.
    """
    stats = store_listing(root) if rows else None
    stale = {k for k, t in tasks.items() if not fresh(t, rows.get(k), root, stats)}
    if not retry_failed:
        chosen = stale | {k for k in tasks if k[0] in force_stages}
    else:
        chosen = {k for k in stale if rows.get(k) is not None and rows[k].status in ("failed", "interrupted")}
        for k, t in tasks.items():  # dependants, in topological order
            if k in stale and any(d in chosen for d in t.deps):
                chosen.add(k)
        todo = list(chosen)
        while todo:  # stale inputs of what is chosen
            for d in tasks[todo.pop()].deps:
                if d in stale and d not in chosen:
                    chosen.add(d)
                    todo.append(d)
    return [k for k in tasks if k in chosen]


# -- description (bqx plan) ---------------------------------------------------------------------

def describe(specs: Mapping[str, StageSpec], planned: Sequence[str], tasks: Mapping[TaskKey, Task],
             to_run: Sequence[TaskKey], rows: Mapping[TaskKey, TaskRow], *, workers: int,
             pairs: Sequence[str], months: Sequence[str]) -> dict[str, Any]:
    """A JSON-serialisable plan: stages, dependencies, task counts, contexts, critical path, disk space."""
    run_set = set(to_run)
    stage_rows = []
    seconds: dict[str, float] = {}
    measured_any = False
    disk = 0.0
    for st in all_stages():
        spec = specs.get(st.name)
        entry: dict[str, Any] = {"id": st.id, "name": st.name, "unit": st.unit, "built": spec is not None}
        if spec is None:
            entry["status"] = "view" if st.unit == "view" else ("source" if st.unit == "source" else "not built")
            stage_rows.append(entry)
            continue
        mine = [t for k, t in tasks.items() if k[0] == st.name]
        bar_rows = sum(t.rows for t in mine)
        done = [r for k, r in rows.items() if k[0] == st.name and r.status == "done" and r.seconds is not None]
        if done:
            measured_any = True
            per_task = sum(r.seconds for r in done) / len(done)
            total = per_task * len(mine)
            size = sum(o[1] for r in done for o in r.outputs) / max(1, sum(r.rows or 0 for r in done))
            est_bytes = size * bar_rows
        else:
            total = len(mine) * EST_SECONDS_PER_TASK + bar_rows * len(spec.columns) * EST_SECONDS_PER_CELL
            est_bytes = bar_rows * (len(spec.columns) + 1) * EST_BYTES_PER_CELL
        if st.name in planned:
            disk += est_bytes
        lanes = max(1, min(workers, len(mine)))
        seconds[st.name] = total / lanes
        entry.update(
            status="planned" if st.name in planned else "not selected",
            families=[f.name for f in spec.families],
            inputs=["bars", *spec.inputs],
            context=spec.context,
            lookahead=spec.lookahead,
            features=len(spec.columns),
            tables=list(spec.tables),
            tasks=len(mine),
            to_run=sum(1 for t in mine if t.key in run_set),
            seconds=round(seconds[st.name], 3),
            bytes=int(est_bytes),
        )
        stage_rows.append(entry)
    path, total = _critical_path(specs, planned, seconds)
    return {
        "pairs": list(pairs),
        "months": list(months),
        "workers": workers,
        "stages": stage_rows,
        "tasks": len(tasks),
        "to_run": len(run_set),
        "critical_path": {"stages": path, "seconds": round(total, 3), "measured": measured_any},
        "disk_bytes": int(disk),
    }


def _critical_path(specs: Mapping[str, StageSpec], planned: Sequence[str], seconds: Mapping[str, float]) -> tuple[list[str], float]:
    best: dict[str, tuple[float, list[str]]] = {}
    for name in specs:  # topological
        if name not in planned:
            continue
        prev = max((best[d] for d in specs[name].inputs if d in best), default=(0.0, []), key=lambda b: b[0])
        best[name] = (prev[0] + seconds.get(name, 0.0), prev[1] + [name])
    if not best:
        return [], 0.0
    total, path = max(best.values(), key=lambda b: b[0])
    return path, total
