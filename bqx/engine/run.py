"""`run`: bring a store up to date — bars from the source, then every stale task in DAG order.

Test hook: with the environment variable `BQX_TEST_KILL_AFTER_TASKS=N` the run SIGKILLs its own
process right after recording its N-th task (to test resume after a kill at a known point).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl
import pyarrow.parquet as pq

from bqx.engine.events import Event, EventCallback
from bqx.engine.executors import Executor, make_executor
from bqx.engine.lock import store_lock
from bqx.engine.manifest import Manifest, TaskRow
from bqx.engine.partitions import add_months, month_span, month_start, parse_month
from bqx.engine.plan import (EST_ROWS_PER_MONTH, BarsInventory, StageSpec, Task, TaskGraph, TaskKey, choose,
                             describe, select_stages, stage_specs)
from bqx.engine.store import (BARS, bars_partitions, clean_temp_files, file_digest, file_stamp, partition_path,
                              read_pairs_json, write_bars)
from bqx.engine.worker import TaskResult, TaskSpec
from bqx.errors import InputError, TaskError, UsageError
from bqx.families.base import Ctx, PairInfo
from bqx.families.runner import pair_info
from bqx.stages import stage as stage_by_key
from bqx.universe import PAIR_NAMES

KILL_ENV = "BQX_TEST_KILL_AFTER_TASKS"
SAMPLE_START = "2024-07"


@dataclass
class RunResult:
    """What a run did. `ok` is False when a task failed or was blocked by a failure."""

    store: str
    run_id: int | None
    dry_run: bool
    total: int  # tasks in the plan
    to_run: int  # tasks that were stale (or forced) and ran or were meant to
    skipped: int  # tasks already up to date
    done: list[dict[str, Any]] = field(default_factory=list)  # stage, pair, month, rows, seconds
    failed: list[dict[str, Any]] = field(default_factory=list)  # stage, pair, month, error
    blocked: list[dict[str, Any]] = field(default_factory=list)  # stage, pair, month, error (the failed input)
    bars_written: int = 0
    seconds: float = 0.0
    log_path: str | None = None
    plan: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.blocked

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}


def run(
    store: str | os.PathLike[str],
    *,
    source: Any = "sample",
    pairs: Sequence[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    stages: Sequence[str] | None = None,
    workers: int | None = None,
    executor: str | Executor = "process",
    dry_run: bool = False,
    force: bool = False,
    retry_failed: bool = False,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    on_event: EventCallback | None = None,
    seed: int = 0,
) -> RunResult:
    """Compute every stale task of the selected stages (and what they read) for the selected pairs and months.

    `source`: "sample" (the built-in sample market; default pairs all 28, months 2024-07 and
    2024-08), None (the bars already in the store), a polars frame of bars with a `pair` column,
    or a Parquet file/directory of such bars. `start`/`end`: months "YYYY-MM" (or ISO dates),
    both included. `params`: family -> parameter overrides. `executor`: "process" (default,
    `workers` spawned processes, one per core when None), "serial", or an Executor object.
    """
    t_start = time.perf_counter()
    root = Path(store)
    emit = on_event or (lambda e: None)
    sel_pairs = _check_pairs(pairs)
    start_m = parse_month(start) if start else None
    end_m = parse_month(end) if end else None
    if start_m and end_m and end_m < start_m:
        raise UsageError(f"end {end_m} is before start {start_m}")
    n_workers = workers or (executor.workers if not isinstance(executor, str) else (os.cpu_count() or 1))
    if executor == "serial":
        n_workers = 1
    specs = stage_specs(params)
    planned, wanted = select_stages(specs, stages)
    if isinstance(source, str) and source == "sample" and start_m is None and end_m is None:
        start_m, end_m = SAMPLE_START, add_months(SAMPLE_START, 1)

    if dry_run:
        return _dry_run(root, source, specs, planned, sel_pairs, start_m, end_m, n_workers, t_start)

    with store_lock(root, "run"):
        with Manifest(root) as man:
            man.interrupt_running()
            clean_temp_files(root)
            written = _write_source(root, man, source, sel_pairs, start_m, end_m, seed)
            if written:
                emit(Event("bars_written", stage="bars", stage_id="1.1", rows=written))
            inv = _inventory(root, man)
            if not inv.rows:
                raise InputError(f"store {root} has no bars", hint="Run with source='sample', or ingest bars first (bqx ingest).")
            baseline = _baseline(man, inv)
            infos = _infos(root, inv)
            anchors = _ensure_anchors(root, man, specs, planned, inv, baseline, infos)
            months = _months(inv, start_m, end_m)
            use_pairs = [p for p in (sel_pairs or sorted(inv.months_by_pair)) if p in inv.months_by_pair]
            graph = TaskGraph(specs, inv, baseline=baseline, anchors=anchors, infos=infos)
            tasks = graph.build(planned, use_pairs, months)
            rows = man.tasks()
            to_run = choose(tasks, rows, root, force_stages=wanted if force else (), retry_failed=retry_failed)
            plan = describe(specs, planned, tasks, to_run, rows, workers=n_workers, pairs=use_pairs, months=months)
            man.set_meta("params", json.dumps({f: dict(p) for s in specs.values() for f, p in s.params.items()}))
            log_path = root / "logs" / f"run-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{os.getpid()}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            args = {"source": source if isinstance(source, str) else type(source).__name__, "pairs": use_pairs,
                    "months": months, "stages": planned, "force": force, "retry_failed": retry_failed,
                    "params": params or {}, "executor": executor if isinstance(executor, str) else type(executor).__name__,
                    "workers": n_workers}
            run_id = man.start_run(args, str(log_path))
            result = RunResult(str(root), run_id, False, len(tasks), len(to_run), len(tasks) - len(to_run),
                               bars_written=written, log_path=str(log_path), plan=plan)
            with open(log_path, "a", buffering=1) as log:
                log.write(f"bqx run {run_id} at {datetime.now(timezone.utc).isoformat()} args={json.dumps(args, default=str)}\n")

                def note(ev: Event) -> None:
                    log.write(ev.line() + "\n")
                    emit(ev)

                note(Event("run_started", total=len(tasks), to_run=len(to_run)))
                ex = make_executor(executor, n_workers) if isinstance(executor, str) else executor
                try:
                    _execute(root, man, ex, specs, tasks, to_run, anchors, infos, baseline, run_id, result, note, log)
                finally:
                    if isinstance(executor, str):
                        ex.close()
                result.seconds = time.perf_counter() - t_start
                note(Event("run_finished", done=len(result.done), failed=len(result.failed), total=len(tasks),
                           to_run=len(to_run), seconds=result.seconds))
            man.end_run(run_id, "ok" if result.ok else "failed",
                        {"done": len(result.done), "failed": len(result.failed), "blocked": len(result.blocked)})
            return result


# -- the scheduler ------------------------------------------------------------------------------

def _execute(root: Path, man: Manifest, ex: Executor, specs: Mapping[str, StageSpec], tasks: Mapping[TaskKey, Task],
             to_run: Sequence[TaskKey], anchors: Mapping[tuple[str, str], Any], infos: Mapping[str, Any],
             baseline: datetime, run_id: int, result: RunResult, note: Any, log: Any) -> None:
    kill_after = int(os.environ.get(KILL_ENV, "0") or 0)
    waiting = {k: {d for d in tasks[k].deps if d in set(to_run)} for k in to_run}
    dependants: dict[TaskKey, list[TaskKey]] = {k: [] for k in to_run}
    for k, deps in waiting.items():
        for d in deps:
            dependants[d].append(k)
    ready = deque(k for k in to_run if not waiting[k])
    inflight: dict[Any, TaskKey] = {}
    blocked: set[TaskKey] = set()
    recorded = 0
    limit = max(1, ex.workers)

    def ev(kind: str, key: TaskKey, **kw: Any) -> Event:
        return Event(kind, stage=key[0], stage_id=_stage_id(key[0]), pair=key[1], month=key[2], **kw)

    while ready or inflight:
        while ready and len(inflight) < limit:
            key = ready.popleft()
            spec = _spec(root, specs[key[0]], tasks[key], anchors, infos, baseline)
            man.mark_running(*key, run_id)
            note(ev("task_started", key))
            try:
                handle = ex.submit(spec)
            except Exception as exc:  # noqa: BLE001 - a broken pool fails the task, loudly
                handle = _failed_handle(key, spec.fingerprint, f"could not submit: {type(exc).__name__}: {exc}")
            inflight[handle] = key
        for handle in ex.wait(list(inflight)):
            key = inflight.pop(handle)
            try:
                res = ex.result(handle) if not isinstance(handle, TaskResult) else handle
            except Exception as exc:  # noqa: BLE001 - a crashed worker process
                res = TaskResult(*key, ok=False, error=f"worker crashed: {type(exc).__name__}: {exc}",
                                 fingerprint=tasks[key].fingerprint)
            if res.ok:
                man.record(*key, status="done", rows=res.rows, seconds=res.seconds, error=None,
                           fingerprint=res.fingerprint, outputs=res.outputs, run_id=run_id)
                result.done.append({"stage": key[0], "pair": key[1], "month": key[2], "rows": res.rows,
                                    "seconds": res.seconds})
                note(ev("task_done", key, rows=res.rows, seconds=res.seconds))
                for d in dependants[key]:
                    waiting[d].discard(key)
                    if not waiting[d] and d not in blocked:
                        ready.append(d)
            else:
                man.record(*key, status="failed", rows=None, seconds=res.seconds, error=res.error, fingerprint=None,
                           outputs=[], run_id=run_id)
                first = (res.error or "").splitlines()[0] if res.error else ""
                result.failed.append({"stage": key[0], "pair": key[1], "month": key[2], "error": first})
                log.write((res.error or "") + "\n")
                note(ev("task_failed", key, seconds=res.seconds, error=first))
                todo = list(dependants[key])
                while todo:
                    d = todo.pop()
                    if d in blocked:
                        continue
                    blocked.add(d)
                    label = f"{key[0]} {key[1] or ''} {key[2]}".replace("  ", " ")
                    result.blocked.append({"stage": d[0], "pair": d[1], "month": d[2], "error": f"input {label} failed"})
                    note(ev("task_blocked", d, error=f"input {label} failed"))
                    todo.extend(dependants[d])
            recorded += 1
            if kill_after and recorded >= kill_after:
                log.flush()
                os.kill(os.getpid(), signal.SIGKILL)


def _failed_handle(key: TaskKey, fp: str, error: str) -> Any:
    from concurrent.futures import Future

    fut: Future = Future()
    fut.set_result(TaskResult(*key, ok=False, error=error, fingerprint=fp))
    return fut


def _stage_id(name: str) -> str:
    try:
        return stage_by_key(name).id
    except KeyError:
        return name


def _spec(root: Path, spec: StageSpec, task: Task, anchors: Mapping[tuple[str, str], Any], infos: Mapping[str, Any],
          baseline: datetime) -> TaskSpec:
    fam_anchors: dict[str, Any] = {}
    for fam in spec.families:
        if fam.anchor is None:
            continue
        if fam.cross_pair:
            fam_anchors[fam.name] = anchors.get((fam.name, ""))
        else:
            fam_anchors[fam.name] = {p: anchors[(fam.name, p)] for p in task.reads if (fam.name, p) in anchors}
    return TaskSpec(
        store=str(root),
        stage=task.stage,
        pair=task.partition.pair,
        month=task.partition.month,
        families=tuple((f.name, f.module) for f in spec.families),
        params={n: dict(p) for n, p in spec.params.items()},
        inputs=spec.inputs,
        context=spec.context,
        lookahead=spec.lookahead,
        reads=dict(task.reads),
        infos={p: dict(infos.get(p, {})) for p in task.reads},
        anchors=fam_anchors,
        baseline=baseline.isoformat(),
        fingerprint=task.fingerprint,
        columns=spec.columns,
        tables=spec.tables,
        month_task=spec.month_task,
    )


# -- bars, baseline, anchors --------------------------------------------------------------------

def _check_pairs(pairs: Sequence[str] | None) -> list[str] | None:
    if pairs is None:
        return None
    pairs = [pairs] if isinstance(pairs, str) else list(pairs)
    unknown = [p for p in pairs if p not in PAIR_NAMES]
    if unknown:
        raise UsageError(f"unknown pairs {unknown}; pairs are: {' '.join(PAIR_NAMES)}")
    return sorted(set(pairs))


def baseline_of(store: str | os.PathLike[str]) -> datetime | None:
    """The store's baseline time, once a run has fixed it (for ingest: bars older than it are refused)."""
    from bqx.engine.manifest import open_reader

    man = open_reader(store)
    if man is None:
        return None
    with man:
        value = man.get_meta("baseline_time")
    return datetime.fromisoformat(value) if value else None


def check_not_before_baseline(store: str | os.PathLike[str], first_ts: datetime, what: str = "bars") -> None:
    """Refuse bars older than the store's baseline time (a level anchored on a later price would leak it)."""
    base = baseline_of(store)
    if base is not None and first_ts < base:
        raise InputError(
            f"{what} start at {first_ts.isoformat()}, before this store's baseline time {base.isoformat()}; "
            "bars older than the baseline cannot be added (levels anchored on a later price would leak it)",
            hint="Build a new store (--store) that starts at the earliest month.",
        )


def _write_source(root: Path, man: Manifest, source: Any, pairs: list[str] | None, start: str | None,
                  end: str | None, seed: int) -> int:
    if source is None:
        return 0
    if isinstance(source, str) and source == "sample":
        start = start or SAMPLE_START
        end = end or add_months(start, 1)
        names = pairs or list(PAIR_NAMES)
        check_not_before_baseline(root, month_start(start), "sample bars")
        info = read_pairs_json(root)
        foreign = [p for p in names if p in info and info[p].get("source") != "sample"]
        if foreign:
            raise UsageError(f"pairs {foreign} in store {root} come from {info[foreign[0]].get('source')}, not the "
                             "sample market", hint="Run without a source (source=None) or use another --store.")
        have = bars_partitions(root)
        months = month_span(start, end)
        if all((p, m) in have for p in names for m in months):
            return 0
        from bqx.bars.sample import sample_market

        bars = sample_market(pairs=names, start=start, months=len(months), seed=seed)
        return len(write_bars(root, bars, source="sample", only_missing=True))
    if isinstance(source, pl.DataFrame):
        frame = source
        label = "frame"
    else:
        path = Path(source)
        if not path.exists():
            raise InputError(f"source {path} does not exist")
        if path.suffix == ".parquet" or (path.is_dir() and any(path.rglob("*.parquet"))):
            frame = pl.read_parquet(path if path.is_file() else str(path / "**" / "*.parquet"), hive_partitioning=True)
            label = str(path)
        else:
            raise UsageError(f"source {path} is not a Parquet bar file or directory",
                             hint="Ingest CSV sources first (bqx ingest), then run without a source.")
    if "pair" not in frame.columns:
        raise InputError("source bars need a `pair` column")
    if frame.height:
        first = frame["ts"].min()
        if isinstance(first, datetime) and first.tzinfo is None:
            first = first.replace(tzinfo=timezone.utc)
        check_not_before_baseline(root, first)
    return len(write_bars(root, frame, source=label))


def _inventory(root: Path, man: Manifest) -> BarsInventory:
    files = bars_partitions(root)
    known = man.bars()
    rows: dict[tuple[str, str], int] = {}
    digests: dict[tuple[str, str], str] = {}
    for key, path in files.items():
        stamp = file_stamp(path)
        cached = known.get(key)
        if cached and stamp and (cached[2], cached[3]) == stamp:
            digests[key], rows[key] = cached[0], cached[1]
            continue
        digests[key] = file_digest(path)
        rows[key] = pq.read_metadata(path).num_rows
        man.set_bars(*key, digests[key], rows[key], *stamp)
    man.drop_bars([k for k in known if k not in files])
    return BarsInventory({k: v for k, v in rows.items() if v > 0}, digests)


def _baseline(man: Manifest, inv: BarsInventory) -> datetime:
    earliest = min(m for _, m in inv.rows)
    stored = man.get_meta("baseline_time")
    if stored is None:
        base = month_start(earliest)
        man.set_meta("baseline_time", base.isoformat())
        return base
    base = datetime.fromisoformat(stored)
    old = sorted(k for k in inv.rows if month_start(k[1]) < base)
    if old:
        raise InputError(
            f"bars of {old[0][0]} {old[0][1]} ({len(old)} partitions) are older than this store's baseline time "
            f"{base.isoformat()}; bars older than the baseline cannot be added (levels anchored on a later price "
            "would leak it)",
            hint="Remove them, or build a new store (--store) that starts at the earliest month.",
        )
    return base


def _infos(root: Path, inv: BarsInventory) -> dict[str, dict[str, Any]]:
    info = read_pairs_json(root)
    out = {}
    for pair, months in inv.months_by_pair.items():
        if pair in info:
            out[pair] = {k: info[pair][k] for k in ("basis", "has_volume", "has_bidask") if k in info[pair]}
        else:
            frame = pl.read_parquet(partition_path(root, BARS, pair, months[0]))
            i = pair_info(pair, frame)
            out[pair] = {"basis": i.basis, "has_volume": i.has_volume, "has_bidask": i.has_bidask}
    return out


def _ensure_anchors(root: Path, man: Manifest, specs: Mapping[str, StageSpec], planned: Sequence[str],
                    inv: BarsInventory, baseline: datetime, infos: Mapping[str, Any]) -> dict[tuple[str, str], Any]:
    """Anchors fixed once per store (per pair for per-pair families) from the bars at/after the baseline."""
    anchors = man.anchors()
    pinfo = {p: PairInfo(pair=p, **i) for p, i in infos.items()}
    for name in planned:
        spec = specs[name]
        for fam in spec.families:
            if fam.anchor is None:
                continue
            p = spec.params[fam.name]
            try:
                if fam.cross_pair:
                    if (fam.name, "") not in anchors:
                        first = min(m for _, m in inv.rows)
                        pairs = inv.pairs_in(first)
                        long = pl.concat([pl.read_parquet(partition_path(root, BARS, q, first))
                                          .select(pl.lit(q).alias("pair"), pl.all()) for q in pairs]).sort("pair", "ts")
                        ctx = Ctx(params=p, baseline_time=baseline, pairs=pinfo)
                        anchors[(fam.name, "")] = dict(fam.anchor(long, ctx))
                        man.set_anchor(fam.name, None, anchors[(fam.name, "")])
                    continue
                for pair, months in inv.months_by_pair.items():
                    if (fam.name, pair) in anchors:
                        continue
                    frame = pl.read_parquet(partition_path(root, BARS, pair, months[0])).sort("ts")
                    ctx = Ctx(params=p, baseline_time=baseline, pair=pinfo[pair], pairs=pinfo)
                    anchors[(fam.name, pair)] = dict(fam.anchor(frame, ctx))
                    man.set_anchor(fam.name, pair, anchors[(fam.name, pair)])
            except Exception as exc:  # noqa: BLE001 - reported with the family, stops the run
                raise TaskError(f"family {fam.name}: computing its anchor failed: {type(exc).__name__}: {exc}") from exc
    return anchors


def _months(inv: BarsInventory, start: str | None, end: str | None) -> list[str]:
    months = sorted({m for _, m in inv.rows})
    return [m for m in months if (start is None or m >= start) and (end is None or m <= end)]


def _dry_run(root: Path, source: Any, specs: Mapping[str, StageSpec], planned: list[str], pairs: list[str] | None,
             start: str | None, end: str | None, workers: int, t0: float) -> RunResult:
    """The plan, without writing anything: from the store's bars, or the bars the source would write."""
    from bqx.engine.manifest import open_reader

    man = open_reader(root)
    rows_known: dict[TaskKey, TaskRow] = {}
    anchors: dict[tuple[str, str], Any] = {}
    bars: dict[tuple[str, str], tuple[str, int]] = {}
    if man is not None:
        with man:
            rows_known = man.tasks()
            anchors = man.anchors()
            bars = {k: (v[0], v[1]) for k, v in man.bars().items()}
    files = bars_partitions(root)
    inv_rows = {k: bars.get(k, ("", 0))[1] or pq.read_metadata(f).num_rows for k, f in files.items()}
    digests = {k: bars.get(k, ("",))[0] or file_digest(f) for k, f in files.items()}
    if isinstance(source, str) and source == "sample":
        for p in pairs or PAIR_NAMES:
            for m in month_span(start or SAMPLE_START, end or add_months(start or SAMPLE_START, 1)):
                if (p, m) not in inv_rows:
                    inv_rows[(p, m)] = EST_ROWS_PER_MONTH
                    digests[(p, m)] = f"pending:{p}:{m}"
    if not inv_rows:
        raise InputError(f"store {root} has no bars", hint="Run with source='sample', or ingest bars first (bqx ingest).")
    inv = BarsInventory(inv_rows, digests)
    base = month_start(min(m for _, m in inv_rows))
    graph = TaskGraph(specs, inv, baseline=base, anchors=anchors, infos={})
    months = _months(inv, start, end)
    use_pairs = [p for p in (pairs or sorted(inv.months_by_pair)) if p in inv.months_by_pair]
    tasks = graph.build(planned, use_pairs, months)
    to_run = [k for k in tasks if not (k in rows_known and rows_known[k].status == "done" and rows_known[k].intact(root))]
    plan = describe(specs, planned, tasks, to_run, rows_known, workers=workers, pairs=use_pairs, months=months)
    return RunResult(str(root), None, True, len(tasks), len(to_run), len(tasks) - len(to_run),
                     seconds=time.perf_counter() - t0, plan=plan)


def plan(
    store: str | os.PathLike[str],
    *,
    source: Any = None,
    pairs: Sequence[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    stages: Sequence[str] | None = None,
    workers: int | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The plan as JSON-serialisable data: stages, dependencies, task counts, contexts, critical path, disk space."""
    return run(store, source=source, pairs=pairs, start=start, end=end, stages=stages, workers=workers,
               params=params, dry_run=True).plan
