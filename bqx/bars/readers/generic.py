"""Generic CSV or Parquet with a header, mapped to bar columns by a column map or by name.

Without a map, columns are matched by name, case-insensitively (`ts`/`time`/`timestamp`...,
`open`..`close`, `volume`, `bid_open`..`ask_close`, `pair`): the sample market's CSV dialect
(`ts,open,...,ask_close`, ISO-8601 UTC) reads as it is. Timestamps are ISO-8601; a `Z` or `+hh:mm`
suffix fixes the zone, otherwise --tz is required. Parquet datetime columns keep their zone.
For Parquet files, `line` means the 1-based row number.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from bqx.bars.readers._common import (
    PRICE_SETS, price_sides,
    COL, LINE, RAW, RULE, VAL, FileProblem, Parsed, first_line, localize, naive_without_zone, normalize_pair,
    num, number_checks, sniff_sep, split_fields, tz_checks, with_parse_errors,
)
from bqx.bars.timezones import ZoneMap, localize_by_pair
from bqx.bar_schema import ASK_COLUMNS, BID_COLUMNS, PRICE_COLUMNS, TS_DTYPE
from bqx.errors import UsageError

NAME = "generic"
_ALIASES: dict[str, tuple[str, ...]] = {
    "ts": ("ts", "time", "timestamp", "datetime", "date_time", "gmt time", "local time", "date"),
    "open": ("open", "o"), "high": ("high", "h"), "low": ("low", "l"), "close": ("close", "c"),
    "volume": ("volume", "vol", "tickvol", "tick_volume"),
    "pair": ("pair", "symbol", "instrument"),
    **{c: (c,) for c in (*BID_COLUMNS, *ASK_COLUMNS)},
}
TARGETS = tuple(_ALIASES)
_TS = r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(Z|UTC|[+-]\d{2}:?\d{2})?$"


def sniff(first: str, second: str | None = None) -> bool:
    names = [h.strip().strip('"').strip().lower() for h in first.split(sniff_sep(first))]
    return any(n in _ALIASES["ts"] for n in names) and "close" in names or {"ts", "bid_close"} <= set(names)


def resolve(header: list[str], column_map: dict[str, str] | None) -> dict[str, int]:
    """Target column -> position in the header."""
    lower = {h.strip().lower(): i for i, h in reversed(list(enumerate(header)))}
    out: dict[str, int] = {}
    if column_map:
        unknown = sorted(set(column_map) - set(TARGETS))
        if unknown:
            raise UsageError(f"column map names unknown bar column(s) {unknown}",
                             hint=f"Map these bar columns: {', '.join(TARGETS)}.")
        exact = {h: i for i, h in reversed(list(enumerate(header)))}
        for target, source in column_map.items():
            i = exact.get(source, lower.get(source.strip().lower()))
            if i is None:
                raise FileProblem("missing-column", f"column {source!r} (mapped to {target}) is not in the header",
                                  column=source, value=",".join(header)[:200], hint=f"The header has {header}.")
            out[target] = i
    for target, names in _ALIASES.items():
        if target not in out:
            i = next((lower[n] for n in names if n in lower), None)
            if i is not None and i not in out.values():
                out[target] = i
    return out


def parse(path: Path, rows: pl.DataFrame | None, *, tz: str | None = None, column_map: dict[str, str] | None = None,
          zones: ZoneMap | None = None) -> Parsed:
    """Parse a generic file; naive times are in `tz`, or, in a file with a pair column, each pair's in `zones`."""
    if path.suffix.lower() in (".parquet", ".pq"):
        header, f = _parquet_fields(path)
        header_line = None
    else:
        assert rows is not None
        header_line, first = first_line(rows)
        sep = sniff_sep(first)
        header = [h.strip().strip('"').strip() for h in first.split(sep)]
        rows = rows.slice(1)
        if rows.height == 0:
            raise FileProblem("empty-file", "the file has a header and no rows", line=header_line, value=first)
        f = split_fields(rows, sep, len(header))
    pos = resolve(header, column_map)
    complete = {k: all(c in pos for c in cols) for k, cols in PRICE_SETS.items()}
    missing = ["ts"] if "ts" not in pos else []
    if not (complete["mid"] or complete["bid"] or complete["ask"]):
        missing += [c for c in PRICE_COLUMNS if c not in pos]
    if missing:
        raise FileProblem("missing-column", f"no column for {', '.join(missing)}", line=header_line,
                          value=",".join(header)[:200],
                          hint="Name the columns ts,open,high,low,close[,volume] or pass a column map (e.g. {\"ts\": \"Time\"}).")
    partial = [k for k, cols in PRICE_SETS.items() if not complete[k] and any(c in pos for c in cols)]
    if partial:
        k = partial[0]
        raise FileProblem("missing-column", f"{k} prices need all of {', '.join(PRICE_SETS[k])}; some are missing",
                          line=header_line, value=",".join(header)[:200])
    count = len(header)
    field = {t: f"_f{i}" for t, i in pos.items()}
    prices = {c: field[c] for k in ("mid", "bid", "ask") if complete[k] for c in PRICE_SETS[k]}
    if "volume" in field:
        prices["volume"] = field["volume"]
    parts = pl.col(field["ts"]).str.extract_groups(_TS)
    f = f.with_columns(parts.alias("_p"), pl.col(field["ts"]).alias("_tstext")).with_columns(
        pl.coalesce(
            pl.col("_p").struct.field("1").str.replace("T", " ").str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False),
            pl.col("_p").struct.field("1").str.replace("T", " ").str.to_datetime("%Y-%m-%d %H:%M", strict=False),
        ).alias("_naive"),
        _offset_minutes(pl.col("_p").struct.field("2")).alias("_offset"),
    )
    naive = pl.col("_naive").is_not_null() & pl.col("_offset").is_null()
    by_pair = "pair" in field and zones is not None and bool(zones.pairs)  # rows name their pair: zones per row
    if by_pair:
        f = f.with_columns(normalize_pair(pl.col(field["pair"]).fill_null("")).alias("pair"))
    declared = tz is not None or by_pair
    n_naive = f.select(naive.sum()).item()
    if not declared and n_naive and n_naive == f.select(pl.col("_naive").is_not_null().sum()).item():
        bad = f.filter(naive).row(0, named=True)
        raise naive_without_zone(path, "these", bad[LINE], bad["_tstext"])
    f = (localize_by_pair(f, "_naive", "pair", zones) if by_pair else localize(f, "_naive", tz or "UTC")).with_columns(
        pl.when(pl.col("_offset").is_not_null())
        .then((pl.col("_naive") - pl.duration(minutes=pl.col("_offset"))).dt.replace_time_zone("UTC").cast(TS_DTYPE))
        .otherwise(pl.col("ts")).alias("ts"),
        (pl.col("_ambiguous") & pl.col("_offset").is_null()).alias("_ambiguous"),
        (pl.col("_nonexistent") & pl.col("_offset").is_null()).alias("_nonexistent"),
    )
    checks = [
        ("unparseable", None, pl.col("_n") != count, pl.col(RAW)),
        ("bad-timestamp", "ts", pl.col("_naive").is_null(), pl.col(field["ts"]).fill_null("")),
    ]
    if not declared:
        checks.append(("naive-timestamp", "ts", naive, pl.col("_tstext")))
    elif by_pair and tz is None:  # rows of pairs without a zone of their own, and no default
        checks.append(("naive-timestamp", "ts", naive & ~pl.col("pair").is_in(list(zones.pairs)), pl.col("_tstext")))
    f = with_parse_errors(f, [*checks, *tz_checks(), *number_checks(prices)])
    f = f.with_columns(num(src).alias(canon) for canon, src in prices.items())
    f, side, keep, price_sets = price_sides(f, pos)
    if "volume" not in prices:
        f = f.with_columns(pl.lit(0.0).alias("volume"))
    cols = [LINE, RAW, "ts", *PRICE_COLUMNS, "volume", *keep]
    if "pair" in field:
        f = f.with_columns(normalize_pair(pl.col(field["pair"]).fill_null("")).alias("pair"))
        cols.append("pair")
    frame = f.select(*cols, RULE, COL, VAL)
    zone = (zones.describe() if by_pair else tz) if n_naive else None
    return Parsed(file=str(path), fmt=NAME, side=side, frame=frame, price_sets=price_sets, has_volume="volume" in prices,
                  zone=zone)


def _offset_minutes(suffix: pl.Expr) -> pl.Expr:
    s = suffix.str.replace(":", "")
    sign = pl.when(s.str.slice(0, 1) == "-").then(-1).otherwise(1)
    hm = sign * (s.str.slice(1, 2).cast(pl.Int64, strict=False) * 60 + s.str.slice(3, 2).cast(pl.Int64, strict=False))
    return pl.when(suffix.is_in(["Z", "UTC"])).then(0).otherwise(hm)


def _parquet_fields(path: Path) -> tuple[list[str], pl.DataFrame]:
    """A Parquet file as text fields, so it goes through the same parsing and rules as CSV."""
    try:
        table = pl.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure means "not a readable Parquet file"
        raise FileProblem("not-parquet", f"the file is not readable Parquet ({type(exc).__name__}: {str(exc)[:200]})",
                          hint="Is it the wrong format?") from None
    if table.height == 0:
        raise FileProblem("empty-file", "the Parquet file has no rows")
    texts = []
    for i, (name, dtype) in enumerate(table.schema.items()):
        col = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            col = (col.dt.convert_time_zone("UTC").dt.to_string("%Y-%m-%d %H:%M:%S%.f") + pl.lit("Z")) \
                if dtype.time_zone else col.dt.to_string("%Y-%m-%d %H:%M:%S%.f")
        texts.append(col.cast(pl.String).alias(f"_f{i}"))
    f = table.select(texts).with_row_index(LINE, offset=1).with_columns(pl.col(LINE).cast(pl.Int64))
    f = f.with_columns(
        pl.concat_str([pl.col(f"_f{i}").fill_null("") for i in range(table.width)], separator=",").alias(RAW),
        pl.lit(table.width).alias("_n"),
    )
    return list(table.columns), f
