"""The run: stage timeline of the tasks, task seconds and bytes per stage, the critical path."""

from __future__ import annotations

import json
from collections import defaultdict

from bqx.report import figures
from bqx.report.context import Context
from bqx.report.page import Chart, Section, table


def critical_path(ctx: Context, seconds: dict[str, float]) -> tuple[list[str], float]:
    """The chain of stages along the DAG with the largest summed stage time (as `bqx plan` weighs them)."""
    best: dict[str, tuple[float, list[str]]] = {}
    for name, spec in ctx.specs.items():  # topological
        if name not in seconds:
            continue
        prev = max((best[d] for d in spec.inputs if d in best), default=(0.0, []), key=lambda b: b[0])
        best[name] = (prev[0] + seconds[name], prev[1] + [name])
    if not best:
        return [], 0.0
    total, path = max(best.values(), key=lambda b: b[0])
    return path, total


def section(ctx: Context) -> Section:
    sec = Section("run", "Run")
    done = [t for t in ctx.tasks if t["status"] == "done" and t["started_at"] is not None and t["finished_at"] is not None]
    if not done:
        sec.note("The manifest records no finished task: run `bqx run` on this store first.")
        return sec
    failed = [t for t in ctx.tasks if t["status"] == "failed"]
    if failed:
        sec.note(f"FAILED: {len(failed)} tasks failed, e.g. {failed[0]['stage']} {failed[0]['pair'] or ''} {failed[0]['month']}.")
    t0 = min(t["started_at"] for t in done)
    order = [s for s in ctx.specs if any(t["stage"] == s for t in done)]
    by_stage: dict[str, list] = defaultdict(list)
    secs: dict[str, float] = defaultdict(float)
    nbytes: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    for t in done:
        label = f"{t['stage']} {t['pair'] or 'all pairs'} {t['month']}: {t['seconds'] or 0:.2f} s"
        by_stage[t["stage"]].append((round(t["started_at"] - t0, 3), round(t["finished_at"] - t0, 3), label))
        secs[t["stage"]] += t["seconds"] or 0.0
        nbytes[t["stage"]] += sum(o[1] for o in json.loads(t["outputs"] or "[]"))
        counts[t["stage"]] += 1
    workers = 1
    if ctx.runs:
        try:
            workers = int(json.loads(ctx.runs[-1]["args"] or "{}").get("workers") or 1)
        except (ValueError, TypeError):
            workers = 1
    lanes = {s: secs[s] / max(1, min(workers, counts[s])) for s in order}
    path, total = critical_path(ctx, lanes)
    wall = max(t["finished_at"] for t in done) - t0
    sec.add(f"<p>{len(done)} tasks done over {wall:.1f} s of wall time, {sum(secs.values()):.1f} task-seconds, "
            f"{sum(nbytes.values()) / 1e6:,.0f} MB written. Critical path (stage time = task seconds / "
            f"min(workers={workers}, tasks)): <b>{' → '.join(path)}</b>, {total:.1f} s.</p>")
    sec.add(Chart(figures.timeline({s: by_stage[s] for s in order}, "Tasks over time per stage (critical path in red)",
                                   highlight=path)))
    fig = figures.bars(order, {"task seconds": [round(secs[s], 2) for s in order]}, "Task seconds and bytes written per stage",
                       ytitle="task seconds")
    fig["data"].append({"type": "bar", "name": "MB written", "x": order, "y": [round(nbytes[s] / 1e6, 2) for s in order],
                        "yaxis": "y2", "offsetgroup": "2", "marker": {"color": figures.PALETTE[1]}})
    fig["data"][0]["offsetgroup"] = "1"
    fig["layout"]["yaxis2"] = {"title": {"text": "MB written"}, "overlaying": "y", "side": "right"}
    sec.add(Chart(fig))
    sec.add(table(["stage", "tasks", "task seconds", "MB written", "on critical path"],
                  [[s, counts[s], round(secs[s], 2), round(nbytes[s] / 1e6, 2), "yes" if s in path else ""] for s in order]))
    return sec
