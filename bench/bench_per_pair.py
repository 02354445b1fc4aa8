"""Benchmark the per-pair feature families on the sample market (compute only, warm).

    .venv/bin/python bench/bench_per_pair.py                       # 28 pairs x 3 months
    .venv/bin/python bench/bench_per_pair.py --pairs 4 --months 1  # quicker
    .venv/bin/python bench/bench_per_pair.py --families regression derived

Each family in FAMILIES is timed by `time_family`: its inputs are computed first (not timed), one
warm-up call on the first pair compiles the numba kernels, then the family runs on every pair and
its rows/s are printed, with an extrapolation to 28 pairs x 12 months. `bench_regression_vs_lstsq`
times, on one pair-month, a loop fitting each window with numpy lstsq (15 metrics per window,
sampled and extrapolated) against the regression family.

To add a family, append its registered name to FAMILIES (one list, shared by the helpers who own
families of stage 2: keep it sorted by stage).
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import datetime, timezone

import numpy as np
import polars as pl

from bqx.bars.sample import sample_market
from bqx.core.declaration import Ctx
from bqx.core.registry import REGISTRY
from bqx.core.runner import compute_frames, pair_info, params_for, resolve, run_pair_family, split_pairs
from bqx.universe import PAIR_NAMES

#: Families timed by default, by stage. The extraction families go between regression and derived.
FAMILIES: list[str] = [
    "bollinger_bqx",
    "regression",
    "derived",
    "fit_quality",
]
FULL_PAIRS, FULL_MONTHS = 28, 12


def time_family(name: str, frames: dict[str, pl.DataFrame], baseline: datetime) -> tuple[float, float, int]:
    """Wall and CPU seconds to compute family `name` on every pair's frame (inputs already present), and rows."""
    fam = REGISTRY.get(name)
    params = params_for(fam, None)
    ctxs = {p: Ctx(params=params, baseline_time=baseline, pair=pair_info(p, f)) for p, f in frames.items()}
    first = next(iter(frames))
    run_pair_family(fam, frames[first].head(5_000), ctxs[first])  # warm-up: compile / load kernels
    start, cpu = time.perf_counter(), time.process_time()
    for pair, frame in frames.items():
        run_pair_family(fam, frame, ctxs[pair])
    return time.perf_counter() - start, time.process_time() - cpu, sum(f.height for f in frames.values())


def lstsq_metrics(y: np.ndarray, w: int, t: int) -> list[float]:
    """The 15 regression metrics of the window ending at t, fitted with numpy lstsq (a per-row loop)."""
    win = y[t - w + 1: t + 1]
    u = (np.arange(w) - (w - 1)) / (w - 1)
    ybar = win.mean()
    yc = win - ybar
    quad = np.column_stack([u * u, u, np.ones(w)])
    (a2, a1, c0), *_ = np.linalg.lstsq(quad, yc, rcond=None)
    lin = np.column_stack([u, np.ones(w)])
    (b1, d0), *_ = np.linalg.lstsq(lin, yc, rcond=None)
    ss_q = float(((yc - quad @ [a2, a1, c0]) ** 2).sum())
    ss_l = float(((yc - lin @ [b1, d0]) ** 2).sum())
    ss_t = float((yc ** 2).sum())
    rmse = np.sqrt(ss_q / w)
    resid = yc[-1] - c0
    delta = 1 / (w - 1)
    r2, lr2 = 1 - ss_q / ss_t, 1 - ss_l / ss_t
    se = np.sqrt(ss_l / (w - 2) / ((u - u.mean()) ** 2).sum())
    lo, hi = win.min(), win.max()
    return [a2, a1, ybar + c0, r2, rmse, resid, resid / rmse, b1, lr2, r2 - lr2, a2 * delta ** 2 + a1 * delta + ybar + c0,
            -a1 / (2 * a2), b1 / se, (win[-1] - lo) / (hi - lo), a1 / rmse]


def bench_regression_vs_lstsq(frame: pl.DataFrame, baseline: datetime, sample_rows: int) -> None:
    """Regression family vs a per-window numpy lstsq loop on one pair-month (loop sampled, extrapolated)."""
    fam = REGISTRY.get("regression")
    params = params_for(fam, None)
    ctx = Ctx(params=params, baseline_time=baseline, pair=pair_info("bench", frame))
    run_pair_family(fam, frame, ctx)  # warm
    start = time.process_time()
    run_pair_family(fam, frame, ctx)
    fam_s = time.process_time() - start
    rng = np.random.default_rng(0)
    loop_s = 0.0
    fits = 0
    for src in ("rate_index", "bqx_w15_return"):
        y = frame[src].fill_null(np.nan).to_numpy()
        for w in params["windows"]:
            rows = rng.integers(max(w + 15, 100), frame.height, sample_rows)
            t0 = time.process_time()
            with np.errstate(all="ignore"):
                for t in rows:
                    lstsq_metrics(y, w, int(t))
            loop_s += (time.process_time() - t0) / sample_rows * frame.height
            fits += frame.height
    print(f"\nregression vs per-window lstsq loop, one pair-month ({frame.height:,} rows, {fits:,} window fits):")
    print(f"  lstsq loop (extrapolated from {sample_rows} sampled rows per window and domain): {loop_s:8.1f} s CPU")
    print(f"  regression family (warm, compute only):                                {fam_s:8.3f} s CPU")
    print(f"  speed-up: {loop_s / fam_s:,.0f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=28)
    ap.add_argument("--months", type=int, default=3)
    ap.add_argument("--start", default="2024-07")
    ap.add_argument("--families", nargs="*", default=FAMILIES)
    ap.add_argument("--lstsq-rows", type=int, default=300, help="rows sampled per window for the lstsq loop")
    ap.add_argument("--no-lstsq", action="store_true")
    args = ap.parse_args()

    pairs = list(PAIR_NAMES[: args.pairs])
    t0 = time.perf_counter()
    bars = split_pairs(sample_market(pairs=pairs, start=args.start, months=args.months))
    baseline = datetime.fromisoformat(f"{args.start}-01T00:00:00").replace(tzinfo=timezone.utc)
    frames, _ = compute_frames(bars, resolve(args.families), baseline=baseline)  # inputs (and the families) once
    rows = sum(f.height for f in frames.values())
    print(f"{len(pairs)} pairs x {args.months} months from {args.start}: {rows:,} rows "
          f"(inputs ready in {time.perf_counter() - t0:.1f} s); cores: {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    full_rows = rows / (len(pairs) * args.months) * FULL_PAIRS * FULL_MONTHS
    total = 0.0
    print("\nCPU seconds are the figures to trust on a shared machine; estimates use them (one process).")
    print(f"\n{'family':<16}{'wall s':>9}{'CPU s':>9}{'rows/s (CPU)':>15}{f'{FULL_PAIRS}x{FULL_MONTHS} est. s':>18}")
    for name in args.families:
        wall, cpu, n = time_family(name, frames, baseline)
        est = full_rows / (n / cpu)
        total += est
        print(f"{name:<16}{wall:>9.2f}{cpu:>9.2f}{n / cpu:>15,.0f}{est:>18.1f}")
    print(f"{'total':<16}{'':>9}{'':>9}{'':>15}{total:>18.1f}   ({full_rows:,.0f} rows)")

    if not args.no_lstsq and "regression" in args.families:
        frame = frames[next(iter(frames))]
        first = frame["ts"][0]
        month = frame.filter((pl.col("ts").dt.year() == first.year) & (pl.col("ts").dt.month() == first.month))
        bench_regression_vs_lstsq(month, baseline, args.lstsq_rows)


if __name__ == "__main__":
    main()
