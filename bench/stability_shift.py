"""How far the stable comparisons (issue 12) moved the affected columns from a previous release.

    python bench/stability_shift.py [--old 461defa] [--months 12] [--pairs EURUSD,USDJPY,...]

Extracts the old package with `git archive`, then computes, in-process without the engine, the per-pair
families whose columns the rule touches (rate_index, statistics, bollinger_rate, technical, regimes,
spread, quick_win, and advanced's own-bar regime columns) on the sample market (seed 0, from 2024-01)
once with the old code and once with this worktree's, one pair at a time, each pair's whole series.
Prints, per column, the rows compared, the share that changed, max and median |change| over the
changed rows and over all rows, and how many NULLs appeared or vanished.
The cross-pair ranks (adv_mom_rank_60, adv_lead_lag_5, ccy_*_rank) and drv_volatility_regime are not
measured here (they need the 28-pair engine run or the regression family).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ["rate_index", "statistics", "bollinger_rate", "technical", "regimes", "spread", "quick_win"]
COLUMNS = [
    "ti_adx_14", "ti_plus_di_14", "ti_minus_di_14", "ti_adxr_14", "ti_mfi_14", "ti_sar_dist", "ti_aroonosc_14",
    "ti_trange", "ti_mom_10", "ti_tenkan_dist", "ti_kijun_dist", "ti_sma20_slope", "ti_sma50_slope", "ti_atr_14",
    "rg_trend", "rg_trend_age", "rg_vol", "rg_vol_pctile", "rg_change", "rg_age", "rg_transitions_1440", "rg_state",
    "rg_persistence",
    "adv_adx_regime", "adv_di_ratio", "adv_adx_slope_5", "adv_trend_bars", "adv_di_cross",
    "stat_mom_1", "stat_mom_5", "stat_entropy_60", "stat_q50_60", "stat_jump",
    "spr_pctile_60", "spr_toxicity", "qw_body_bps", "qw_gap_bps", "qw_range_bps", "qw_range_ratio_60",
]
PAIRS = ["EURUSD", "GBPUSD", "USDJPY", "USDCHF", "AUDUSD", "USDCAD", "NZDUSD", "EURGBP", "EURJPY", "EURCHF",
         "EURAUD", "EURCAD", "EURNZD", "GBPJPY", "GBPCHF", "GBPAUD", "GBPCAD", "GBPNZD", "AUDJPY", "AUDCHF",
         "AUDCAD", "AUDNZD", "CADJPY", "CADCHF", "CHFJPY", "NZDJPY", "NZDCHF", "NZDCAD"]


def compute(out: str, pairs: list[str], months: int) -> None:
    """Run in a subprocess whose sys.path starts with one version of bqx: write the columns to `out`."""
    import polars as pl

    from bqx.bars.sample import sample_market
    from bqx.families import advanced
    from bqx.core.runner import compute_frames, resolve, split_pairs

    fams = resolve(FAMILIES)
    parts = []
    for pair in pairs:
        t0 = time.perf_counter()
        bars = sample_market(pairs=[pair], start="2024-01", months=months)
        frame = compute_frames(split_pairs(bars), fams)[0][pair]
        own = advanced._own_bar_columns(frame, slice(None))
        frame = frame.with_columns([pl.Series(k, v, nan_to_null=True) for k, v in own.items()])
        parts.append(frame.select(pl.lit(pair).alias("pair"), "ts", *COLUMNS))
        print(f"  {pair}: {frame.height:,} bars in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    pl.concat(parts).write_parquet(out)


def extract(commit: str, into: Path) -> Path:
    """The `bqx` package of `commit`, unpacked under `into` (git archive: nothing is checked out)."""
    tar = into / "old.tar"
    with open(tar, "wb") as fh:
        subprocess.run(["git", "-C", str(ROOT), "archive", commit, "bqx"], stdout=fh, check=True)
    with tarfile.open(tar) as t:
        t.extractall(into / "old", filter="data")
    return into / "old"


def run(version_root: Path, out: Path, pairs: list[str], months: int) -> None:
    env = dict(os.environ, PYTHONPATH=str(version_root),
               NUMBA_CACHE_DIR=str(out.parent / ("numba-old" if version_root != ROOT else "numba-new")))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--compute", str(out), "--pairs", ",".join(pairs),
           "--months", str(months)]
    subprocess.run(cmd, env=env, check=True, cwd=str(out.parent))


def report(old_path: Path, new_path: Path) -> None:
    import numpy as np
    import polars as pl

    old, new = pl.read_parquet(old_path), pl.read_parquet(new_path)
    assert old.select("pair", "ts").equals(new.select("pair", "ts"))
    print(f"{'column':22} {'rows':>10} {'changed':>8} {'max |Δ|':>11} {'median |Δ| changed':>19} "
          f"{'median |Δ| all':>15} {'NULL +/-':>10}")
    for c in COLUMNS:
        a, b = old[c].to_numpy().astype(float), new[c].to_numpy().astype(float)
        both = ~np.isnan(a) & ~np.isnan(b)
        d = np.abs(a - b)[both]
        changed = d[d > 0]
        appeared = int((np.isnan(b) & ~np.isnan(a)).sum())
        vanished = int((np.isnan(a) & ~np.isnan(b)).sum())
        print(f"{c:22} {both.sum():>10,} {changed.size / max(both.sum(), 1):>8.2%} {d.max(initial=0):>11.4g} "
              f"{(np.median(changed) if changed.size else 0):>19.4g} {(np.median(d) if d.size else 0):>15.4g} "
              f"{appeared:>4}/{vanished:<4}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old", default="461defa", help="the previous release's commit")
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--pairs", default=",".join(PAIRS))
    ap.add_argument("--workdir", help="keep the extracted package, numba caches and results here (reruns reuse them)")
    ap.add_argument("--compute", help=argparse.SUPPRESS)
    args = ap.parse_args()
    pairs = args.pairs.split(",")
    if args.compute:
        compute(args.compute, pairs, args.months)
        return
    with tempfile.TemporaryDirectory(prefix="bqx-shift-") as tmp:
        tmp_path = Path(args.workdir or tmp)
        tmp_path.mkdir(parents=True, exist_ok=True)
        old_root = tmp_path / "old" if (tmp_path / "old" / "bqx").exists() else extract(args.old, tmp_path)
        t0 = time.perf_counter()
        tag = f"{len(pairs)}x{args.months}"
        for name, root in (("old", old_root), ("new", ROOT)):
            print(f"{name} ({args.old if name == 'old' else 'this worktree'}):", file=sys.stderr)
            run(root, tmp_path / f"{name}-{tag}.parquet", pairs, args.months)
        print(f"{len(pairs)} pairs x {args.months} months, sample market seed 0 from 2024-01, "
              f"old = {args.old}, new = this worktree ({time.perf_counter() - t0:.0f} s)")
        report(tmp_path / f"old-{tag}.parquet", tmp_path / f"new-{tag}.parquet")


if __name__ == "__main__":
    main()
