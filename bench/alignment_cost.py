"""The cost of the FX-week alignment check at ingest (docs/INGEST.md, "The FX-week check").

    PYTHONPATH=. .venv/bin/python bench/alignment_cost.py [--pairs 28] [--start 2024-01] [--months 12] [--runs 3]

Builds the sample market (`pair`, `ts` only: what the check reads), then times `check_alignment` on it
with every pair read in UTC; prints bars, the median and every run's wall seconds, and the findings
(none on the sample market: a finding there is a bug).
"""

from __future__ import annotations

import argparse
import statistics
import time

from bqx.bars.alignment import check_alignment
from bqx.bars.sample import sample_market
from bqx.universe import PAIR_NAMES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=28)
    ap.add_argument("--start", default="2024-01")
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    bars = sample_market(list(PAIR_NAMES[: a.pairs]), a.start, a.months).select("pair", "ts")
    zones = {p: "UTC" for p in bars["pair"].unique()}
    times, res = [], None
    for _ in range(a.runs):
        t = time.perf_counter()
        res = check_alignment(bars, zones)
        times.append(time.perf_counter() - t)
    print(f"{a.pairs} pairs x {a.months} months: {bars.height:,} bars; check_alignment median {statistics.median(times):.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in times)}); findings: {len(res.findings)}")
    raise SystemExit(1 if res.findings else 0)


if __name__ == "__main__":
    main()
