"""Summaries of the IC cells: per feature and target, and per family and target (each target has one horizon).

Per (feature, target), over the cells whose IC is not NULL (`cells` of them, `rows` their rows summed):
- `mean_ic`, `std_ic` (ddof 1), `ir` = mean_ic / std_ic;
- `sign_share`: the share of cells whose IC has the sign of mean_ic;
- `t_stat` over months: the cells of a month are averaged over pairs first (pairs share currencies,
  so they are not independent), then t = mean / (std (ddof 1) / sqrt(months)) of those monthly means.
A statistic is NULL where it is undefined (too few cells or months, a zero std or mean).

Per (family, target): `features` with a mean IC, `mean_abs_ic` (the mean over them of |mean_ic|),
`max_abs_ic` and the feature that has it (`top_feature`, `top_ic`, `top_t`), and `mean_abs_t`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import polars as pl

from bqx.signal.select import Target


def _safe_div(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    return pl.when(b.is_not_null() & (b != 0) & a.is_not_null()).then(a / b).otherwise(None)


def feature_summary(cells: pl.DataFrame, family_of: Mapping[str, str], targets: Sequence[Target]) -> pl.DataFrame:
    """One row per (feature, target): family, target family, horizon, cells, months and the statistics above."""
    ok = cells.filter(pl.col("ic").is_not_null())
    ic = pl.col("ic")
    base = cells.group_by("feature", "target").agg(  # every (feature, target), also one whose cells are all NULL
        ic.is_not_null().sum().cast(pl.Int64).alias("cells"), ic.mean().alias("mean_ic"), ic.std(ddof=1).alias("std_ic"),
        pl.col("n").filter(ic.is_not_null()).sum().alias("rows"),
        ((ic.sign() == ic.mean().sign()) & (ic.mean() != 0)).sum().alias("_same"),
    )
    monthly = ok.group_by("feature", "target", "month").agg(ic.mean().alias("m"))
    tstat = monthly.group_by("feature", "target").agg(
        pl.len().alias("months"), pl.col("m").mean().alias("_mm"), pl.col("m").std(ddof=1).alias("_ms"))
    out = base.join(tstat, on=["feature", "target"], how="left").with_columns(
        pl.col("months").fill_null(0).cast(pl.Int64),
        _safe_div(pl.col("mean_ic"), pl.col("std_ic")).alias("ir"),
        pl.when(pl.col("mean_ic") != 0).then(pl.col("_same") / pl.col("cells")).otherwise(None).alias("sign_share"),
        _safe_div(pl.col("_mm"), pl.col("_ms") / pl.col("months").cast(pl.Float64).sqrt()).alias("t_stat"),
    )
    meta = pl.DataFrame({"target": [t.name for t in targets], "target_family": [t.family for t in targets],
                         "horizon": [t.horizon for t in targets], "_t": list(range(len(targets)))},
                        schema={"target": pl.String, "target_family": pl.String, "horizon": pl.Int64, "_t": pl.Int64})
    fam = pl.DataFrame({"feature": list(family_of), "family": list(family_of.values()), "_f": list(range(len(family_of)))},
                       schema={"feature": pl.String, "family": pl.String, "_f": pl.Int64})
    return (out.join(fam, on="feature", how="left").join(meta, on="target", how="left").sort("_f", "_t")
            .select("feature", "family", "target", "target_family", "horizon", "cells", "months", "rows", "mean_ic",
                    "std_ic", "ir", "sign_share", "t_stat"))


def family_summary(features: pl.DataFrame) -> pl.DataFrame:
    """One row per (family, target) from `feature_summary`'s table."""
    f = features.filter(pl.col("mean_ic").is_not_null()).with_columns(pl.col("mean_ic").abs().alias("_abs"))
    order = features.select("family", "target").unique(maintain_order=True).with_row_index("_o")
    return (f.sort("_abs", descending=True).group_by("family", "target", "target_family", "horizon").agg(
        pl.len().alias("features"), pl.col("_abs").mean().alias("mean_abs_ic"), pl.col("_abs").first().alias("max_abs_ic"),
        pl.col("feature").first().alias("top_feature"), pl.col("mean_ic").first().alias("top_ic"),
        pl.col("t_stat").first().alias("top_t"), pl.col("t_stat").abs().mean().alias("mean_abs_t"))
        .join(order, on=["family", "target"], how="left").sort("_o").drop("_o"))


def strongest(features: pl.DataFrame, top: int, by: str = "mean_ic") -> pl.DataFrame:
    """The `top` (feature, target) rows with the largest |by| (ties: larger |mean_ic|)."""
    return (features.filter(pl.col(by).is_not_null())
            .sort([pl.col(by).abs(), pl.col("mean_ic").abs()], descending=True).head(top))
