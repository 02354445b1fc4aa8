"""The one worker: `run_task(spec)` computes one task's partition (or a chain of them) and writes its files.

Executors pass a `TaskSpec` (plain, picklable data) and get a `TaskResult` back, or a `ChainSpec`
(the per-pair stages of one (pair, month), in dependency order) and get one `TaskResult` per
stage. In a chain each stage still writes its own dataset, exactly as alone; what a stage just
computed is handed to the next ones in memory instead of being read back (and the chain reads
each bars file once). The worker opens the store itself and never touches the manifest (the run
records results). Family modules are imported by name, so user families must live in an
importable module (not `__main__`) to run in process or Dask workers.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
import traceback
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from bqx.engine.lifeline import ensure_driver
from bqx.engine.partitions import add_months, month_start
from bqx.engine.window import task_spans
from bqx.store.layout import BARS, partition_path, partition_rel, read_partition, table_rel, write_partition
from bqx.core.declaration import Family, PairInfo
from bqx.core.registry import REGISTRY
from bqx.core.runner import compute_frames


@dataclass(frozen=True)
class TaskSpec:
    """Everything a worker needs to compute one task, as plain data."""

    store: str
    stage: str
    pair: str | None
    month: str
    families: tuple[tuple[str, str], ...]  # (family name, module), dependency order
    params: dict[str, dict[str, Any]]  # family -> resolved parameters
    inputs: tuple[str, ...]  # stored stages joined to the bars
    context: int
    lookahead: int
    reads: dict[str, tuple[str, ...]]  # pair -> months to read
    infos: dict[str, dict[str, Any]]  # pair -> basis, has_volume, has_bidask
    anchors: dict[str, Any]  # family -> anchor (cross-pair) or {pair: anchor}
    baseline: str  # ISO time
    fingerprint: str
    columns: tuple[str, ...]
    tables: tuple[str, ...] = ()
    month_task: bool = False
    input_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)  # stage -> columns read (all if absent)
    chain: bool = False  # a member of a ChainSpec: keep bars files whole for the next members

    @property
    def key(self) -> tuple[str, str | None, str]:
        return (self.stage, self.pair, self.month)

    @property
    def members(self) -> tuple["TaskSpec", ...]:
        return (self,)

    def with_store(self, store: str) -> "TaskSpec":
        return replace(self, store=store)


@dataclass(frozen=True)
class ChainSpec:
    """Tasks of one (pair, month) run in order in one worker; each reads only earlier members or stored data."""

    tasks: tuple[TaskSpec, ...]

    @property
    def members(self) -> tuple[TaskSpec, ...]:
        return self.tasks

    @property
    def store(self) -> str:
        return self.tasks[0].store

    @property
    def stage(self) -> str:
        return "+".join(t.stage for t in self.tasks)

    @property
    def pair(self) -> str | None:
        return self.tasks[0].pair

    @property
    def month(self) -> str:
        return self.tasks[0].month

    @property
    def families(self) -> tuple[tuple[str, str], ...]:
        return tuple(f for t in self.tasks for f in t.families)

    def with_store(self, store: str) -> "ChainSpec":
        return ChainSpec(tuple(t.with_store(store) for t in self.tasks))


@dataclass(frozen=True)
class TaskResult:
    stage: str
    pair: str | None
    month: str
    ok: bool
    rows: int = 0
    seconds: float = 0.0
    outputs: list[tuple[Any, ...]] = field(default_factory=list)  # (path in store, size, stamp, checksum); stamp: mtime_ns locally, the ETag on S3
    error: str | None = None
    fingerprint: str = ""
    pid: int = 0
    blocked_by: str | None = None  # in a chain: the member that failed before this one could run

    @property
    def key(self) -> tuple[str, str | None, str]:
        return (self.stage, self.pair, self.month)


def run_task(spec: TaskSpec | ChainSpec) -> Any:
    """Compute one task (a `TaskResult`) or a chain (a list of them, one per member, in order).

    Never raises: a failure comes back as `ok=False` with the error text, and in a chain every later
    member that reads the failed one (directly or not) comes back `ok=False` with `blocked_by` set.
    """
    # families' coverage warnings (skipped currencies, triangles) are reported once per run by the
    # caller, not once per task from every worker
    logging.getLogger("bqx.families").setLevel(logging.ERROR)
    if isinstance(spec, TaskSpec):
        return _run_one(spec, _Memory())
    memory = _Memory()
    results: list[TaskResult] = []
    failed: dict[str, str] = {}  # member stage -> the failed member it traces back to
    for member in spec.tasks:
        cause = next((failed[s] for s in member.inputs if s in failed), None)
        if cause is not None:
            failed[member.stage] = cause
            results.append(TaskResult(member.stage, member.pair, member.month, False, error=f"input {cause} failed",
                                      fingerprint=member.fingerprint, pid=os.getpid(), blocked_by=cause))
            continue
        res = _run_one(member, memory)
        if not res.ok:
            failed[member.stage] = f"{member.stage} {member.pair} {member.month}"
        results.append(res)
    return results


def _run_one(spec: TaskSpec, memory: "_Memory") -> TaskResult:
    t0 = time.perf_counter()
    try:
        rows, outputs = _run(spec, memory)
        return TaskResult(spec.stage, spec.pair, spec.month, True, rows, time.perf_counter() - t0, outputs,
                          fingerprint=spec.fingerprint, pid=os.getpid())
    except Exception as exc:  # noqa: BLE001 - the error is recorded with its partition, not swallowed
        where = f"{spec.stage} {spec.pair + ' ' if spec.pair else ''}{spec.month}"
        text = f"{where}: {type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        return TaskResult(spec.stage, spec.pair, spec.month, False, 0, time.perf_counter() - t0, [], text,
                          spec.fingerprint, os.getpid())


class _Memory:
    """What a chain holds between its members: bars files read, and each member's month partition."""

    def __init__(self) -> None:
        self.bars: dict[tuple[str, str], pl.DataFrame] = {}
        self.parts: dict[tuple[str, str, str], pl.DataFrame] = {}  # (stage, pair, month) -> ts + columns

    def read_bars(self, root: Path, pair: str, month: str) -> pl.DataFrame:
        key = (pair, month)
        if key not in self.bars:
            self.bars[key] = read_partition(root, partition_rel(BARS, pair, month))
        return self.bars[key]

    def read_stage(self, root: Path, stage: str, pair: str, month: str, first: int, stop: int,
                   columns: list[str] | None) -> pl.DataFrame:
        part = self.parts.get((stage, pair, month))
        if part is not None:
            return part.slice(first, stop - first).select(columns or pl.all())
        try:
            return read_partition(root, partition_rel(stage, pair, month), columns, (first, stop))
        except FileNotFoundError:
            path = partition_path(root, stage, pair, month)
            raise FileNotFoundError(f"input {stage} {pair} {month} is missing ({path}); its task must run first") from None


def load_families(pairs: tuple[tuple[str, str], ...]) -> list[Family]:
    """The families by name, importing their modules first (what a fresh spawn worker needs)."""
    fams = []
    for name, module in pairs:
        if name not in REGISTRY:
            if module == "__main__":
                raise RuntimeError(
                    f"family {name} is defined in __main__, which worker processes cannot import; "
                    "put user families in an importable module (or run with executor='serial')")
            importlib.import_module(module)
        fams.append(REGISTRY.get(name))
    return fams


def _run(spec: TaskSpec, memory: _Memory) -> tuple[int, list[tuple[str, int, int]]]:
    fams = load_families(spec.families)
    root = spec.store  # a local directory or an s3:// URL: every file through its backend
    start, end = month_start(spec.month), month_start(add_months(spec.month, 1))
    windows = _windows(root, spec, start, end, memory)
    frames = {p: _read_pair(root, spec, p, windows[p], memory) for p in spec.reads}
    infos = {p: PairInfo(pair=p, **{k: v for k, v in i.items() if k in ("basis", "has_volume", "has_bidask")})
             for p, i in spec.infos.items()}
    for fam in fams:
        if fam.anchor is not None:
            have = spec.anchors.get(fam.name)
            missing = [p for p in frames if not have or (not fam.cross_pair and p not in have)]
            if missing:
                raise RuntimeError(f"family {fam.name}: no stored anchor for {missing}")
    anchors = {k: (dict(v) if isinstance(v, dict) else v) for k, v in spec.anchors.items()}
    out, tables = compute_frames(frames, fams, params=spec.params, infos=infos,
                                 baseline=datetime.fromisoformat(spec.baseline), anchors=anchors)
    outputs: list[tuple[str, int, int]] = []
    rows = 0
    in_month = (pl.col("ts") >= start) & (pl.col("ts") < end)
    for pair, frame in out.items():
        part = frame.filter(in_month).select("ts", *spec.columns)
        rel = partition_rel(spec.stage, pair, spec.month)
        ensure_driver()  # a worker whose driver died writes nothing more
        outputs.append((rel, *write_partition(root, rel, part)))  # (rel, size, stamp, checksum)
        rows += part.height
        memory.parts[(spec.stage, pair, spec.month)] = part
    for name in spec.tables:
        table = tables[name].filter(in_month).sort("ts")
        rel = table_rel(name, spec.month)
        ensure_driver()
        outputs.append((rel, *write_partition(root, rel, table)))
    return rows, outputs


def _windows(root: Path, spec: TaskSpec, start: datetime, end: datetime,
             memory: _Memory) -> dict[str, list[tuple[str, int, int]]]:
    """Per pair, the rows to read of each month file: (month, first row, end row), by bqx.engine.window.

    Only the `ts` column is read to decide, so a task never holds more than its window of the other columns.
    """
    parts = {pair: [(m, _bars_ts(root, spec, pair, m, memory)) for m in months] for pair, months in spec.reads.items()}
    return task_spans(parts, start, end, context=spec.context, lookahead=spec.lookahead, month_task=spec.month_task)


def _bars_ts(root: Path, spec: TaskSpec, pair: str, month: str, memory: _Memory) -> pl.Series:
    """A bars file's `ts`: in a chain from the whole file, read once and kept for the members; alone, `ts` only."""
    if spec.chain:
        return memory.read_bars(root, pair, month)["ts"]
    return read_partition(root, partition_rel(BARS, pair, month), ["ts"])["ts"]


def _read_pair(root: Path, spec: TaskSpec, pair: str, spans: list[tuple[str, int, int]], memory: _Memory) -> pl.DataFrame:
    """The pair's bars and input stages, joined by row, on the rows of its window only.

    In a chain (`spec.chain`), bars files are read whole once and kept; otherwise only the window's rows are read.
    """
    if spec.chain:
        bars = pl.concat([memory.read_bars(root, pair, m).slice(a, b - a) for m, a, b in spans])
    else:
        bars = pl.concat([read_partition(root, partition_rel(BARS, pair, m), rows=(a, b)) for m, a, b in spans])
    months = [m for m, _, _ in spans]
    for stage in spec.inputs:
        wanted = spec.input_columns.get(stage)
        cols = ["ts", *wanted] if wanted else None
        up = pl.concat([memory.read_stage(root, stage, pair, m, a, b, cols) for m, a, b in spans])
        if up.height != bars.height or not up["ts"].equals(bars["ts"]):
            raise ValueError(f"input {stage} {pair} {months} has {up.height} rows not aligned with the "
                             f"{bars.height} bars; rerun that stage")
        bars = bars.hstack(up.drop("ts"))
    return bars
