"""Benchmark a full `bqx run` on the sample market: time, throughput, memory and bytes per stage.

    .venv/bin/python bench/full_year.py                       # 28 pairs x 12 months (~10.5 M bars)
    .venv/bin/python bench/full_year.py --months 3 --store /tmp/bqx-bench
    .venv/bin/python bench/full_year.py --months 1 --pairs EURUSD,USDJPY --executor serial
    .venv/bin/python bench/full_year.py --profile regression   # cProfile one task of a stage, in-process

Steps, each in its own process so their peak memories are apart: write the sample bars (month by
month), `run` every stage (the timed run), rerun with nothing changed, then `bqx validate` and
`bqx export` on the result. Per stage it prints tasks, rows, the summed task seconds (as the
workers measured them), rows per task-second, its wall span, and the bytes written, all from the
manifest. Peak memory: the driver's and the largest worker's peak RSS (getrusage) and, with psutil,
the largest sum of RSS over the run's process tree. At the end: run, validate and export side by side
with wall, CPU, peak memory and bytes written, against the I/O floor (bytes written / the fsync write
speed of the same disk, measured in the same run). Targets (2 cores): run < 10 min, memory < 8 GB,
no-change rerun < 5 % of the run.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

START = "2024-01"

RUN_CODE = """
import json, resource, sys, time
from bqx.engine import run
args = json.loads(sys.argv[1])
t = time.perf_counter()
r = run(args["store"], source=None, stages=args["stages"], executor=args["executor"], workers=args["workers"],
        scheduler=args["scheduler"], chain=args.get("chain", True))
out = {"seconds": time.perf_counter() - t, "ok": r.ok, "done": len(r.done), "total": r.total,
       "failed": r.failed[:5], "blocked": len(r.blocked),
       "cpu_driver": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
       "cpu_workers": sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2]),
       "driver_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
       "worker_rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}
print("BENCH " + json.dumps(out))
"""

BARS_CODE = """
import json, sys
from bqx.bars.sample import sample_market
from bqx.engine.partitions import month_span, add_months
from bqx.store.layout import write_bars
args = json.loads(sys.argv[1])
rows = 0
for m in month_span(args["start"], add_months(args["start"], args["months"] - 1)):
    bars = sample_market(pairs=args["pairs"], start=m, months=1, seed=0)
    rows += bars.height
    write_bars(args["store"], bars, source="sample", only_missing=True)
print("BENCH " + json.dumps({"rows": rows}))
"""

CLI = [sys.executable, "-c", "import sys; from bqx.cli.app import main; sys.argv[0] = 'bqx'; main()"]


class TreeMemory:
    """Samples the summed RSS of a process and its children (psutil) every `every` seconds."""

    def __init__(self, pid: int, every: float = 0.25):
        self.peak = 0
        self.procs = 0
        self._stop = threading.Event()
        try:
            import psutil
        except ImportError:
            self.available = False
            return
        self.available = True
        self._thread = threading.Thread(target=self._loop, args=(psutil, pid, every), daemon=True)
        self._thread.start()

    def _loop(self, psutil, pid: int, every: float) -> None:
        try:
            root = psutil.Process(pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            total, n = 0, 0
            try:
                for p in [root, *root.children(recursive=True)]:
                    try:
                        total += p.memory_info().rss
                        n += 1
                    except psutil.Error:
                        pass
            except psutil.Error:
                return
            if total > self.peak:
                self.peak, self.procs = total, n
            self._stop.wait(every)

    def stop(self) -> None:
        self._stop.set()


def child(code: str, args: dict, what: str, extra: list[str] | None = None) -> tuple[dict, float, TreeMemory]:
    """Run `code` (or the CLI with `extra`) in a new process; (its BENCH json, wall seconds, tree memory).

    The json gets `cpu_tree`: CPU seconds of the process and everything it waited for (getrusage).
    """
    cmd = [sys.executable, "-c", code, json.dumps(args)] if extra is None else CLI + extra
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    mem = TreeMemory(proc.pid)
    out, err = proc.communicate()
    mem.stop()
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    data: dict = {"returncode": proc.returncode,
                  "cpu_tree": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)}
    for line in out.splitlines():
        if line.startswith("BENCH "):
            data.update(json.loads(line[6:]))
    if proc.returncode != 0 and extra is None:
        sys.exit(f"{what} failed ({proc.returncode}):\n{err[-3000:]}")
    data["stdout"], data["stderr"] = out, err
    return data, seconds, mem


def stage_table(store: Path, run_id: int | None = None) -> list[dict]:
    """Per stage, from the manifest: tasks, rows, task seconds, wall span and bytes of the outputs."""
    with sqlite3.connect(f"file:{store / 'manifest.sqlite'}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT stage, rows, seconds, outputs, started_at, finished_at FROM tasks "
                            "WHERE status='done'" + ("" if run_id is None else f" AND run_id={int(run_id)}")).fetchall()
    agg: dict[str, dict] = defaultdict(lambda: {"tasks": 0, "rows": 0, "seconds": 0.0, "bytes": 0, "files": 0,
                                                "t0": float("inf"), "t1": 0.0, "max_task": 0.0})
    for stage, n, sec, outs, t0, t1 in rows:
        a = agg[stage]
        a["tasks"] += 1
        a["rows"] += n or 0
        a["seconds"] += sec or 0.0
        a["max_task"] = max(a["max_task"], sec or 0.0)
        files = json.loads(outs or "[]")
        a["bytes"] += sum(o[1] for o in files)
        a["files"] += len(files)
        a["t0"], a["t1"] = min(a["t0"], t0 or a["t0"]), max(a["t1"], t1 or 0.0)
    return sorted(({"stage": k, **v} for k, v in agg.items()), key=lambda a: -a["seconds"])


def last_run_id(store: Path) -> int:
    with sqlite3.connect(f"file:{store / 'manifest.sqlite'}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT max(id) FROM runs").fetchone()[0]


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under `path` (0 when it does not exist)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def fsync_write_speed(directory: Path, size: int = 2 << 30, chunk: int = 16 << 20) -> float:
    """Bytes per second of writing a `size`-byte file in `directory` and fsyncing it (the file is removed)."""
    block = os.urandom(chunk)
    path = directory / ".bench-write-speed.tmp"
    t = time.perf_counter()
    with open(path, "wb") as fh:
        for _ in range(max(1, size // chunk)):
            fh.write(block)
        fh.flush()
        os.fsync(fh.fileno())
    seconds = time.perf_counter() - t
    path.unlink()
    return max(1, size // chunk) * chunk / seconds


def store_summary(store: Path) -> dict:
    """Objects and bytes of the store by top-level directory, and the manifest's size per task row."""
    by_dir: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for f in store.rglob("*"):
        if f.is_file():
            top = f.relative_to(store).parts[0] if len(f.relative_to(store).parts) > 1 else "(top)"
            by_dir[top][0] += 1
            by_dir[top][1] += f.stat().st_size
    man = store / "manifest.sqlite"
    with sqlite3.connect(f"file:{man}?mode=ro", uri=True) as conn:
        task_rows = conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
    return {"objects": sum(v[0] for v in by_dir.values()), "bytes": sum(v[1] for v in by_dir.values()),
            "by_dir": {k: {"objects": v[0], "bytes": v[1]} for k, v in sorted(by_dir.items())},
            "manifest_bytes": man.stat().st_size, "task_rows": task_rows}


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB"


def print_stages(table: list[dict], bar_rows: int) -> None:
    total = sum(a["seconds"] for a in table) or 1.0
    print(f"\n{'stage':18s} {'tasks':>5s} {'rows':>11s} {'task s':>8s} {'share':>6s} {'max task':>8s} "
          f"{'rows/task-s':>11s} {'wall span':>9s} {'written':>10s}")
    for a in table:
        span = a["t1"] - a["t0"] if a["t1"] else 0.0
        print(f"{a['stage']:18s} {a['tasks']:5d} {a['rows']:11,d} {a['seconds']:8.1f} {a['seconds'] / total:6.1%} "
              f"{a['max_task']:8.2f} {a['rows'] / max(a['seconds'], 1e-9):11,.0f} {span:9.1f} {mb(a['bytes']):>10s}")
    print(f"{'all':18s} {sum(a['tasks'] for a in table):5d} {bar_rows:11,d} {total:8.1f} {'':6s} {'':8s} "
          f"{'':11s} {'':9s} {mb(sum(a['bytes'] for a in table)):>10s}")


def ratio(wall: float, floor: float) -> str:
    """wall / floor, or '-' when a step writes (almost) nothing."""
    return f"{wall / floor:.1f}" if floor >= 0.1 else "-"


def print_steps(steps: list[dict], speed: float, workers: int) -> None:
    """Run, validate and export side by side, each against its I/O floor (bytes written / fsync write speed)."""
    print(f"\nI/O floor: this disk writes {speed / 1e6:,.0f} MB/s (2 GiB file, fsync; measured now, same disk)")
    print(f"{'step':9s} {'wall s':>8s} {'CPU s':>8s} {'CPU/wall':>8s} {'peak':>10s} {'written':>10s} {'floor s':>8s} "
          f"{'wall/floor':>10s}")
    for st in steps:
        floor = st["bytes"] / speed
        peak = mb(st["peak"]) if st["peak"] is not None else "?"
        print(f"{st['step']:9s} {st['wall']:8.1f} {st['cpu']:8.1f} {st['cpu'] / max(st['wall'], 1e-9):8.2f} {peak:>10s} "
              f"{mb(st['bytes']):>10s} {floor:8.1f} {ratio(st['wall'], floor):>10s}")
    total = {k: sum(st[k] for st in steps) for k in ("wall", "cpu", "bytes")}
    print(f"{'all':9s} {total['wall']:8.1f} {total['cpu']:8.1f} {'':8s} {'':10s} {mb(total['bytes']):>10s} "
          f"{total['bytes'] / speed:8.1f} {ratio(total['wall'], total['bytes'] / speed):>10s}")
    print(f"(CPU s / {workers} cores is the wall time an idle machine could reach when the work parallelises)")


def profile_stage(store: Path, stage: str, top: int) -> None:
    """cProfile one task of `stage` in this process (the first pair-month, or month, of the store)."""
    from bqx.store.manifest import Manifest
    from bqx.engine.plan import TaskGraph, stage_specs
    from bqx.engine.run import _spec
    from bqx.engine.source import inventory, pair_infos
    from bqx.engine.worker import run_task

    with Manifest(store) as man:
        inv = inventory(store, man)
        anchors = man.anchors()
        from datetime import datetime

        baseline = datetime.fromisoformat(man.get_meta("baseline_time"))
    specs = stage_specs()
    infos = pair_infos(store, inv)
    graph = TaskGraph(specs, inv, baseline=baseline, anchors=anchors, infos=infos)
    months = sorted({m for _, m in inv.rows})
    pair = sorted(inv.months_by_pair)[0]
    month = months[1] if len(months) > 1 else months[0]  # a month with context before it
    task = graph.add(stage, None if specs[stage].month_task else pair, month)
    spec = _spec(store, specs[stage], task, anchors, infos, baseline)
    scratch = Path(tempfile.mkdtemp(prefix="bqx-profile-"))
    try:  # write into a copy of the inputs it reads, so the benchmarked store stays as it is
        for sub in ["bars", *specs[stage].inputs]:
            for p, ms in spec.reads.items():
                for m in ms:
                    src = store / sub / f"pair={p}" / f"year_month={m}" / "data.parquet"
                    dst = scratch / src.relative_to(store)
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, dst)
        from dataclasses import replace

        spec = replace(spec, store=str(scratch))
        t = time.perf_counter()
        run_task(spec)  # cold: imports, numba compilation (as in a fresh worker process)
        cold = time.perf_counter() - t
        prof = cProfile.Profile()
        t = time.perf_counter()
        prof.enable()
        res = run_task(spec)
        prof.disable()
        print(f"\nprofile of {stage} {task.partition.pair or '(all pairs)'} {month}: {time.perf_counter() - t:.2f} s "
              f"warm, {cold:.2f} s cold (first call in this process), {res.rows:,d} rows, ok={res.ok}")
        pstats.Stats(prof).sort_stats("cumulative").print_stats(top)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--start", default=START)
    ap.add_argument("--pairs", default="all", help="'all' (28), a number (the first N), or a comma list")
    ap.add_argument("--store", default=None, help="store directory (default: a temp dir, removed at the end)")
    ap.add_argument("--executor", default="process", choices=("process", "serial", "dask"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler", default=None, help="Dask scheduler address (with --executor dask)")
    ap.add_argument("--stages", default=None, help="comma list (default: every stage)")
    ap.add_argument("--keep", action="store_true", help="keep the store (a given --store is always kept)")
    ap.add_argument("--skip-validate-export", action="store_true")
    ap.add_argument("--skip-export", action="store_true",
                    help="validate but do not export (the export writes ~60 %% of the store's bytes again)")
    ap.add_argument("--no-chain", action="store_true",
                    help="submit every stage of a (pair, month) alone (the engine before chains; same files)")
    ap.add_argument("--profile", default=None, help="after the run, cProfile one task of these stages (comma list)")
    ap.add_argument("--profile-only", action="store_true", help="only profile, on the existing --store")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--summary", default=None,
                    help="write the figures (run, steps, store objects/bytes, manifest size) to this JSON file")
    args = ap.parse_args()

    from bqx.universe import PAIR_NAMES

    if args.pairs == "all":
        pairs = list(PAIR_NAMES)
    elif args.pairs.isdigit():
        pairs = list(PAIR_NAMES)[: int(args.pairs)]
    else:
        pairs = [p.strip().upper() for p in args.pairs.split(",") if p.strip()]
    store = Path(args.store or tempfile.mkdtemp(prefix="bqx-bench-")).resolve()
    keep = args.keep or args.store is not None
    stages = args.stages.split(",") if args.stages else None
    print(f"store {store}; {len(pairs)} pairs x {args.months} months from {args.start}; executor {args.executor} "
          f"({args.workers} workers); {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")

    if args.profile_only:
        for stage in (args.profile or "").split(","):
            profile_stage(store, stage, args.top)
        return
    try:
        bars, t_bars, m_bars = child(BARS_CODE, {"store": str(store), "pairs": pairs, "start": args.start,
                                                 "months": args.months}, "writing the bars")
        bar_rows = sum(__import__("pyarrow.parquet", fromlist=["x"]).read_metadata(f).num_rows
                       for f in (store / "bars").rglob("data.parquet"))
        print(f"bars: {bar_rows:,d} rows written in {t_bars:.1f} s (sample generation, not part of the run)")

        run_args = {"store": str(store), "stages": stages, "executor": args.executor, "workers": args.workers,
                    "scheduler": args.scheduler, "chain": not args.no_chain}
        steps: list[dict] = []
        first, t_run, m_run = child(RUN_CODE, run_args, "the run")
        if not first["ok"]:
            print(f"run NOT ok: {first['failed']} (+{first['blocked']} blocked)")
        table = stage_table(store, last_run_id(store))
        written = sum(a["bytes"] for a in table)
        print(f"\nrun: {first['done']} of {first['total']} tasks in {first['seconds']:.1f} s "
              f"({t_run:.1f} s with interpreter start), {bar_rows / first['seconds']:,.0f} bar rows/s, "
              f"{mb(written)} written ({written / max(bar_rows, 1):.0f} bytes per bar row)")
        tree = f", process tree peak {mb(m_run.peak)} over {m_run.procs} processes" if m_run.available else ""
        cpu = first["cpu_driver"] + first["cpu_workers"]
        print(f"cpu: {cpu:.1f} s (driver {first['cpu_driver']:.1f} s, workers {first['cpu_workers']:.1f} s): on an idle "
              f"machine with {args.workers} workers the run would take at best {cpu / max(1, args.workers):.0f} s")
        print(f"peak memory: driver {mb(first['driver_rss'])}, largest worker {mb(first['worker_rss'])}{tree}")
        print_stages(table, bar_rows)
        steps.append({"step": "run", "wall": t_run, "cpu": first["cpu_tree"], "peak": m_run.peak if m_run.available else None,
                      "bytes": written})

        summary = store_summary(store)
        print(f"store: {summary['objects']:,d} objects, {mb(summary['bytes'])}; manifest.sqlite "
              f"{summary['manifest_bytes']:,d} bytes for {summary['task_rows']:,d} task rows "
              f"({summary['manifest_bytes'] / max(1, summary['task_rows']):,.0f} bytes per row)")
        for name, d in summary["by_dir"].items():
            print(f"  {name:18s} {d['objects']:7,d} objects {mb(d['bytes']):>10s}")

        again, t_again, _ = child(RUN_CODE, run_args, "the rerun")
        print(f"\nno-change rerun: {again['done']} tasks in {again['seconds']:.2f} s "
              f"({t_again:.1f} s with interpreter start) = {again['seconds'] / first['seconds']:.1%} of the run")

        if not args.skip_validate_export:
            export_dir = store.parent / (store.name + "-export")
            shutil.rmtree(export_dir, ignore_errors=True)
            for name, cmd in (("validate", ["validate", "--store", str(store), "--json"]),
                              ("export", ["export", "--store", str(store), "--to", str(export_dir),
                                          "--no-validate", "--json"]))[: 1 if args.skip_export else 2]:
                size0 = tree_bytes(store)
                res, t, mem = child("", {}, name, extra=cmd)
                if res["returncode"] not in (0, 1) or "No such command" in res["stderr"]:
                    last = (res["stderr"].strip().splitlines() or ["?"])[-1]
                    print(f"bqx {name}: not available ({last[:200]})")
                else:
                    peak = f", peak {mb(mem.peak)}" if mem.available else ""
                    print(f"bqx {name}: {t:.1f} s, {res['cpu_tree']:.1f} CPU-s (exit {res['returncode']}{peak})")
                    out_bytes = tree_bytes(export_dir) if name == "export" else max(0, tree_bytes(store) - size0)
                    steps.append({"step": name, "wall": t, "cpu": res["cpu_tree"], "peak": mem.peak if mem.available else None,
                                  "bytes": out_bytes})
        speed = fsync_write_speed(store.parent)
        print_steps(steps, speed, args.workers)
        for stage in (args.profile or "").split(",") if args.profile else ():
            profile_stage(store, stage, args.top)
        print(f"\nload average at end {os.getloadavg()[0]:.1f} (the machine may be shared: times are noisy)")
        if args.summary:
            Path(args.summary).write_text(json.dumps({
                "pairs": pairs, "months": args.months, "start": args.start, "workers": args.workers,
                "bar_rows": bar_rows, "run": {k: first[k] for k in ("seconds", "done", "total", "cpu_driver",
                                                                   "cpu_workers", "driver_rss", "worker_rss")},
                "rerun_seconds": again["seconds"], "steps": steps, "stages": table, "store": summary,
                "write_speed": speed, "load_end": os.getloadavg()}, indent=1, default=str))
    finally:
        if not keep:
            shutil.rmtree(store, ignore_errors=True)
            shutil.rmtree(store.parent / (store.name + "-export"), ignore_errors=True)


if __name__ == "__main__":
    main()
