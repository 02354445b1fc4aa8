"""Signal (`bqx signal`'s files): IC heat map by family and target, top features with their IC per month, IC decay by horizon."""

from __future__ import annotations

import polars as pl

from bqx.report import figures
from bqx.report.context import Context
from bqx.report.page import Chart, Section, table

TOP = 10  # (feature, target) rows in the table and the per-month chart
DECAY = 8  # features in the decay chart


def section(ctx: Context) -> Section:
    from bqx.signal.run import FAMILY_FILE, FEATURE_FILE, IC_FILE, IMPORTANCE_FILE, SIGNAL_DIR

    sec = Section("signal", "Signal")
    where = ctx.name(SIGNAL_DIR)
    if not all(ctx.exists(f"{SIGNAL_DIR}/{f}") for f in (IC_FILE, FEATURE_FILE, FAMILY_FILE)):
        sec.note("No signal table in the store: run `bqx signal` (the IC of every feature against every target).")
        return sec
    fam = ctx.read(f"{SIGNAL_DIR}/{FAMILY_FILE}")
    feats = ctx.read(f"{SIGNAL_DIR}/{FEATURE_FILE}")
    if feats.filter(pl.col("mean_ic").is_not_null()).height == 0:
        sec.note("The signal table has no defined IC (too few training rows per pair and month).")
        return sec
    targets = feats.select("target").unique(maintain_order=True)["target"].to_list()
    families = fam.select("family").unique(maintain_order=True)["family"].to_list()
    z = {(r["family"], r["target"]): r["mean_abs_ic"] for r in fam.iter_rows(named=True)}
    grid = [[z.get((f, t)) for t in targets] for f in families]
    text = [["" if v is None else f"{v:.3f}" for v in row] for row in grid]
    sec.add(f"<p>Spearman IC of each feature against each target per (pair, month) on training rows. "
            f"{feats['feature'].n_unique()} features, {len(targets)} targets; files in {where}.</p>")
    sec.add(Chart(figures.heatmap(grid, targets, families, "Mean |IC| of the family's features (mean IC over cells, "
                                  "then |.|, averaged over the family)", colorscale="Viridis", zmin=0, text=text,
                                  colorbar="|IC|")))
    top = (feats.filter(pl.col("mean_ic").is_not_null())
           .sort([pl.col("mean_ic").abs(), pl.col("feature")], descending=[True, False]).head(TOP))
    sec.add(table(["feature", "family", "target", "mean IC", "std", "IR", "sign share", "t (months)", "cells"],
                  [[r["feature"], r["family"], r["target"], r["mean_ic"], r["std_ic"], r["ir"], r["sign_share"],
                    r["t_stat"], r["cells"]] for r in top.iter_rows(named=True)],
                  caption=f"The {TOP} strongest (feature, target) rows by |mean IC|"))
    cells = (ctx.scan(f"{SIGNAL_DIR}/{IC_FILE}")
             .join(top.lazy().select("feature", "target"), on=["feature", "target"], how="semi")
             .group_by("feature", "target", "month").agg(pl.col("ic").mean()).sort("month").collect())
    series = {}
    for r in top.iter_rows(named=True):
        one = cells.filter((pl.col("feature") == r["feature"]) & (pl.col("target") == r["target"]))
        series[f"{r['feature']} ~ {r['target']}"] = (one["month"].to_list(), one["ic"].round(5).to_list())
    monthly = figures.lines(series, "IC per month of the strongest rows (mean over pairs)", ytitle="IC")
    monthly["layout"]["xaxis"] = {"type": "category", "title": {"text": "month"}}
    for trace in monthly["data"]:
        trace["mode"] = "lines+markers"
    sec.add(Chart(monthly))
    decay = _decay(feats)
    if decay:
        fig = figures.lines(decay, "IC decay by horizon: mean IC against each target series' horizons "
                            "(the strongest features)", ytitle="mean IC")
        fig["layout"]["xaxis"] = {"title": {"text": "horizon (bars)"}}
        sec.add(Chart(fig))
    if ctx.exists(f"{SIGNAL_DIR}/{IMPORTANCE_FILE}"):
        imp = ctx.read(f"{SIGNAL_DIR}/{IMPORTANCE_FILE}").head(TOP)
        sec.add(table(["cluster", "features", "importance", "std"],
                      [[r["cluster"], ", ".join(r["features"]), r["importance"], r["std"]] for r in imp.iter_rows(named=True)],
                      caption="Permutation importance of correlated-feature clusters (bqx signal --importance)"))
    return sec


def _decay(feats: pl.DataFrame) -> dict[str, tuple[list[int], list[float]]]:
    """(horizons, mean IC) of the strongest features per target series (a target name with its horizon as h*,
    e.g. target_bqx_h* or lbl_tb_h*_ret) that has several horizons."""
    ok = (feats.filter(pl.col("mean_ic").is_not_null())
          .with_columns(pl.col("target").str.replace(r"_h\d+", "_h*").alias("series")))
    several = (ok.group_by("series").agg(pl.col("horizon").n_unique().alias("k")).filter(pl.col("k") > 1)
               .sort("series")["series"].to_list())
    if not several:
        return {}
    best = (ok.filter(pl.col("series").is_in(several)).group_by("feature")
            .agg(pl.col("mean_ic").abs().max().alias("m")).sort(["m", "feature"], descending=[True, False])
            .head(DECAY)["feature"].to_list())
    out = {}
    for f in best:
        for g in several:
            one = ok.filter((pl.col("feature") == f) & (pl.col("series") == g)).sort("horizon")
            if one.height > 1:
                out[f if len(several) == 1 else f"{f} ~ {g}"] = (one["horizon"].to_list(), one["mean_ic"].round(5).to_list())
    return out
