"""Coverage: bars per pair and month, gaps within the trading week, quarantined rows with their reasons."""

from __future__ import annotations

import polars as pl

from bqx.report import figures
from bqx.report.context import Context
from bqx.report.page import Chart, Section, table
from bqx.universe import PAIR_NAMES

WEEKEND_MINUTES = 36 * 60  # a gap this long that covers a Saturday is the weekend close, not a gap


def gaps(ctx: Context) -> pl.DataFrame:
    """Every gap of more than one minute between consecutive bars of a pair that is not the weekend close."""
    frames = []
    for (pair, month), f in ctx.bars.items():
        frames.append(pl.scan_parquet(f).select("ts").with_columns(pl.lit(pair).alias("pair")))
    if not frames:
        return pl.DataFrame(schema={"pair": pl.String, "from": pl.Datetime("us", "UTC"), "to": pl.Datetime("us", "UTC"),
                                    "minutes": pl.Int64, "month": pl.String})
    ts = pl.concat(frames)  # files come sorted by pair, then month; each file by ts
    g = (ts.with_columns(pl.col("ts").shift(1).over("pair").alias("from"))
         .with_columns(((pl.col("ts") - pl.col("from")).dt.total_minutes()).alias("minutes"))
         .filter(pl.col("minutes") > 1)
         .rename({"ts": "to"}))
    to_saturday = (6 - pl.col("from").dt.weekday()) % 7  # days from the gap's first day to the next Saturday
    saturday = pl.col("from").dt.date() + pl.duration(days=to_saturday) <= pl.col("to").dt.date()
    weekend = (pl.col("minutes") >= WEEKEND_MINUTES) & saturday & (pl.col("minutes") <= 4 * 24 * 60)
    return (g.filter(~weekend).with_columns(pl.col("from").dt.strftime("%Y-%m").alias("month"))
            .select("pair", "from", "to", "minutes", "month").collect())


def quarantine(ctx: Context) -> pl.DataFrame | None:
    files = sorted((ctx.root / "quarantine").glob("*.parquet"))
    if not files:
        return None
    return pl.concat([pl.read_parquet(f).with_columns(pl.lit(f.name).alias("quarantine_file")) for f in files],
                     how="diagonal_relaxed")


def section(ctx: Context) -> Section:
    sec = Section("coverage", "Coverage")
    if not ctx.bars:
        sec.note("The store holds no bars: ingest or run first.")
        return sec
    missing = [p for p in PAIR_NAMES if p not in ctx.pairs]
    if missing:
        sec.note(f"{len(missing)} of the 28 pairs are missing from the store: {', '.join(missing)}. Cross-pair "
                 "families (currency strength, triangles, advanced) are NULL where they need them.")
    months = ctx.months
    rows = {k: ctx.bar_rows.get(k) for k in ctx.bars}
    unknown = [k for k, v in rows.items() if v is None]
    for k in unknown:  # not in the manifest: count from the Parquet footer
        rows[k] = pl.scan_parquet(ctx.bars[k]).select(pl.len()).collect().item()
    z = [[rows.get((p, m)) for m in months] for p in PAIR_NAMES]
    text = [[("" if v is None else f"{v:,}") for v in r] for r in z]
    sec.add(Chart(figures.heatmap(z, months, PAIR_NAMES, "Bars per pair and month (empty: no bars)", text=text,
                                  colorbar="bars")))
    g = gaps(ctx)
    counts = g.group_by("pair", "month").agg(pl.len().alias("n"), pl.col("minutes").sum().alias("m"))
    lookup = {(p, m): (n, mm) for p, m, n, mm in counts.iter_rows()}
    gz = [[(lookup.get((p, m), (0, 0))[1] if (p, m) in ctx.bars else None) for m in months] for p in PAIR_NAMES]
    gt = [[(f"{lookup[(p, m)][0]} gaps" if (p, m) in lookup else "") for m in months] for p in PAIR_NAMES]
    sec.add(Chart(figures.heatmap(gz, months, PAIR_NAMES, "Minutes missing within the trading week (gaps > 1 min, "
                                  "weekend close excluded)", text=gt, colorscale="Reds", colorbar="minutes")))
    if g.height:
        top = g.sort("minutes", descending=True).head(20)
        sec.add(table(["pair", "last bar before", "next bar", "minutes"],
                      [[p, str(a), str(b), m] for p, a, b, m, _ in top.iter_rows()], caption="The longest gaps"))
    q = quarantine(ctx)
    if q is None or q.height == 0:
        sec.note("No quarantined rows: nothing was rejected by `bqx ingest --policy repair` (or nothing was ingested "
                 "that way).")
        return sec
    by = (q.with_columns(pl.col("pair").fill_null("(file)")).group_by("rule", "pair").agg(pl.len().alias("n"))
          .sort("rule", "pair"))
    rules = sorted(by["rule"].unique().to_list())
    pairs = sorted(by["pair"].unique().to_list())
    look = {(r, p): n for r, p, n in by.iter_rows()}
    sec.add(Chart(figures.bars(rules, {p: [look.get((r, p), 0) for r in rules] for p in pairs},
                               f"Quarantined records per rule and pair ({q.height:,} in all)", stacked=True,
                               ytitle="records")))
    cols = [c for c in ("quarantine_file", "file", "line", "pair", "column", "value", "rule", "detail") if c in q.columns]
    sec.add(table(cols, q.select(cols).head(50).rows(), caption=f"The first {min(50, q.height)} quarantined records"))
    return sec
