"""Soak: a run on a 3-worker Dask cluster while a random worker is SIGKILLed every few seconds.

    PYTHONPATH=. .venv/bin/python bench/soak.py [--pairs 28] [--month 2024-07] [--every 3] [--kills 10]
        [--store s3|local] [--nanny] [--busy] [--stages targets arbitrage] [--retries 5]

The cluster is `dask scheduler` + 3 `dask worker --nthreads 1` processes on loopback, each in its
own scratch directory (tests/cluster/dask_cluster.py); without `--nanny` the killer starts a
replacement worker after each kill, with it the nanny restarts the worker. With `--busy` each kill
picks among the workers holding a task at that moment (by the scheduler's account), so none is wasted
on an idle worker. The store is an
`s3://` prefix on a moto server in this process (default; the workers get only its URL and
credentials) or a local directory. The output is compared, every column of every partition, with
a process-pool run of the same bars on a local store. Prints the kills, the tasks run again, the
wall times and whether the output is identical; exits 1 when the run failed or differs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "cluster"))

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from dask_cluster import Killer, ProcessCluster, differences, partitions  # noqa: E402
from s3_loopback import start_loopback_s3  # noqa: E402

from bqx.bars.sample import sample_market  # noqa: E402
from bqx.engine import run  # noqa: E402
from bqx.engine.dask_executor import DaskExecutor  # noqa: E402
from bqx.universe import PAIR_NAMES  # noqa: E402


def s3_server() -> tuple[object, dict[str, str]]:
    """The loopback S3 server (tests/s3_loopback.py), its environment set in this process (the driver's) too."""
    import logging
    import os

    server, env = start_loopback_s3()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    os.environ.update(env)
    return server, env


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=28)
    ap.add_argument("--month", default="2024-07")
    ap.add_argument("--stages", nargs="+", default=["targets", "arbitrage"])
    ap.add_argument("--every", type=float, default=3.0, help="seconds between kills")
    ap.add_argument("--kills", type=int, default=10, help="kills at most (then the run goes on undisturbed)")
    ap.add_argument("--retries", type=int, default=5, help="the run's task_retries")
    ap.add_argument("--store", choices=("s3", "local"), default="s3")
    ap.add_argument("--nanny", action="store_true")
    ap.add_argument("--seed", type=int, default=25)
    ap.add_argument("--busy", action="store_true", help="kill only workers that hold a task at that moment")
    a = ap.parse_args()

    pairs = list(PAIR_NAMES[: a.pairs])
    bars = sample_market(pairs=pairs, start=a.month, months=1)
    tmp = Path(tempfile.mkdtemp(prefix="bqx-soak-"))
    server, env = s3_server() if a.store == "s3" else (None, {})
    print(f"{len(pairs)} pairs x 1 month ({a.month}), {bars.height} bars, stages {' '.join(a.stages)}; "
          f"store {a.store}; scratch {tmp}", flush=True)

    t0 = time.perf_counter()
    ref = run(tmp / "reference", source=bars, stages=a.stages, executor="process", workers=2)
    t_ref = time.perf_counter() - t0
    print(f"process pool (2 workers, local store): ok={ref.ok} tasks={len(ref.done)} wall={t_ref:.1f}s", flush=True)

    root = "s3://bqx/soak" if a.store == "s3" else str(tmp / "dask-store")
    retried: list[tuple[str, str | None, str]] = []

    with ProcessCluster(tmp / "cluster", workers=3, env=env, nanny=a.nanny) as cluster:
        killer = Killer(cluster, every=a.every, kills=a.kills, seed=a.seed, busy=a.busy)

        def on_event(ev) -> None:
            killer.on_event(ev)  # the killing begins with the first task
            if ev.kind == "task_retried":
                retried.append((ev.stage, ev.pair, ev.month))

        ex = DaskExecutor(None, scheduler=cluster.address, retries=a.retries)
        t0 = time.perf_counter()
        killer.start()
        try:
            res = run(root, source=bars, stages=a.stages, executor=ex, on_event=on_event)
        finally:
            killer.stop()
            ex.close()
        t_dask = time.perf_counter() - t0
        workers_started = len(cluster.started)
        scratch = sorted({p.name for w in cluster.started for p in w.cwd.iterdir()})
    diff = differences(partitions(root), partitions(tmp / "reference")) if res.ok else ["the run failed"]
    if server is not None:
        server.stop()

    print(f"dask (3 workers{', nanny' if a.nanny else ''}, {a.store} store): ok={res.ok} tasks={len(res.done)} "
          f"failed={len(res.failed)} blocked={len(res.blocked)} wall={t_dask:.1f}s")
    units = Counter(label for label, _ in ex.resubmitted)
    print(f"kills: {len(killer.killed)} (every {a.every}s, at most {a.kills}); worker processes started: "
          f"{workers_started}; tasks whose worker died (KilledWorker): {ex.lost}; resubmitted: {len(ex.resubmitted)} "
          f"times, {len(units)} distinct tasks or chains (most for one: {max(units.values(), default=0)}), "
          f"{len(retried)} task_retried events; workers' scratch dirs hold: {scratch}")
    print(f"identical to the process pool (every column of every partition): {'yes' if not diff else 'NO'}")
    for line in diff[:10]:
        print("  ", line)
    for f in res.failed[:5]:
        print("   failed:", f)
    return 0 if res.ok and not diff else 1


if __name__ == "__main__":
    sys.exit(main())
