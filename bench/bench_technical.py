"""Benchmark technical, quick_win and regimes on the sample market, beside the bare TA-Lib calls.

    .venv/bin/python bench/bench_technical.py --pairs 28 --months 12
    .venv/bin/python bench/bench_technical.py --pairs 4 --months 2      # quicker

Inputs (rate_index, statistics, bollinger_rate) are computed first and not timed. Each stage is
timed over all pairs (one warm-up run on the first pair compiles the numba kernels first). The
"bare TA-Lib" figure calls, on the same arrays, the TA-Lib function closest to each of the 45
technical columns (own definitions mapped to the TA-Lib building blocks they use: EMA, ATR, MAX,
MIN, SUM, SMA, MOM), with no NULL rules and no frame building. Its results are kept until the loop
ends, as the family's columns are (fresh memory costs page faults); the figure with the results
discarded at once (memory reused) is printed too.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

import numpy as np
import talib

from bqx.bars.sample import sample_market
from bqx.core.declaration import Ctx
from bqx.core.registry import REGISTRY
from bqx.core.runner import pair_info, params_for, resolve, run_pair_family, split_pairs
from bqx.universe import PAIR_NAMES


def bare_talib(x, xo, xh, xl, v) -> list:
    """The TA-Lib calls a plain script would make for the 45 technical columns; returns their results,
    which the caller keeps (as a script keeps its columns, and as the family's columns are kept)."""
    t = talib
    hl2 = np.log(xh / xl) ** 2
    e = t.EMA(xh - xl, 10)  # Chaikin volatility
    m = t.MAX(x, 14)  # ulcer
    e9 = t.EMA(xh - xl, 9)  # mass index
    return [
        t.RSI(x, 14), t.RSI(x, 21), *t.STOCH(xh, xl, x, 14, 3, 0, 3, 0), t.STOCHRSI(x, 14, 5, 3, 0)[0],
        t.WILLR(xh, xl, x, 14), t.CCI(xh, xl, x, 20), t.ROC(x, 12), t.MOM(x, 10),
        t.MOM(x, 14) / t.SUM(np.abs(np.diff(x, prepend=np.nan)), 14),  # Chande's CMO from its building blocks
        t.MFI(xh, xl, x, v, 14), t.ULTOSC(xh, xl, x, 7, 14, 28), t.TRIX(x, 15), t.PPO(x, 12, 26, 0),
        t.AROONOSC(xh, xl, 14), *t.MACD(x, 12, 26, 9), t.ADX(xh, xl, x, 14), t.PLUS_DI(xh, xl, x, 14),
        t.MINUS_DI(xh, xl, x, 14), t.ADXR(xh, xl, x, 14), t.SAR(xh, xl, 0.02, 0.2), t.EMA(x, 20),  # EMA20: Keltner too
        t.EMA(x, 50), t.SMA(x, 20), t.SMA(x, 50), t.MIDPRICE(xh, xl, 9), t.MIDPRICE(xh, xl, 26),
        t.LINEARREG_SLOPE(x, 14), t.ATR(xh, xl, x, 14), t.NATR(xh, xl, x, 14), t.TRANGE(xh, xl, x),
        t.ATR(xh, xl, x, 100),
        t.SMA(hl2, 20), t.SMA(0.5 * hl2 - 0.386 * np.log(x / xo) ** 2, 20),  # Parkinson, Garman-Klass
        t.ATR(xh, xl, x, 10),  # Keltner
        t.MAX(xh, 20), t.MIN(xl, 20),  # Donchian
        t.ROC(e, 10),  # Chaikin volatility
        t.SMA((100 * (x - m) / m) ** 2, 14),  # ulcer
        t.SUM(e9 / t.EMA(e9, 9), 25),  # mass index
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=28)
    ap.add_argument("--months", type=int, default=12)
    ap.add_argument("--start", default="2024-01")
    args = ap.parse_args()
    pairs = list(PAIR_NAMES[: args.pairs])

    t0 = time.perf_counter()
    frames = split_pairs(sample_market(pairs=pairs, start=args.start, months=args.months))
    rows = sum(f.height for f in frames.values())
    print(f"sample market: {len(pairs)} pairs x {args.months} months, {rows:,} bars ({time.perf_counter() - t0:.1f} s)")
    baseline = datetime(int(args.start[:4]), int(args.start[5:7]), 1, tzinfo=timezone.utc)
    infos = {p: pair_info(p, f) for p, f in frames.items()}
    anchors: dict[str, dict] = {}

    def run(name: str, timed: bool) -> tuple[float, float]:
        fam = REGISTRY.get(name)
        p = params_for(fam, None)
        first = next(iter(frames))
        if timed:  # warm-up: numba compilation and imports, on a small slice
            ctx = Ctx(params=p, baseline_time=baseline, pair=infos[first], pairs=infos, anchor=anchors.get(name, {}).get(first))
            run_pair_family(fam, frames[first].head(20000), ctx)
        start, cpu = time.perf_counter(), time.process_time()
        for pair, frame in frames.items():
            anchor = None
            if fam.anchor is not None:
                ctx0 = Ctx(params=p, baseline_time=baseline, pair=infos[pair], pairs=infos)
                anchor = anchors.setdefault(name, {}).setdefault(pair, dict(fam.anchor(frame, ctx0)))
            ctx = Ctx(params=p, baseline_time=baseline, pair=infos[pair], pairs=infos, anchor=anchor)
            frames[pair] = frame.hstack(run_pair_family(fam, frame, ctx))
        return time.perf_counter() - start, time.process_time() - cpu

    setup = [f.name for f in resolve(["regimes"]) if f.name not in ("technical", "regimes")]
    t0 = time.perf_counter()
    for name in setup:
        run(name, timed=False)
    print(f"inputs ({', '.join(setup)}): {time.perf_counter() - t0:.1f} s (not part of the target)")

    times = {name: run(name, timed=True) for name in ("quick_win", "technical", "regimes")}

    def bare_run(keep: bool) -> tuple[float, float]:
        kept = []  # kept: like the family's columns above, the results occupy fresh memory
        start, cpu = time.perf_counter(), time.process_time()
        for frame in frames.values():
            arrays = [np.ascontiguousarray(frame[c].to_numpy(), dtype=np.float64)
                      for c in ("rate_index", "rate_index_open", "rate_index_high", "rate_index_low", "volume")]
            result = bare_talib(*arrays)
            if keep:
                kept.append(result)
        return time.perf_counter() - start, time.process_time() - cpu

    bare = bare_run(keep=True)
    dropped = bare_run(keep=False)

    scale = 12 / args.months * 28 / len(pairs)
    print(f"{'':12s} {'wall s':>8s} {'cpu s':>8s}   (cpu: this process only; the machine may be shared)")
    for name, (wall, cpu) in times.items():
        print(f"{name:12s} {wall:8.2f} {cpu:8.2f}")
    print(f"{'bare TA-Lib':12s} {bare[0]:8.2f} {bare[1]:8.2f}   (results kept, as the family's are)")
    print(f"{'bare dropped':12s} {dropped[0]:8.2f} {dropped[1]:8.2f}   (results discarded at once: memory reused)")
    print(f"technical / bare TA-Lib: {times['technical'][0] / bare[0]:.2f}x wall, "
          f"{times['technical'][1] / bare[1]:.2f}x cpu (target <= 1.5x); "
          f"vs bare dropped: {times['technical'][0] / dropped[0]:.2f}x wall")
    for i, what in enumerate(("wall", "cpu")):
        total = sum(t[i] for t in times.values())
        print(f"three stages, {what}: {total:.2f} s; extrapolated to 28 pairs x 12 months: {total * scale:.1f} s "
              "(target < 90 s)")


if __name__ == "__main__":
    main()
