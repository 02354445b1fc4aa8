"""Coverage: bars per pair and month against the trading minutes the month has, gaps within the trading
week, quarantined rows with their reasons (each record once, however often a source was re-ingested).

Only the pairs in the store get a row; the missing ones are named in a note. Colours are sequential
and relative to what a month can hold (its FX-week minutes, Sunday 17:00 to Friday 17:00 New York),
so a normal month with a few minutes missing looks normal.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl

from bqx.report import figures
from bqx.report.context import Context
from bqx.report.page import Chart, Section, table
from bqx.universe import PAIR_NAMES

WEEKEND_MINUTES = 36 * 60  # a gap this long that covers a Saturday is the weekend close, not a gap
NEW_YORK = "America/New_York"
GAP_SCALE_MAX = 0.02  # the gaps heat map saturates at 2 % of a month's trading minutes


def trading_minutes(month: str, first: datetime | None = None, last: datetime | None = None) -> int:
    """Minutes of `month` (YYYY-MM, UTC) inside the FX week (not from Friday 17:00 to Sunday 17:00 New York time),
    counting only from `first` to `last` inclusive when given (the store's span: its first and last bar)."""
    start = datetime(int(month[:4]), int(month[5:7]), 1, tzinfo=timezone.utc)
    end = datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=timezone.utc)
    if first is not None:
        start = max(start, first)
    if last is not None:
        end = min(end, last + timedelta(minutes=1))
    if end <= start:
        return 0
    ny = pl.datetime_range(start, end, "1m", closed="left", eager=True, time_unit="us").dt.convert_time_zone(NEW_YORK)
    day, hour = ny.dt.weekday(), ny.dt.hour()  # Monday 1 .. Sunday 7
    closed = ((day == 5) & (hour >= 17)) | (day == 6) | ((day == 7) & (hour < 17))
    return int((~closed).sum())


def gaps(ctx: Context) -> pl.DataFrame:
    """Every gap of more than one minute between consecutive bars of a pair that is not the weekend close."""
    frames = []
    for (pair, month), f in ctx.bars.items():
        frames.append(ctx.scan(f).select("ts").with_columns(pl.lit(pair).alias("pair")))
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


RECORD = ("file", "line", "pair", "column", "value", "rule", "raw", "scope")


def quarantine(ctx: Context) -> tuple[pl.DataFrame, int] | None:
    """Every quarantined record once (the first quarantine file that holds it), and how many repeats were
    left out: re-ingesting a source writes its rejected rows to a new quarantine file again."""
    files = [f for f in ctx.backend.list_files("quarantine") if f.count("/") == 1 and f.endswith(".parquet")]
    if not files:
        return None
    allq = pl.concat([ctx.read(f).with_columns(pl.lit(f.rsplit("/", 1)[-1]).alias("quarantine_file")) for f in files],
                     how="diagonal_relaxed")
    key = [c for c in RECORD if c in allq.columns]
    once = allq.unique(subset=key, keep="first", maintain_order=True)
    return once, allq.height - once.height


def section(ctx: Context) -> Section:
    sec = Section("coverage", "Coverage")
    if not ctx.bars:
        sec.note("The store holds no bars: ingest or run first.")
        return sec
    pairs = [p for p in PAIR_NAMES if p in ctx.pairs] + [p for p in ctx.pairs if p not in PAIR_NAMES]
    missing = [p for p in PAIR_NAMES if p not in ctx.pairs]
    if missing:
        sec.note(f"{len(missing)} of the 28 pairs are missing from the store and have no row below: "
                 f"{', '.join(missing)}. Cross-pair families (currency strength, triangles, advanced) are NULL where "
                 "they need them.")
    months = ctx.months
    rows = {k: ctx.bar_rows.get(k) for k in ctx.bars}
    unknown = [k for k, v in rows.items() if v is None]
    for k in unknown:  # not in the manifest: count from the Parquet footer
        rows[k] = ctx.scan(ctx.bars[k]).select(pl.len()).collect().item()
    span = pl.concat([ctx.scan(f).select(pl.col("ts").min().alias("a"), pl.col("ts").max().alias("b"))
                      for f in ctx.bars.values()]).select(pl.col("a").min(), pl.col("b").max()).collect().row(0)
    expected = {m: trading_minutes(m, *span) for m in months}
    z = [[(None if rows.get((p, m)) is None else min(1.0, rows[(p, m)] / max(1, expected[m]))) for m in months]
         for p in pairs]
    text = [[("" if rows.get((p, m)) is None else f"{rows[(p, m)]:,} ({rows[(p, m)] / max(1, expected[m]):.1%})")
             for m in months] for p in pairs]
    absent = sum(1 for p in pairs for m in months if (p, m) not in ctx.bars)
    sec.add(Chart(figures.heatmap(z, months, pairs, "Bars per pair and month, share of the month's trading minutes "
                                  "(Sunday 17:00 to Friday 17:00 New York) within the store's first to last bar"
                                  + ("; blank: no bars" if absent else ""),
                                  text=text, colorscale=figures.SEQ_BLUE, zmin=0.0, zmax=1.0, colorbar="coverage")))
    g = gaps(ctx)
    counts = g.group_by("pair", "month").agg(pl.len().alias("n"), pl.col("minutes").sum().alias("m"))
    lookup = {(p, m): (n, mm) for p, m, n, mm in counts.iter_rows()}
    gz = [[((lookup.get((p, m), (0, 0))[1] / max(1, expected[m])) if (p, m) in ctx.bars else None) for m in months]
          for p in pairs]
    gt = [[(f"{lookup[(p, m)][0]} gaps, {lookup[(p, m)][1]:,} min" if (p, m) in lookup else "") for m in months]
          for p in pairs]
    top = max([v for r in gz for v in r if v is not None], default=0.0)
    sec.add(Chart(figures.heatmap(gz, months, pairs, "Minutes missing within the trading week, share of the month's "
                                  "trading minutes (gaps > 1 min, weekend close excluded)", text=gt, colorscale=figures.SEQ_ORANGE,
                                  zmin=0.0, zmax=max(GAP_SCALE_MAX, top), colorbar="missing")))
    if g.height:
        top = g.sort("minutes", descending=True).head(20)
        sec.add(table(["pair", "last bar before", "next bar", "minutes"],
                      [[p, str(a), str(b), m] for p, a, b, m, _ in top.iter_rows()], caption="The longest gaps"))
    found = quarantine(ctx)
    q, repeats = found if found is not None else (None, 0)
    if q is None or q.height == 0:
        sec.note("No quarantined rows: nothing was rejected by `bqx ingest --policy repair` (or nothing was ingested "
                 "that way).")
        return sec
    by = (q.with_columns(pl.col("pair").fill_null("(file)")).group_by("rule", "pair").agg(pl.len().alias("n"))
          .sort("rule", "pair"))
    rules = sorted(by["rule"].unique().to_list())
    pairs = sorted(by["pair"].unique().to_list())
    look = {(r, p): n for r, p, n in by.iter_rows()}
    n_rows = int((q["scope"] == "row").sum()) if "scope" in q.columns else q.height
    sec.add(Chart(figures.bars(rules, {p: [look.get((r, p), 0) for r in rules] for p in pairs},
                               f"Quarantined records per rule and pair ({q.height:,} in all: {n_rows:,} rows, "
                               f"{q.height - n_rows:,} whole files)", stacked=True, ytitle="records")))
    if repeats:
        sec.note(f"{repeats:,} quarantined records repeat ones of an earlier ingest of the same source (a re-ingest "
                 "quarantines them again); each is counted once.")
    cols = [c for c in ("quarantine_file", "file", "line", "pair", "column", "value", "rule", "detail") if c in q.columns]
    sec.add(table(cols, q.select(cols).head(50).rows(), caption=f"The first {min(50, q.height)} quarantined records"))
    return sec
