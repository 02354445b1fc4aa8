"""The gate before validate and export: every task of the selected stages and pairs is done and current.

"Current" is decided as `bqx run` decides it: the task graph is built from the manifest's bars
(a bars file whose size or mtime changed is re-digested, as `run` would) with the stored
parameters, and a task is current when `plan.fresh` holds (done, same fingerprint, outputs as
recorded). Bars months the manifest knows but the disk lacks are an error of their own. A month
in which a pair has no bars has no task, so it is never missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

from bqx.store.manifest import TaskRow, open_reader, params_from_meta
from bqx.engine.partitions import month_start
from bqx.engine.plan import BarsInventory, TaskGraph, TaskKey, choose, select_stages, stage_specs
from bqx.errors import BqxError, UsageError
from bqx.store.checksum import Finding, StoreIntegrityError, recorded_files, summarize, verify_files
from bqx.store.backend import is_url
from bqx.store.layout import BARS, bars_stats, partition_path


class StoreNotCurrentError(BqxError):
    """Tasks of the selected range are failed, blocked, stale or missing, or bars files are gone (exit 1)."""

    exit_code = 1


@dataclass
class GateState:
    """What the gate found: the manifest's bars months per pair and every task that is not current, by reason."""

    months: dict[str, list[str]]  # pair -> bars months the manifest knows (with bars), sorted
    gone: list[tuple[str, str]] = field(default_factory=list)  # bars months the manifest knows, absent on disk
    problems: dict[str, list[TaskKey]] = field(default_factory=dict)  # failed/blocked/interrupted/stale/missing

    @property
    def ok(self) -> bool:
        return not self.gone and not any(self.problems.values())


def _label(key: TaskKey) -> str:
    stage, pair, month = key
    return f"{stage} {pair} {month}" if pair else f"{stage} {month}"


def _first(items: list[str], limit: int = 3) -> str:
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def inspect(store: str | os.PathLike[str], *, pairs: Sequence[str] | None = None,
            stages: Sequence[str] | None = None) -> GateState:
    """The state of the tasks of `stages` (and what they read) for `pairs` (default: all), as `run` would see it."""
    root = store if is_url(store) else Path(store)
    man = open_reader(root)
    if man is None or (not is_url(root) and not (Path(root) / BARS).is_dir()):
        raise UsageError(f"{root} is not a bqx store (no manifest.sqlite or bars/)",
                         hint="Run `bqx run --store DIR` first, or pass the right --store.")
    with man:
        rows = man.tasks()
        anchors = man.anchors()
        known = man.bars()
        params = params_from_meta(man.get_meta("params"))
        raw_baseline = man.get_meta("baseline_time")
    from bqx.engine.source import digest_and_rows

    files = bars_stats(root)  # one listing: (pair, month) -> (rel, size, stamp)
    keep = set(pairs) if pairs else None
    gone = sorted(k for k in known if k not in files and (keep is None or k[0] in keep))
    n_rows: dict[tuple[str, str], int] = {}
    digests: dict[tuple[str, str], str] = {}
    for key in sorted(set(known) | set(files)):
        got = files.get(key)
        if got is None:
            continue  # gone: reported on its own; its tasks then count as missing or stale
        cached = known.get(key)
        if cached is not None and (got[1], got[2]) == (cached[2], cached[3]):
            digests[key], n_rows[key] = cached[0], cached[1]
        else:  # a bars file run has not taken in yet: digested as run would
            digests[key], n_rows[key] = digest_and_rows(root, got[0])
    inv = BarsInventory({k: v for k, v in n_rows.items() if v > 0}, digests)
    months = {p: ms for p, ms in inv.months_by_pair.items() if keep is None or p in keep}
    state = GateState(months, gone)
    if not inv.rows:
        return state
    specs = stage_specs(params or None)
    planned, _ = select_stages(specs, None if stages is None else [s for s in stages if s in specs])
    baseline = datetime.fromisoformat(raw_baseline) if raw_baseline else month_start(min(m for _, m in inv.rows))
    from bqx.engine.source import pair_infos

    graph = TaskGraph(specs, inv, baseline=baseline, anchors=anchors, infos=pair_infos(root, inv))
    all_months = sorted({m for _, m in inv.rows})
    tasks = graph.build(planned, sorted(months), all_months)
    stale = choose(tasks, rows, root)
    failed = {k for k in stale if rows.get(k) is not None and rows[k].status == "failed"}
    state.problems = {"failed": [], "blocked": [], "interrupted": [], "stale": [], "missing": []}
    broken: set[TaskKey] = set()  # failed, or blocked by a failure
    for key in stale:  # topological order
        row: TaskRow | None = rows.get(key)
        if key in failed:
            why = "failed"
        elif any(d in broken for d in tasks[key].deps):
            why = "blocked"
        elif row is not None and row.status in ("running", "interrupted"):
            why = "interrupted"
        elif row is None:
            why = "missing"
        else:
            why = "stale"
        if why in ("failed", "blocked"):
            broken.add(key)
        state.problems[why].append(key)
    return state


def require_current(store: str | os.PathLike[str], *, pairs: Sequence[str] | None = None,
                    stages: Sequence[str] | None = None, action: str = "export",
                    state: GateState | None = None) -> GateState:
    """The gate's state (`state` when already inspected), or StoreNotCurrentError naming what is not current."""
    state = state or inspect(store, pairs=pairs, stages=stages)
    root = store if is_url(store) else Path(store)
    if state.gone:
        names = [str(partition_path(root, BARS, p, m)) for p, m in state.gone]
        raise StoreNotCurrentError(
            f"refusing to {action} store {root}: {len(state.gone)} bars month(s) the manifest records are missing "
            f"on disk: {_first(names)}",
            hint="Restore those files, or re-ingest those months (bqx ingest) and run `bqx run`.")
    if not state.ok:
        parts = [f"{len(keys)} {why} ({_first([_label(k) for k in keys])})"
                 for why, keys in state.problems.items() if keys]
        failed = bool(state.problems.get("failed") or state.problems.get("blocked"))
        hint = ("Run `bqx status` to see the errors, fix their cause, then `bqx run` (or `bqx run --retry-failed`)."
                if failed else "Run `bqx run` to bring them up to date.")
        raise StoreNotCurrentError(f"refusing to {action} store {root}: tasks are not current: {'; '.join(parts)}",
                                   hint=hint)
    return state


# -- run --verify ---------------------------------------------------------------------------------

def tasks_to_recompute(root: Path, man: Any, workers: int | None = None) -> tuple[set[TaskKey], list[Finding]]:
    """For `run --verify`: the done tasks with an output whose content changed or carries no checksum.

    A bars file whose content changed while its size and mtime were kept cannot be recomputed (bars
    are the input): StoreIntegrityError names it. A bars file changed with a new mtime is taken in
    by the run as any edited bars file is.
    """
    records = recorded_files(man)
    findings = [f for f in verify_files(root, records, workers) if f.problem != "missing"]
    rotten = [f for f in findings if f.owner[0] == BARS and f.stamp_kept]
    if rotten:
        raise StoreIntegrityError(
            f"bars in store {root} are corrupt (content changed, size and mtime kept): {summarize(rotten, 3)}",
            hint="Restore those files from a copy, or re-ingest those months (bqx ingest), then run again.")
    redo = {f.owner for f in findings if f.owner[0] != BARS}
    return redo, [f for f in findings if f.owner[0] != BARS]


def without(rows: Mapping[Any, Any], keys: set[Any]) -> dict[Any, Any]:
    """The task rows with `keys` left out, so the planner sees those tasks as never done."""
    return {k: v for k, v in rows.items() if k not in keys}
