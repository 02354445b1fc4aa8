"""`status`: the stage table from the manifest, readable at any time (during a run too)."""

from __future__ import annotations

import os
from typing import Any

from bqx.store.manifest import open_reader, params_from_meta
from bqx.engine.plan import all_stages, stage_specs
from bqx.store.layout import bars_partitions
from bqx.store.lock import writer_active

_KILLED = "interrupted: the run that started it stopped; rerun to resume"


def status(store: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """One row per stage: id, name, unit, status, done/total partitions, features, rows, seconds, failures.

    Status is "done", "partial", "running", "failed", "interrupted" (a run stopped by a signal or
    killed while these tasks ran: a rerun resumes), "pending" (built, nothing computed yet),
    "not built" (no family), "view" (computed on load) or "not run" (validation, export).
    """
    root = store  # a local directory or an s3:// URL
    writing = writer_active(root)
    man = open_reader(root)
    tasks, bars, params = {}, {}, None
    if man is not None:
        with man:
            tasks = man.tasks()
            bars = man.bars()
            params = params_from_meta(man.get_meta("params")) or None
    if not bars:
        bars = {k: ("", 0, 0, 0) for k in bars_partitions(root)}
    try:
        specs = stage_specs(params)
    except Exception:  # noqa: BLE001 - parameters of a family that is gone: show defaults
        specs = stage_specs(None)
    pair_months = {k for k, v in bars.items()}
    months = {m for _, m in pair_months}
    out = []
    for st in all_stages():
        row: dict[str, Any] = {"id": st.id, "name": st.name, "unit": st.unit, "done": 0, "total": 0, "features": 0,
                               "rows": 0, "seconds": 0.0, "failures": []}
        spec = specs.get(st.name)
        if st.unit == "source":
            row.update(status="done" if bars else "pending", done=len(bars), total=len(bars),
                       rows=sum(v[1] for v in bars.values()))
        elif st.unit == "view":
            from bqx.core.registry import REGISTRY

            views = [f for f in REGISTRY if f.stage == st.name and f.view]
            row.update(status="view" if views else "not built",
                       features=sum(len(f.column_names()) for f in views))
        elif st.unit in ("check", "dataset"):
            row.update(status="not run")
        elif spec is None:
            row.update(status="not built")
        else:
            mine = [t for k, t in tasks.items() if k[0] == st.name]
            done = [t for t in mine if t.status == "done"]
            failed = [t for t in mine if t.status == "failed"]
            running = [t for t in mine if t.status == "running"] if writing else []
            interrupted = [t for t in mine if t.status == "interrupted" or (t.status == "running" and not writing)]
            total = len(months) if spec.month_task else len(pair_months)
            row.update(
                done=len(done), total=total, features=len(spec.columns),
                rows=sum(t.rows or 0 for t in done), seconds=round(sum(t.seconds or 0.0 for t in done), 3),
                failures=[{"pair": t.pair, "month": t.month, "error": (t.error or "").splitlines()[0] if t.error else ""}
                          for t in failed]
                + [{"pair": t.pair, "month": t.month, "error": (t.error or _KILLED).splitlines()[0]} for t in interrupted],
                status=("running" if running else "failed" if failed else "interrupted" if interrupted
                        else "done" if total and len(done) >= total
                        else "partial" if done else "pending"),
            )
        out.append(row)
    return out
