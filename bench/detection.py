"""Measure how often `bqx validate` at its defaults catches a leak that affects a fraction p of the rows.

    .venv/bin/python bench/detection.py                      # p = 1 %, 0.1 %, 1/1440; 100 trials each
    .venv/bin/python bench/detection.py --trials 40 --context 240

One store: the sample market's EURUSD for one month (2024-07). Per trial a user family
leak_<p>_<i> reads the next bar's close (a 1-bar lookahead) on the rows whose hash with seed i
falls below p, and is its own close elsewhere; all trials of one p are computed in one run and
validated in one call (each family gets its own sampled timestamps, cuts and perturbations).
Prints per p the caught fraction with a 95 % Wilson interval, the mean cuts per family and the
formula 1 - (1 - p)^cuts (docs/VALIDATION.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import tempfile
import time
from pathlib import Path

import polars as pl

import bqx
from bqx.engine.run import run
from bqx.core.registry import REGISTRY
from bqx.validate import validate
from bqx.validate.sweep import detection_probability


def leak_family(name: str, p: float, seed: int, context: int) -> bqx.Family:
    threshold = int(p * 2**63)

    def fn(frame, ctx):
        hit = (pl.col("ts").dt.epoch("us").hash(seed) % (2**63)).cast(pl.Int64) < threshold
        c = pl.col("close")
        return frame.select(pl.when(hit).then(c.shift(-1)).otherwise(c).cast(pl.Float64).alias(f"{name}_x"))

    cols = lambda _p: [bqx.Column(f"{name}_x", "continuous", 0, "leak on a fraction of rows", nullable_when="test")]  # noqa: E731
    return bqx.family(name=name, stage=name, inputs=("bars",), columns=cols, context=context, register=False)(fn)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    phat = k / n
    den = 1 + z * z / n
    mid = (phat + z * z / (2 * n)) / den
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--context", type=int, default=30)
    ap.add_argument("--pair", default="EURUSD")
    ap.add_argument("--month", default="2024-07")
    ap.add_argument("--json", default=None, help="also write the table to this file")
    args = ap.parse_args()
    logging.getLogger("bqx").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        bars = bqx.sample_market(pairs=[args.pair], start=args.month, months=1)
        assert run(store, source=bars, stages=["rate_index"], executor="serial").ok
        rows = []
        for label, p in (("1 %", 0.01), ("0.1 %", 0.001), ("1/1440", 1 / 1440)):
            names = [f"leak_{str(p).replace('.', '_')}_{i}" for i in range(args.trials)]
            for i, name in enumerate(names):
                bqx.register(leak_family(name, p, i + 1, args.context))
            t0 = time.perf_counter()
            try:
                assert run(store, source=None, stages=names, executor="serial").ok
                report = validate(store, names, save=False, workers=1)
            finally:
                for name in names:
                    REGISTRY.remove(name)
            fams = [report.family(n) for n in names]
            caught = sum(f.verdict == "leak" for f in fams)
            by_sweep = sum(f.checks["sweep"].status == "fail" for f in fams)
            cuts = sum(f.checks["sweep"].samples for f in fams) / len(fams)
            lo, hi = wilson(caught, len(fams))
            row = {"p": label, "trials": len(fams), "caught": caught, "rate": caught / len(fams), "ci95": [lo, hi],
                   "by_sweep": by_sweep, "mean_cuts": cuts, "formula": detection_probability(p, int(round(cuts))),
                   "seconds_per_trial": (time.perf_counter() - t0) / len(fams)}
            rows.append(row)
            print(f"p = {label:>6}: caught {caught}/{len(fams)} = {caught / len(fams):.3f} "
                  f"(95 % CI {lo:.3f}-{hi:.3f}; sweep alone {by_sweep}), mean cuts {cuts:.0f}, "
                  f"formula 1-(1-p)^cuts = {row['formula']:.3f}, {row['seconds_per_trial']:.2f} s per trial", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":  # import this file as a module: the families' code needs a module with a source file
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from detection import main as _main

    _main()
