"""Input validation rules and quarantine: vectorised checks over whole files, strict errors, repair records.

Every rule has an id (the `rule` of an InputError and of a quarantine record). Under `strict` the
first offending row (lowest line) stops the run with one message; under `repair` each rejected row
becomes one quarantine record (its first broken rule) and nothing is dropped silently:
rows in = rows out + rows quarantined (+ rows of pairs not asked for).

Choices: identical duplicate timestamps keep the first row and quarantine the others; conflicting
duplicates (same pair and time, different values) quarantine every row of the group, since neither
can be trusted. Out-of-order rows are sorted (counted as a fix, nothing dropped). Two files of one
pair whose time ranges overlap: the file that starts first is kept and the later file's rows
inside the covered range are quarantined as pair-overlap.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from pathlib import Path

import polars as pl

from bqx.bar_schema import ASK_COLUMNS, BID_COLUMNS, PRICE_COLUMNS
from bqx.errors import InputError
from bqx.io import write_parquet
from bqx.universe import PAIR_NAMES

#: Internal columns every parsed frame carries besides bar columns (the readers write them, the rules read them).
LINE, RAW, RULE, COL, VAL = "_line", "_raw", "_rule", "_col", "_val"

POLICIES = ("strict", "repair")

#: The largest price a bar may carry (rule price-out-of-bounds). The 28 pairs trade between about 0.4
#: (NZDUSD at its lows) and a few hundred (the JPY crosses); 1e6 leaves three orders of magnitude for
#: feeds that quote in points, and stops garbage such as 1e308, whose square overflows float64 in
#: every variance and regression a family computes.
MAX_PRICE = 1e6

#: rule id -> what it means (one line, used in errors, reports and the docs).
RULES: dict[str, str] = {
    "empty-file": "the file has no rows",
    "not-text": "the file is not CSV text",
    "not-parquet": "the file is not readable Parquet",
    "wrong-format": "the file is not in the format given",
    "unknown-format": "the file's format cannot be told from its first lines",
    "missing-column": "a required column is missing",
    "unparseable": "the line does not split into the expected number of fields",
    "bad-timestamp": "the timestamp does not parse",
    "bad-number": "the value is not a number",
    "naive-timestamp": "the timestamp has no time zone and none was declared (--tz)",
    "nonexistent-local-time": "the local time does not exist in the declared zone (skipped by a daylight-saving change)",
    "ambiguous-local-time": "the local time occurs twice in the declared zone (daylight-saving change)",
    "unknown-pair": "the pair is not one of the 28 pairs bqx knows",
    "non-finite-price": "the price is NaN or infinite",
    "non-positive-price": "the price is zero or negative",
    "price-out-of-bounds": "the price is above 1e6, the bound of a quote (no FX rate of the 28 pairs comes near it)",
    "high-below-low": "high is below low",
    "open-outside-range": "open is outside [low, high]",
    "close-outside-range": "close is outside [low, high]",
    "bid-above-ask": "the bid price is above the ask price",
    "non-finite-volume": "the volume is NaN or infinite",
    "negative-volume": "the volume is negative",
    "duplicate-identical": "the timestamp repeats an earlier row with identical values (the first is kept)",
    "duplicate-conflict": "the timestamp repeats with different values (every row of the group is rejected)",
    "out-of-order": "the timestamp is earlier than a previous row's",
    "pair-overlap": "the pair is given twice: the time range overlaps another file or source of the same pair",
    "bid-ask-unmatched": "a bid bar has no ask bar at the same time, or the reverse",
    "mixed-basis": "one pair mixes files of different price bases",
    "basis-mismatch": "the pair is already in the store with another price basis",
}
#: Rules whose rows `repair` fixes in place rather than drops.
FIXED_RULES = ("out-of-order",)

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "file": pl.String, "line": pl.Int64, "pair": pl.String, "column": pl.String,
    "value": pl.String, "rule": pl.String, "raw": pl.String, "detail": pl.String,
    "scope": pl.String,  # "row": one rejected row; "file": a whole file that could not be read as bars
}
_HINT = "Fix the input, or rerun with --policy repair to quarantine rejected rows and go on."


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        from bqx.errors import UsageError

        raise UsageError(f"unknown policy {policy!r}", hint="Use --policy strict (the default) or --policy repair.")
    return policy


def empty_issues() -> pl.DataFrame:
    return pl.DataFrame(schema=QUARANTINE_SCHEMA)


def file_issue(file: str, rule: str, message: str, *, line: int | None = None, column: str | None = None,
               value: str | None = None, pair: str | None = None) -> pl.DataFrame:
    """One quarantine record for a whole file that could not be read as bars."""
    detail = f"{RULES.get(rule, rule)} ({message})"
    return pl.DataFrame([{"file": file, "line": line, "pair": pair, "column": column, "value": value,
                          "rule": rule, "raw": value, "detail": detail, "scope": "file"}],
                        schema=QUARANTINE_SCHEMA)


def ts_text(name: str = "ts") -> pl.Expr:
    """A UTC timestamp as ISO-8601 text (2024-07-01T00:02:00Z) for messages and quarantine values."""
    return pl.col(name).dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ")


def _chain(checks: list[tuple[str, str, pl.Expr, pl.Expr]]) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    rule = pl.when(pl.col(RULE).is_not_null()).then(pl.col(RULE))
    col = pl.when(pl.col(RULE).is_not_null()).then(pl.col(COL))
    val = pl.when(pl.col(RULE).is_not_null()).then(pl.col(VAL))
    for r, c, bad, v in checks:
        rule, col, val = rule.when(bad).then(pl.lit(r)), col.when(bad).then(pl.lit(c)), val.when(bad).then(v.cast(pl.String))
    return rule.otherwise(None), col.otherwise(None), val.otherwise(None)


def row_checks(price_sets: tuple[tuple[str, ...], ...], pair_from_rows: bool) -> list[tuple[str, str, pl.Expr, pl.Expr]]:
    """Every per-row rule as (rule, column, bad expression, value expression), in reporting order."""
    checks: list[tuple[str, str, pl.Expr, pl.Expr]] = []
    if pair_from_rows:
        checks.append(("unknown-pair", "pair", ~pl.col("pair").is_in(PAIR_NAMES), pl.col("pair")))
    for cols in price_sets:
        checks += [("non-finite-price", c, pl.col(c).is_nan() | pl.col(c).is_infinite(), pl.col(c)) for c in cols]
    for cols in price_sets:
        checks += [("non-positive-price", c, pl.col(c) <= 0, pl.col(c)) for c in cols]
    for cols in price_sets:
        checks += [("price-out-of-bounds", c, pl.col(c) > MAX_PRICE, pl.col(c)) for c in cols]
    for o, h, lo, c in price_sets:
        checks += [
            ("high-below-low", h, pl.col(h) < pl.col(lo), pl.col(h)),
            ("open-outside-range", o, (pl.col(o) < pl.col(lo)) | (pl.col(o) > pl.col(h)), pl.col(o)),
            ("close-outside-range", c, (pl.col(c) < pl.col(lo)) | (pl.col(c) > pl.col(h)), pl.col(c)),
        ]
    if BID_COLUMNS in price_sets and ASK_COLUMNS in price_sets:
        checks += bid_ask_checks()
    checks += [
        ("non-finite-volume", "volume", pl.col("volume").is_nan() | pl.col("volume").is_infinite(), pl.col("volume")),
        ("negative-volume", "volume", pl.col("volume") < 0, pl.col("volume")),
    ]
    return checks


def bid_ask_checks() -> list[tuple[str, str, pl.Expr, pl.Expr]]:
    return [("bid-above-ask", b, pl.col(b) > pl.col(a), pl.col(b)) for b, a in zip(BID_COLUMNS, ASK_COLUMNS)]


def _context(rule: pl.Expr, column: pl.Expr, price_sets: tuple[tuple[str, ...], ...]) -> pl.Expr:
    """Extra detail for range rules: the row's four prices of the set the column belongs to."""
    out = pl.lit(None, pl.String)
    for cols in price_sets:
        text = pl.concat_str([pl.lit(f"{c}=") + pl.col(c).cast(pl.String) for c in cols], separator=" ")
        out = pl.when(column.is_in(list(cols)) & rule.is_in(["high-below-low", "open-outside-range", "close-outside-range"])).then(text).otherwise(out)
    return out


def to_issues(bad: pl.DataFrame, file: str | pl.Expr, extra: pl.Expr | None = None) -> pl.DataFrame:
    """Quarantine records from rows carrying _rule/_col/_val."""
    if bad.height == 0:
        return empty_issues()
    file_expr = pl.lit(file) if isinstance(file, str) else file
    detail = pl.col(RULE).replace_strict(RULES, default=pl.col(RULE), return_dtype=pl.String)
    if extra is not None:
        detail = pl.when(extra.is_not_null()).then(pl.concat_str([detail, pl.lit(" ("), extra, pl.lit(")")])).otherwise(detail)
    pair = pl.col("pair") if "pair" in bad.columns else pl.lit(None, pl.String)
    return bad.select(
        file_expr.cast(pl.String).alias("file"), pl.col(LINE).cast(pl.Int64).alias("line"), pair.cast(pl.String).alias("pair"),
        pl.col(COL).cast(pl.String).alias("column"), pl.col(VAL).cast(pl.String).alias("value"),
        pl.col(RULE).cast(pl.String).alias("rule"), pl.col(RAW).cast(pl.String).alias("raw"), detail.alias("detail"), pl.lit("row").alias("scope"),
    )


def check_rows(frame: pl.DataFrame, file: str, price_sets: tuple[tuple[str, ...], ...], pair_from_rows: bool
               ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Validate one parsed file: (good rows sorted by pair and ts, rejected rows, out-of-order rows).

    `frame` carries _line, _raw, pair, ts, price columns, volume and the parser's _rule/_col/_val.
    """
    rule, col, val = _chain(row_checks(price_sets, pair_from_rows))
    frame = frame.with_columns(rule.alias(RULE), col.alias(COL), val.alias(VAL))
    bad = frame.filter(pl.col(RULE).is_not_null())
    issues = [to_issues(bad, file, _context(pl.col(RULE), pl.col(COL), price_sets))]
    good = frame.filter(pl.col(RULE).is_null())
    good, dups = _duplicates(good, file, [c for s in price_sets for c in s] + ["volume"])
    issues.append(dups)
    late = pl.col("ts") < pl.col("ts").cum_max().shift(1).over("pair", order_by=LINE)
    order = good.filter(late).with_columns(
        pl.lit("out-of-order").alias(RULE), pl.lit("ts").alias(COL), ts_text().alias(VAL))
    good = good.sort("pair", "ts", LINE)
    return good, pl.concat(issues), to_issues(order, file)


def _duplicates(good: pl.DataFrame, file: str, values: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    key = ["pair", "ts"]
    repeated = good.select(pl.struct(key).is_duplicated()).to_series()
    if not repeated.any():
        return good, empty_issues()
    unique, g = good.filter(~repeated), good.filter(repeated)
    g = g.with_columns(
        pl.len().over(key).alias("_dup_n"),
        pl.col(LINE).rank("ordinal").over(key).alias("_rank"),
        pl.struct(values).n_unique().over(key).alias("_distinct"),
        pl.col(LINE).min().over(key).alias("_first"),
        pl.col(LINE).cast(pl.String).str.join(", ").over(key).alias("_lines"),
    )
    identical = (pl.col("_dup_n") > 1) & (pl.col("_distinct") == 1) & (pl.col("_rank") > 1)
    conflict = (pl.col("_dup_n") > 1) & (pl.col("_distinct") > 1)
    g = g.with_columns(
        pl.when(identical).then(pl.lit("duplicate-identical")).when(conflict).then(pl.lit("duplicate-conflict")).alias(RULE),
        pl.lit("ts").alias(COL), ts_text().alias(VAL),
    )
    extra = pl.when(pl.col(RULE) == "duplicate-identical").then(pl.lit("same as line ") + pl.col("_first").cast(pl.String)) \
        .otherwise(pl.lit("lines ") + pl.col("_lines"))
    dups = to_issues(g.filter(pl.col(RULE).is_not_null()), file, extra)
    kept = g.filter(pl.col(RULE).is_null()).drop("_dup_n", "_rank", "_distinct", "_first", "_lines", RULE, COL, VAL)
    kept = kept.with_columns(pl.lit(None, pl.String).alias(c) for c in (RULE, COL, VAL)).select(unique.columns)
    kept = pl.concat([unique, kept], how="vertical_relaxed")
    return kept.sort(LINE), dups


def raise_first(issues: pl.DataFrame, *, scope: str = "") -> None:
    """Strict policy: raise one InputError for the earliest issue (lowest line), counting the rest."""
    if issues.height == 0:
        return
    issues = issues.sort("file", "line", nulls_last=False)
    first = issues.row(0, named=True)
    counts = Counter(issues["rule"].to_list())
    more = ""
    if issues.height > 1:
        listed = ", ".join(f"{n} {r}" for r, n in counts.most_common())
        more = f"; first of {issues.height} problems{scope}: {listed}"
    raise InputError(
        f"{first['detail']}{more}",
        file=first["file"], line=first["line"], column=first["column"], value=first["value"],
        rule=first["rule"], pair=first["pair"], hint=_HINT,
    )


def overlap_issues(parts: list[tuple[str, pl.DataFrame]]) -> tuple[list[pl.DataFrame], pl.DataFrame]:
    """Files of one pair and side, each (file, good rows): keep the earliest-starting file, reject later rows in range.

    Returns the kept frames (same order as given) and the pair-overlap records.
    """
    order = sorted(range(len(parts)), key=lambda i: (parts[i][1]["ts"].min(), parts[i][0]))
    kept: list[pl.DataFrame] = [p for _, p in parts]
    issues = [empty_issues()]
    covered_max, covered_by = None, None
    for i in order:
        file, frame = parts[i]
        if frame.height == 0:
            continue
        if covered_max is not None:
            inside = pl.col("ts") <= covered_max
            bad = frame.filter(inside).with_columns(
                pl.lit("pair-overlap").alias(RULE), pl.lit("ts").alias(COL), ts_text().alias(VAL))
            extra = pl.lit(f"{covered_by} already covers this pair up to {covered_max}")
            issues.append(to_issues(bad, file, extra))
            frame = frame.filter(~inside)
            kept[i] = frame
        if frame.height and (covered_max is None or frame["ts"].max() > covered_max):
            covered_max, covered_by = frame["ts"].max(), Path(file).name
    return kept, pl.concat(issues)


def merge_sides(bid: pl.DataFrame, ask: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Join a pair's bid and ask bars on ts into mid + bid/ask; unmatched and crossed rows are rejected.

    Mid OHLC = (bid + ask) / 2 column by column; volume is the bid file's.
    """
    b = bid.select("_file", LINE, RAW, "pair", "ts", *[pl.col(m).alias(c) for m, c in zip(PRICE_COLUMNS, BID_COLUMNS)], "volume")
    a = ask.select(*[pl.col(x).alias(f"{x}_ask") for x in ("_file", LINE, RAW, "pair")], "ts",
                   *[pl.col(m).alias(c) for m, c in zip(PRICE_COLUMNS, ASK_COLUMNS)])
    j = b.join(a, on="ts", how="full", coalesce=True)
    only_bid = j.filter(pl.col("_line_ask").is_null())
    only_ask = j.filter(pl.col(LINE).is_null())
    issues = [
        to_issues(only_bid.with_columns(pl.lit("bid-ask-unmatched").alias(RULE), pl.lit("ts").alias(COL),
                                        ts_text().alias(VAL)), pl.col("_file"), pl.lit("no ask bar at this time")),
        to_issues(only_ask.select(pl.col("_file_ask").alias("_file"), pl.col("_line_ask").alias(LINE),
                                  pl.col("_raw_ask").alias(RAW), pl.col("pair_ask").alias("pair"), "ts")
                  .with_columns(pl.lit("bid-ask-unmatched").alias(RULE), pl.lit("ts").alias(COL),
                                ts_text().alias(VAL)), pl.col("_file"), pl.lit("no bid bar at this time")),
    ]
    both = j.filter(pl.col(LINE).is_not_null() & pl.col("_line_ask").is_not_null()).with_columns(
        pl.lit(None, pl.String).alias(RULE), pl.lit(None, pl.String).alias(COL), pl.lit(None, pl.String).alias(VAL))
    rule, col, val = _chain(bid_ask_checks())
    both = both.with_columns(rule.alias(RULE), col.alias(COL), val.alias(VAL))
    crossed = both.filter(pl.col(RULE).is_not_null())
    ask_of = dict(zip(BID_COLUMNS, ASK_COLUMNS))
    ask_value = pl.coalesce([pl.when(pl.col(COL) == b_).then(pl.col(a_).cast(pl.String)) for b_, a_ in ask_of.items()])
    bid_value = pl.coalesce([pl.when(pl.col(COL) == b_).then(pl.col(b_).cast(pl.String)) for b_ in BID_COLUMNS])
    issues.append(to_issues(crossed, pl.col("_file"), pl.concat_str([
        pl.lit("ask "), pl.col(COL).replace_strict(ask_of, default=None), pl.lit(" is "), ask_value, pl.lit(" in "),
        pl.col("_file_ask"), pl.lit(" line "), pl.col("_line_ask").cast(pl.String)])))
    issues.append(to_issues(crossed.select(
        pl.col("_file_ask").alias("_file"), pl.col("_line_ask").alias(LINE), pl.col("_raw_ask").alias(RAW),
        pl.col("pair_ask").alias("pair"), pl.col(RULE), pl.col(COL).replace_strict(ask_of, default=None).alias(COL),
        ask_value.alias(VAL), pl.col(LINE).alias("_bid_line"), bid_value.alias("_bid_value"),
        pl.col(COL).alias("_bid_col"),
    ), pl.col("_file"), pl.concat_str([pl.lit("bid "), pl.col("_bid_col"), pl.lit(" is "), pl.col("_bid_value"),
                                       pl.lit(" at line "), pl.col("_bid_line").cast(pl.String), pl.lit(" of the bid file")])))
    good = both.filter(pl.col(RULE).is_null()).with_columns(
        ((pl.col(b_) + pl.col(a_)) / 2).alias(m) for m, b_, a_ in zip(PRICE_COLUMNS, BID_COLUMNS, ASK_COLUMNS))
    return good.drop(RULE, COL, VAL, "_file_ask", "_raw_ask", "pair_ask").sort("ts"), pl.concat(issues)


def write_quarantine(issues: pl.DataFrame, path: Path) -> Path:
    """Write quarantine records to a Parquet file (temp file, fsync, rename)."""
    write_parquet(issues.select(list(QUARANTINE_SCHEMA)).cast(QUARANTINE_SCHEMA), path)
    return path


def write_store_quarantine(root: Any, issues: pl.DataFrame, stamp: str) -> str:
    """Write an ingest's rejected rows to `<store>/quarantine/<stamp>.parquet` (a local store or an s3:// one,
    through its backend: one atomic write); the file's full name."""
    from bqx.store.backend import backend_for, is_url

    if not is_url(root):
        return str(write_quarantine(issues, Path(root) / "quarantine" / f"{stamp}.parquet"))
    backend = backend_for(root)
    rel = f"quarantine/{stamp}.parquet"
    backend.write_parquet(rel, issues.select(list(QUARANTINE_SCHEMA)).cast(QUARANTINE_SCHEMA))
    return backend.join(rel)
