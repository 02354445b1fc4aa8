"""Triangles: residual distribution per triangle (bps), the worst ones over time, executable opportunities per month."""

from __future__ import annotations

import polars as pl

from bqx.report import downsample, figures
from bqx.report.context import Context
from bqx.report.page import Chart, Section
from bqx.universe import TRIANGLES

TABLE = "triangles"
WORST = 5


def section(ctx: Context) -> Section:
    sec = Section("triangles", "Triangles")
    files = ctx.table_files(TABLE)
    if not files:
        sec.note("No triangle table in the store: the arbitrage stage has not run.")
        return sec
    lf = pl.concat([ctx.scan(f) for f in files.values()], how="diagonal_relaxed").sort("ts")
    cols = [f"tri_{t.name}" for t in TRIANGLES if f"tri_{t.name}" in lf.collect_schema().names()]
    stats = lf.select(
        *[pl.col(c).quantile(q).alias(f"{c}|{k}") for c in cols
          for k, q in (("lowerfence", 0.005), ("q1", 0.25), ("median", 0.5), ("q3", 0.75), ("upperfence", 0.995))],
        *[pl.col(c).abs().max().alias(f"{c}|max") for c in cols],
        *[pl.col(c).count().alias(f"{c}|n") for c in cols],
    ).collect().row(0, named=True)
    live = [c for c in cols if stats[f"{c}|n"]]
    dead = [c[4:] for c in cols if not stats[f"{c}|n"]]
    if dead:
        sec.note(f"{len(dead)} of 56 triangles are never evaluated (a pair is missing): {', '.join(dead[:12])}"
                 + (" …" if len(dead) > 12 else "") + ".")
    if not live:
        sec.note("No triangle is evaluated anywhere in the store.")
        return sec
    q = {k: [stats[f"{c}|{k}"] for c in live] for k in ("lowerfence", "q1", "median", "q3", "upperfence")}
    sec.add(Chart(figures.boxes([c[4:] for c in live], q, "Residual ε_T per triangle (bps): box q25–q75, whiskers "
                                "q0.5–q99.5", ytitle="bps", height=460)))
    worst = sorted(live, key=lambda c: -(stats[f"{c}|max"] or 0.0))[:WORST]
    small = downsample.extreme(lf.select("ts", *[pl.col(c).abs() for c in worst]), worst)
    x = downsample.iso(small["ts"])
    sec.add(Chart(figures.lines({c[4:]: (x, small[c].round(4).to_list()) for c in worst},
                                f"The {len(worst)} triangles with the largest |ε_T|: largest |ε_T| per bucket of "
                                f"{downsample.every(lf)}", ytitle="|ε_T| bps")))
    opp = ctx.stage_files("arbitrage")
    if not opp:
        sec.note("No per-pair arbitrage columns stored: executable opportunities are unknown.")
        return sec
    per = pl.concat([ctx.scan(f).select(
        pl.lit(p).alias("pair"), pl.lit(m).alias("month"),
        pl.col("arb_opportunity").sum().alias("n"), pl.col("arb_exec_bps").max().alias("best"),
        pl.col("arb_exec_bps").count().alias("quoted")) for (p, m), f in opp.items()]).collect()
    months = sorted(per["month"].unique().to_list())
    pairs = sorted(per["pair"].unique().to_list())
    look = {(p, m): (n, b) for p, m, n, b, _ in per.iter_rows()}
    total = int(per["n"].sum() or 0)
    best = per.group_by("month").agg(pl.col("best").max()).sort("month")
    if total:
        fig = figures.bars(months, {p: [look.get((p, m), (0, None))[0] or 0 for m in months] for p in pairs},
                           f"Bars with an executable round trip (bid/ask, arb_exec_bps > threshold) per month and pair: "
                           f"{total:,} in all", stacked=True, ytitle="bars")
        fig["layout"]["showlegend"] = len(pairs) <= 12
    else:
        fig = figures.bars(months, {"best round trip": best["best"].round(4).to_list()},
                           "No executable round trip in any month: the best round trip per month (arb_exec_bps, "
                           "negative = a loss after the spread)", ytitle="bps")
    fig["layout"]["xaxis"] = {"type": "category", "title": {"text": "month"}}
    sec.add(Chart(fig))
    if int(per["quoted"].sum() or 0) == 0:
        sec.note("No pair has bid/ask quotes: executable round trips cannot be evaluated.")
    elif total == 0:
        sec.note("No executable round trip in any month: the best one still loses money after the spread "
                 f"(max arb_exec_bps {per['best'].max():.3f} bps).")
    return sec
