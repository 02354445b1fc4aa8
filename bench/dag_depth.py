"""The task DAG of a store that does not exist yet: tasks, submissions, and the critical path.

    PYTHONPATH=$PWD .venv/bin/python bench/dag_depth.py --pairs 28 --months 120
    PYTHONPATH=$PWD .venv/bin/python bench/dag_depth.py --pairs 28 --months 120 --seconds summary.json --workers 16,64,256

Builds the engine's own task graph (bqx.engine.plan.TaskGraph, with every stage's real context and
lookahead) over a made-up bars inventory of `--pairs` x `--months` (full months of bars), groups it
into what `bqx run` submits (a chain per (pair, month), bqx.engine.run._units) and walks the
longest path, in submissions (hops) and, with `--seconds` (the JSON that `bench/full_year.py
--summary` writes: per-stage task seconds, scaled to the workers' measured CPU seconds), in CPU-s. With
`--workers`, prints the bounds of the wall time at N workers: max(work / N, critical path) below,
work / N + critical path above (Brent), before any per-task overhead of the executor.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone

from bqx.engine.partitions import add_months, month_span
from bqx.engine.plan import BarsInventory, TaskGraph, stage_specs
from bqx.engine.run import _units, chainable
from bqx.universe import PAIR_NAMES


def graph(pairs: list[str], months: list[str]):
    specs = stage_specs()
    rows = {(p, m): 31_000 for p in pairs for m in months}
    inv = BarsInventory(rows=rows, digests={k: "0" * 64 for k in rows})
    g = TaskGraph(specs, inv, baseline=datetime(2000, 1, 1, tzinfo=timezone.utc), anchors={}, infos={})
    tasks = g.build(list(specs), pairs, months)
    return specs, tasks


def longest(units: list[list[tuple]], tasks: dict, seconds: dict[str, float]) -> tuple[int, float, list]:
    """(hops, seconds, the path's units) of the longest path through the submissions, in topological order."""
    unit_of = {k: i for i, u in enumerate(units) for k in u}
    best: list[tuple[int, float, int]] = []  # (hops, seconds, predecessor unit)
    for i, unit in enumerate(units):
        preds = {unit_of[d] for k in unit for d in tasks[k].deps if unit_of[d] != i}
        w = sum(seconds.get(k[0], 1.0) for k in unit)
        h, s, p = max(((best[j][0], best[j][1], j) for j in preds), default=(0, 0.0, -1), key=lambda x: x[1])
        best.append((h + 1, s + w, p))
    end = max(range(len(units)), key=lambda i: best[i][1])
    path, i = [], end
    while i >= 0:
        path.append(units[i])
        i = best[i][2]
    return best[end][0], best[end][1], path[::-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=28)
    ap.add_argument("--months", type=int, default=120)
    ap.add_argument("--start", default="2015-01")
    ap.add_argument("--seconds", default=None, help="bench/full_year.py --summary JSON (per-stage task seconds)")
    ap.add_argument("--workers", default="", help="comma list of worker counts for the wall-time bounds")
    args = ap.parse_args()

    pairs = list(PAIR_NAMES)[: args.pairs]
    months = month_span(args.start, add_months(args.start, args.months - 1))
    t = time.perf_counter()
    specs, tasks = graph(pairs, months)
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{len(pairs)} pairs x {len(months)} months: {len(tasks):,d} tasks "
          f"(graph built in {time.perf_counter() - t:.1f} s, {time.process_time():.1f} CPU-s; this process's peak "
          f"RSS {rss:,.0f} MB, the driver's graph included)")
    per_stage: dict[str, int] = {}
    for k in tasks:
        per_stage[k[0]] = per_stage.get(k[0], 0) + 1
    print("  " + ", ".join(f"{s} {n:,d}" for s, n in per_stage.items()))

    seconds: dict[str, float] = {}
    if args.seconds:
        summary = json.load(open(args.seconds))
        scale = len(pairs) / len(summary["pairs"])  # a month task covers every pair: scale it by the pairs
        # task seconds are wall times inside the workers: on a loaded machine they hold waiting too, so
        # they are scaled to the workers' CPU seconds (getrusage), which is what a free core would take
        cpu = summary["run"]["cpu_workers"] / sum(st["seconds"] for st in summary["stages"])
        for st in summary["stages"]:
            mean = st["seconds"] / st["tasks"] * cpu
            seconds[st["stage"]] = mean * (scale if specs[st["stage"]].month_task else 1.0)
        print(f"  mean task CPU-s (task seconds x {cpu:.3f}, the workers' CPU over their task seconds; month tasks "
              f"x {scale:.1f} for the pairs): " + ", ".join(f"{s} {v:.2f}" for s, v in seconds.items()))
    work = sum(seconds.get(k[0], 1.0) for k in tasks)
    order = list(tasks)  # TaskGraph adds dependencies first: a topological order
    for name, chain in (("chained (default)", chainable(specs)), ("--no-chain", set())):
        units = _units(order, chain)
        hops, crit, path = longest(units, tasks, seconds)
        print(f"\n{name}: {len(units):,d} submissions; longest path {hops} submissions"
              + (f", {crit:,.0f} CPU-s (work {work:,.0f} CPU-s)" if seconds else ""))
        shown = [(f"chain of {len(u)}" if len(u) > 1 else u[0][0]) + f" {u[0][1] or '(all pairs)'} {u[0][2]}"
                 for u in path]
        print("  path: " + (" -> ".join(shown) if len(shown) <= 6 else
                            " -> ".join(shown[:3]) + f" -> ... ({len(shown) - 6} more) -> " + " -> ".join(shown[-3:])))
        for n in [int(x) for x in args.workers.split(",") if x] if seconds else []:
            print(f"  {n:5d} workers: wall between {max(work / n, crit):,.0f} s and {work / n + crit:,.0f} s")


if __name__ == "__main__":
    main()
