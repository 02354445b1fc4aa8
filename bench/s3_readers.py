"""The readers side by side on one store in a local directory and at an s3:// URL (moto's server on loopback).

    PYTHONPATH=. python bench/s3_readers.py [--pairs EURUSD,USDJPY] [--days 15]

Builds the same store (bqx.run, stages to targets, serial) in a directory and at an s3:// URL, then times
validate, export, report and signal on each and counts the S3 requests each made (every request the server
answered, by method). The server keeps objects in memory: this measures bqx's own overhead, not a cloud's latency.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from s3_loopback import start_loopback_s3  # noqa: E402


class Requests(logging.Handler):
    """Counts the requests the moto server logs (werkzeug), by method."""

    def __init__(self) -> None:
        super().__init__()
        self.count: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        for method in ("GET", "PUT", "HEAD", "DELETE", "POST"):
            if f'"{method} ' in msg or f"m{method} " in msg:
                self.count[method] += 1
                return


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", default="EURUSD,USDJPY")
    ap.add_argument("--days", type=int, default=15)
    args = ap.parse_args()
    server, env = start_loopback_s3()
    os.environ.update(env)
    counter = Requests()
    log = logging.getLogger("werkzeug")
    log.handlers[:] = [counter]
    log.propagate = False
    log.setLevel(logging.INFO)
    logging.getLogger("bqx").setLevel(logging.ERROR)

    import polars as pl

    import bqx
    from bqx.engine.run import run
    from bqx.export import export
    from bqx.report import build_report
    from bqx.signal.run import compute_signal
    from bqx.bars.sample import sample_market

    pairs = tuple(args.pairs.split(","))
    work = Path(tempfile.mkdtemp(prefix="bqx-s3-readers-"))
    bars = sample_market(pairs=list(pairs), start="2024-07", months=1).filter(
        pl.col("ts") < datetime(2024, 7, 1, tzinfo=timezone.utc) + timedelta(days=args.days))
    local = work / "store"
    url = f"s3://bqx/bench-{uuid.uuid4().hex[:6]}/store"
    for root in (local, url):  # the same run into a directory and into the URL
        assert run(root, source=bars, stages=["targets"], executor="serial").ok
    steps = {
        "validate": lambda root, tag: bqx.validate(root, workers=1),
        "export": lambda root, tag: export(root, str(work / f"export-{tag}"), families=["rate_index", "bqx"]),
        "report": lambda root, tag: build_report(root, work / f"report-{tag}.html"),
        "signal": lambda root, tag: compute_signal(root, workers=1),
    }
    print(f"{len(pairs)} pairs x {args.days} days, stages to targets; S3 = moto on loopback")
    print(f"{'step':<9} {'local s':>8} {'s3 s':>8} {'ratio':>6} {'local cpu':>9} {'s3 cpu':>8}  requests on S3")
    for name, step in steps.items():
        out = []
        for root, tag in ((local, "local"), (url, "s3")):
            counter.count.clear()
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            step(root, tag)
            wall = time.perf_counter() - t0
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            out.append((wall, cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, dict(counter.count)))
        (lw, lc, _), (sw, sc, req) = out
        print(f"{name:<9} {lw:8.2f} {sw:8.2f} {sw / lw:6.2f} {lc:9.2f} {sc:8.2f}  {req}")
    server.stop()


if __name__ == "__main__":
    main()
