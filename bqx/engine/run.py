"""`run`: bring a store up to date — bars from the source, then every stale task in DAG order.

Test hook: with the environment variable `BQX_TEST_KILL_AFTER_TASKS=N` the run SIGKILLs its own
process right after recording its N-th task (to test resume after a kill at a known point; its
pool workers end with it, see `bqx.engine.lifeline`). A pool worker that dies is replaced and its
tasks run again (`task_retries`, see `bqx.engine.retry`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Iterator, Mapping, Sequence

from bqx.engine.events import Event, EventCallback
from bqx.engine.executors import Executor, make_executor
from bqx.engine.options import RunOptions
from bqx.engine.retry import WorkerDeaths, is_dead_worker
from bqx.store.lock import store_lock
from bqx.store.manifest import Manifest, TaskRow
from bqx.engine.partitions import add_months, month_span, month_start
from bqx.engine.plan import (EST_ROWS_PER_MONTH, BarsInventory, StageSpec, Task, TaskGraph, TaskKey, choose,
                             describe, select_stages, stage_specs)
from bqx.store.backend import backend_for, is_url, root_name
from bqx.store.layout import bars_stats, clean_temp_files
from bqx.engine.source import (AUTO, SAMPLE_START, baseline_of, check_not_before_baseline, ensure_anchors, fix_baseline,
                               digest_and_rows, inventory, pair_infos, select_months, write_source)
from bqx.engine.worker import ChainSpec, TaskResult, TaskSpec
from bqx.errors import InputError
from bqx.stages import stage as stage_by_key
from bqx.universe import PAIR_NAMES

__all__ = ["RunResult", "run", "plan", "baseline_of", "check_not_before_baseline"]

KILL_ENV = "BQX_TEST_KILL_AFTER_TASKS"


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
    reverified: list[str] = field(default_factory=list)  # with verify: the files that failed their checksum

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
    source: Any = AUTO,
    pairs: Sequence[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    stages: Sequence[str] | None = None,
    workers: int | None = None,
    executor: str | Executor = "process",
    scheduler: str | None = None,
    dry_run: bool = False,
    force: bool = False,
    retry_failed: bool = False,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    on_event: EventCallback | None = None,
    seed: int = 0,
    chain: bool = True,
    task_retries: int = 2,
    verify: bool = False,
    forget_missing_bars: bool = False,
) -> RunResult:
    """Compute every stale task of the selected stages (and what they read) for the selected pairs and months.

    `source`: "auto" (default: the sample market for a new store or one holding only sample bars,
    else the bars already in the store), "sample" (the built-in sample market; default pairs all
    28, months 2024-07 and 2024-08; refused on a store holding bars from another source), None
    (the bars already in the store), a polars frame of bars with a `pair` column,
    or a Parquet file/directory of such bars. `start`/`end`: months "YYYY-MM" (or ISO dates),
    both included. `params`: family -> parameter overrides. `executor`: "process" (default,
    `workers` spawned processes, one per core when None), "serial", "dask" (the Dask scheduler at
    `scheduler` "tcp://HOST:PORT", or a local cluster of `workers` processes when None), or an
    Executor object. `chain`: run the per-pair stages of each (pair, month) as one worker task
    that hands its frames on in memory (default; `False` submits every stage alone, which gives the
    same files, only slower). `task_retries`: how often the tasks in flight when a pool worker
    died are run again in a new pool before they are reported failed.
    `verify`: re-hash every recorded file first and recompute the tasks whose outputs changed (a
    plain run trusts size and mtime, see bqx.engine.gate). A bars month the manifest records whose file is
    gone is an error unless `forget_missing_bars` drops it.
    """
    t_start = time.perf_counter()
    root: Any = root_name(store) if is_url(store) else Path(store)  # an s3:// store stays a URL
    emit = on_event or (lambda e: None)
    opts = RunOptions.build(source=source, pairs=pairs, start=start, end=end, stages=stages, workers=workers,
                            executor=executor, scheduler=scheduler, dry_run=dry_run, force=force,
                            retry_failed=retry_failed, params=params, seed=seed, chain=chain, task_retries=task_retries,
                            verify=verify, forget_missing_bars=forget_missing_bars)
    specs = stage_specs(opts.params)
    planned, wanted = select_stages(specs, opts.stages)
    opts = opts.for_store(root)
    force_stages = wanted if opts.force else ()
    sel_pairs, start_m, end_m, n_workers = opts.pairs, opts.start, opts.end, opts.n_workers

    if opts.dry_run:
        return _dry_run(root, opts, specs, planned, t_start, force_stages=force_stages)

    with store_lock(root, "run"):
        with Manifest(root) as man:
            man.interrupt_running()
            clean_temp_files(root)
            written = write_source(root, man, opts)
            if written:
                emit(Event("bars_written", stage="bars", stage_id="1.1", rows=written))
            inv = inventory(root, man, forget_missing=opts.forget_missing_bars)
            if not inv.rows:
                raise InputError(f"store {root} has no bars", hint="Run with source='sample', or ingest bars first (bqx ingest).")
            baseline = fix_baseline(man, inv)
            infos = pair_infos(root, inv)
            anchors = ensure_anchors(root, man, specs, planned, inv, baseline, infos)
            months = select_months(inv, start_m, end_m)
            use_pairs = [p for p in (sel_pairs or sorted(inv.months_by_pair)) if p in inv.months_by_pair]
            graph = TaskGraph(specs, inv, baseline=baseline, anchors=anchors, infos=infos)
            tasks = graph.build(planned, use_pairs, months)
            rows = man.tasks()
            reverify: list[str] = []
            if opts.verify:  # tasks whose files fail their checksum are planned as never done
                from bqx.engine.gate import tasks_to_recompute, without

                redo, findings = tasks_to_recompute(root, man)
                reverify = [f.line() for f in findings]
                to_run = choose(tasks, without(rows, redo), root,
                                force_stages=force_stages, retry_failed=opts.retry_failed)
            else:
                to_run = choose(tasks, rows, root, force_stages=force_stages, retry_failed=opts.retry_failed)
            plan = describe(specs, planned, tasks, to_run, rows, workers=n_workers, pairs=use_pairs, months=months)
            man.set_meta("params", json.dumps({f: dict(p) for s in specs.values() for f, p in s.params.items()}))
            log_name = f"run-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{os.getpid()}.log"
            log_path = backend_for(root).join(f"logs/{log_name}") if is_url(root) else root / "logs" / log_name
            args = {"source": opts.source_label(), "pairs": use_pairs,
                    "months": months, "stages": planned, "force": opts.force, "retry_failed": opts.retry_failed,
                    "params": opts.params or {}, "executor": executor if isinstance(executor, str) else type(executor).__name__,
                    "workers": n_workers}
            run_id = man.start_run(args, str(log_path))
            result = RunResult(str(root), run_id, False, len(tasks), len(to_run), len(tasks) - len(to_run),
                               bars_written=written, log_path=str(log_path), plan=plan, reverified=reverify)
            with run_log(root, log_name) as log:
                log.write(f"bqx run {run_id} at {datetime.now(timezone.utc).isoformat()} args={json.dumps(args, default=str)}\n")

                def note(ev: Event) -> None:
                    log.write(ev.line() + "\n")
                    emit(ev)

                for key in to_run:  # say which tasks run again after a failure
                    last = rows.get(key)
                    if last is not None and last.status in ("failed", "interrupted"):
                        note(Event("task_rerun", stage=key[0], stage_id=_stage_id(key[0]), pair=key[1],
                                   month=key[2], error=(last.error or last.status).splitlines()[0]))
                note(Event("run_started", total=len(tasks), to_run=len(to_run)))
                if executor == "dask":  # a remote cluster's size comes from the scheduler, not this machine
                    ex = make_executor(executor, opts.workers, scheduler=opts.scheduler, retries=opts.task_retries)
                else:
                    ex = make_executor(executor, n_workers) if isinstance(executor, str) else executor
                try:
                    _execute(root, man, ex, specs, tasks, to_run, rows, anchors, infos, baseline, run_id, result, note,
                             log, opts)
                except KeyboardInterrupt:  # SIGINT, or SIGTERM turned into one by the CLI: record what stopped
                    stopped = man.interrupt_running("interrupted: the run was stopped by a signal; rerun to resume")
                    log.write(f"run_interrupted tasks={stopped}\n")
                    _stop_workers(ex)
                    raise
                finally:
                    if isinstance(executor, str):
                        ex.close()
                result.seconds = time.perf_counter() - t_start
                note(Event("run_finished", done=len(result.done), failed=len(result.failed), total=len(tasks),
                           to_run=len(to_run), seconds=result.seconds))
            man.end_run(run_id, "ok" if result.ok else "failed",
                        {"done": len(result.done), "failed": len(result.failed), "blocked": len(result.blocked)})
            return result


@contextmanager
def run_log(root: Any, name: str) -> Iterator[IO[str]]:
    """The run's log file, line-buffered: `<store>/logs/<name>` of a local store. An object store gets a local
    temporary file uploaded to `logs/<name>` when the run ends, however it ends (error, interrupt), so the
    store needs nothing of the driver's disk; a driver killed outright leaves no log there (its manifest
    records say what was done)."""
    if not is_url(root):
        path = Path(root) / "logs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", buffering=1) as fh:
            yield fh
        return
    tmp = Path(tempfile.mkdtemp(prefix="bqx-log-"))

    def upload() -> None:
        backend_for(root).write_bytes(f"logs/{name}", (tmp / name).read_bytes())

    try:
        with open(tmp / name, "a", buffering=1) as fh:
            try:
                yield fh
            except BaseException:  # the run stopped on an error or a signal: keep its log, report its own error
                fh.flush()
                try:
                    upload()
                except Exception:  # noqa: BLE001 - the store is unreachable: the run's error says more
                    pass
                raise
        upload()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- the scheduler ------------------------------------------------------------------------------

def chainable(specs: Mapping[str, StageSpec]) -> set[str]:
    """Stages whose tasks of one (pair, month) can run as one chain: per pair, no lookahead, reading only such stages.

    A chain for month m then depends only on chains of months before m (the context), so chains
    never wait on each other in a cycle; month tasks (cross-pair) and lookahead stages (targets)
    run as single tasks.
    """
    ok: set[str] = set()
    for name, spec in specs.items():  # topological order
        if not spec.month_task and spec.lookahead == 0 and all(i in ok for i in spec.inputs):
            ok.add(name)
    return ok


def _units(to_run: Sequence[TaskKey], chain_stages: set[str]) -> list[list[TaskKey]]:
    """The tasks grouped into what is submitted at once: a chain per (pair, month), else one task."""
    units: list[list[TaskKey]] = []
    chains: dict[tuple[str | None, str], int] = {}
    for key in to_run:  # topological order, so each chain's members are in dependency order
        if key[0] in chain_stages and key[1] is not None:
            at = chains.setdefault((key[1], key[2]), len(units))
            if at == len(units):
                units.append([])
            units[at].append(key)
        else:
            units.append([key])
    return units


def _execute(root: Path, man: Manifest, ex: Executor, specs: Mapping[str, StageSpec], tasks: Mapping[TaskKey, Task],
             to_run: Sequence[TaskKey], before: Mapping[TaskKey, TaskRow], anchors: Mapping[tuple[str, str], Any], infos: Mapping[str, Any],
             baseline: datetime, run_id: int, result: RunResult, note: Any, log: Any, opts: RunOptions) -> None:
    kill_after = int(os.environ.get(KILL_ENV, "0") or 0)
    run_set = set(to_run)
    units = _units(to_run, chainable(specs) if opts.chain else set())
    unit_of = {k: i for i, u in enumerate(units) for k in u}
    waiting = {i: {unit_of[d] for k in u for d in tasks[k].deps if d in run_set} - {i} for i, u in enumerate(units)}
    dependants: dict[TaskKey, list[TaskKey]] = {k: [] for k in to_run}
    for k in to_run:
        for d in tasks[k].deps:
            if d in run_set:
                dependants[d].append(k)
    unit_dependants: dict[int, set[int]] = {i: set() for i in range(len(units))}
    for i, deps in waiting.items():
        for d in deps:
            unit_dependants[d].add(i)
    ready = deque(i for i in range(len(units)) if not waiting[i])
    inflight: dict[Any, int] = {}
    blocked: set[TaskKey] = set()
    recorded = 0
    deaths = WorkerDeaths(opts.task_retries)
    restartable = callable(getattr(ex, "restart", None))
    started: set[int] = set()

    def ev(kind: str, key: TaskKey, **kw: Any) -> Event:
        return Event(kind, stage=key[0], stage_id=_stage_id(key[0]), pair=key[1], month=key[2], **kw)

    if hasattr(ex, "on_retry"):  # Dask: the cluster carries on; the executor submits a lost task again and says so
        def lost(spec: Any, n: int, worker: str) -> None:
            log.write(f"a Dask worker ({worker}) died holding {spec.stage} {spec.pair or ''} {spec.month}: "
                      f"running it again (death {n})\n")
            for m in spec.members:
                note(ev("task_retried", m.key, error=f"worker died (death {n}); running it again"))
        ex.on_retry = lost

    def block(key: TaskKey, label: str) -> None:
        todo = [key]
        while todo:
            d = todo.pop()
            if d in blocked:
                continue
            blocked.add(d)
            result.blocked.append({"stage": d[0], "pair": d[1], "month": d[2], "error": f"input {label} failed"})
            note(ev("task_blocked", d, error=f"input {label} failed"))
            todo.extend(dependants[d])

    def release(unit: int) -> None:
        for d in sorted(unit_dependants[unit]):
            waiting[d].discard(unit)
            if not waiting[d]:
                ready.append(d)

    def split(unit: int, members: Sequence[TaskKey]) -> None:
        """Submit a chain's members one by one instead (each then succeeds or fails on its own)."""
        ids = list(range(len(units), len(units) + len(members)))
        for i, key in zip(ids, members):
            units.append([key])
            unit_of[key] = i
            unit_dependants[i] = set()
        for i, key in zip(ids, members):
            # the chain was ready, so its other inputs are done: only its own members are waited for
            waiting[i] = {ids[members.index(d)] for d in tasks[key].deps if d in members}
            for d in waiting[i]:
                unit_dependants[d].add(i)
        for d in unit_dependants.pop(unit):
            if unit in waiting[d]:
                waiting[d].discard(unit)
                waiting[d] |= set(ids)
                for i in ids:
                    unit_dependants[i].add(d)
        ready.extendleft(reversed([i for i in ids if not waiting[i]]))

    def finish(unit: int, results: Sequence[TaskResult]) -> None:
        nonlocal recorded
        deaths.finished(unit)
        members = [k for k in units[unit] if k not in blocked]
        for key, res in zip(members, results):
            if key in blocked:  # a member blocked by an earlier member's failure, reported with it
                man.restore(key, before.get(key))
                continue
            if res.ok:
                man.record(*key, status="done", rows=res.rows, seconds=res.seconds, error=None,
                           fingerprint=res.fingerprint, outputs=res.outputs, run_id=run_id)
                result.done.append({"stage": key[0], "pair": key[1], "month": key[2], "rows": res.rows,
                                    "seconds": res.seconds})
                note(ev("task_done", key, rows=res.rows, seconds=res.seconds))
            else:
                man.record(*key, status="failed", rows=None, seconds=res.seconds, error=res.error,
                           fingerprint=None, outputs=[], run_id=run_id)
                first = (res.error or "").splitlines()[0] if res.error else ""
                result.failed.append({"stage": key[0], "pair": key[1], "month": key[2], "error": first})
                log.write((res.error or "") + "\n")
                note(ev("task_failed", key, seconds=res.seconds, error=first))
                for d in dependants[key]:
                    block(d, f"{key[0]} {key[1] or ''} {key[2]}".replace("  ", " "))
            recorded += 1
            if kill_after and recorded >= kill_after:
                log.flush()
                man.sync(force=True)  # the records so far are in the store (an object store's manifest too)
                os.kill(os.getpid(), signal.SIGKILL)
        release(unit)

    def collect(handle: Any, unit: int) -> list[TaskResult] | None:
        """The unit's results, or None when its pool lost a worker (the unit is then run again or given up)."""
        try:
            got = ex.result(handle)
            return got if isinstance(got, list) else [got]
        except Exception as exc:  # noqa: BLE001 - a crashed worker process
            if restartable and is_dead_worker(exc):
                return None
            return [TaskResult(*k, ok=False, error=f"worker crashed: {type(exc).__name__}: {exc}",
                               fingerprint=tasks[k].fingerprint) for k in units[unit] if k not in blocked]

    def recover(dead: list[int]) -> None:
        """A worker died: settle every unit in flight, start a new pool, queue the dead units again (or give up)."""
        _replace_pool(root, ex, inflight, dead, collect, finish)
        again, given_up = deaths.died(dead)
        log.write(f"a pool worker died (the pool broke {deaths.breaks} time(s)): a new pool runs {len(again)} "
                  f"unit(s) again, {len(given_up)} given up\n")
        for unit in given_up:
            members = [k for k in units[unit] if k not in blocked]
            if not members:
                finish(unit, [])
                continue
            label = " ".join(x for x in ("+".join(k[0] for k in members), members[0][1], members[0][2]) if x)
            why = deaths.reason(unit, label)
            finish(unit, [TaskResult(*k, ok=False, error=why, fingerprint=tasks[k].fingerprint) for k in members])
        for unit in again:
            for key in units[unit]:
                if key not in blocked:
                    note(ev("task_retried", key, error=f"worker died (death {deaths.deaths[unit]}); running it again"))
        ready.extendleft(reversed(again))

    while ready or inflight:
        while ready and len(inflight) < deaths.limit(ex.workers):
            unit = ready.popleft()
            members = [k for k in units[unit] if k not in blocked]
            if not members:
                release(unit)
                continue
            specs_ = [_spec(root, specs[k[0]], tasks[k], anchors, infos, baseline, chain=len(members) > 1)
                      for k in members]
            spec: TaskSpec | ChainSpec = specs_[0] if len(specs_) == 1 else ChainSpec(tuple(specs_))
            for key in members:
                man.mark_running(*key, run_id)
                if unit not in started:
                    note(ev("task_started", key))
            started.add(unit)
            try:
                handle = ex.submit(spec)
            except Exception as exc:  # noqa: BLE001 - a broken pool fails the task, loudly
                if restartable and is_dead_worker(exc):  # a worker died while nothing of this unit ran
                    ready.appendleft(unit)
                    recover([])
                    continue
                if len(members) > 1:  # e.g. workers that cannot import one member's module: the others still run
                    for key in members:
                        man.restore(key, before.get(key))
                    split(unit, members)
                    continue
                handle = _failed_handle(members, f"could not submit: {type(exc).__name__}: {exc}", specs_)
            inflight[handle] = unit
        for handle in ex.wait(list(inflight)):
            if handle not in inflight:  # settled by a recovery from an earlier handle of this batch
                continue
            unit = inflight.pop(handle)
            results = collect(handle, unit)
            if results is None:
                recover([unit])
            else:
                finish(unit, results)
    if getattr(ex, "lost", 0):  # Dask workers killed mid-write may have left temp files; none of ours runs now
        clean_temp_files(root)


def _replace_pool(root: Path, ex: Executor, inflight: dict[Any, int], dead: list[int], collect: Any,
                  finish: Any) -> None:
    """Settle what was in flight when the pool broke (results that came back are kept; the rest join `dead`),
    then start a new pool and remove the temporary files the stopped workers left."""
    while inflight:  # a broken pool fails everything it still held at once, so this ends quickly
        for handle in ex.wait(list(inflight)):
            if handle not in inflight:
                continue
            unit = inflight.pop(handle)
            results = collect(handle, unit)
            if results is None:
                dead.append(unit)
            else:
                finish(unit, results)
    ex.restart()  # type: ignore[attr-defined]
    clean_temp_files(root)  # no worker runs now, and the driver holds the store lock


def _stop_workers(ex: Executor) -> None:
    """End a local pool's worker processes now, so an interrupted run exits at once (their tasks are rerun)."""
    processes = getattr(getattr(ex, "pool", None), "_processes", None) or {}
    for proc in list(processes.values()):
        try:
            proc.terminate()
        except (OSError, AttributeError):
            pass


def _failed_handle(keys: Sequence[TaskKey], error: str, specs_: Sequence[TaskSpec]) -> Any:
    from concurrent.futures import Future

    results = [TaskResult(*k, ok=False, error=error, fingerprint=s.fingerprint) for k, s in zip(keys, specs_)]
    fut: Future = Future()
    fut.set_result(results if len(results) > 1 else results[0])
    return fut


def _stage_id(name: str) -> str:
    try:
        return stage_by_key(name).id
    except KeyError:
        return name


def _spec(root: Path, spec: StageSpec, task: Task, anchors: Mapping[tuple[str, str], Any], infos: Mapping[str, Any],
          baseline: datetime, *, chain: bool = False) -> TaskSpec:
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
        input_columns={s: tuple(c) for s, c in spec.input_columns.items()},
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
        chain=chain,
    )


# -- bars, baseline, anchors --------------------------------------------------------------------

def _dry_run(root: Path, opts: RunOptions, specs: Mapping[str, StageSpec], planned: list[str], t0: float, *,
             force_stages: Sequence[str] = ()) -> RunResult:
    """The plan, without writing anything: from the store's bars, or the bars the source would write."""
    pairs, start, end, workers, retry_failed = opts.pairs, opts.start, opts.end, opts.n_workers, opts.retry_failed
    from bqx.store.state import open_state

    state = open_state(root)
    rows_known, anchors = state.tasks, state.anchors
    bars = {k: (v[0], v[1]) for k, v in state.bars.items()}
    files = bars_stats(root)
    inv_rows, digests = {}, {}
    for k, (rel, _size, _stamp) in files.items():
        if k in bars:
            digests[k], inv_rows[k] = bars[k]
        if not inv_rows.get(k) or not digests.get(k):
            digests[k], inv_rows[k] = digest_and_rows(root, rel)
    if opts.sample:
        for p in pairs or PAIR_NAMES:
            for m in month_span(start or SAMPLE_START, end or add_months(start or SAMPLE_START, 1)):
                if (p, m) not in inv_rows:
                    inv_rows[(p, m)] = EST_ROWS_PER_MONTH
                    digests[(p, m)] = f"pending:{p}:{m}"
    if not inv_rows:
        raise InputError(f"store {root} has no bars", hint="Run with source='sample', or ingest bars first (bqx ingest).")
    inv = BarsInventory(inv_rows, digests)
    base = state.baseline or month_start(min(m for _, m in inv_rows))
    real = BarsInventory({k: v for k, v in inv_rows.items() if k in files}, digests)
    infos = pair_infos(root, real) if real.rows else {}
    graph = TaskGraph(specs, inv, baseline=base, anchors=anchors, infos=infos)
    months = select_months(inv, start, end)
    use_pairs = [p for p in (pairs or sorted(inv.months_by_pair)) if p in inv.months_by_pair]
    tasks = graph.build(planned, use_pairs, months)
    to_run = choose(tasks, rows_known, root, force_stages=force_stages, retry_failed=retry_failed)
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
