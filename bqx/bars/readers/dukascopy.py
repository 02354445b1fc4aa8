"""Dukascopy-style CSV: `Gmt time,Open,High,Low,Close,Volume` with `dd.mm.YYYY HH:MM:SS.fff` times.

`Gmt time` is UTC; `Local time` values may carry an offset (`... GMT+0200`), otherwise --tz is needed,
as for a plain `Time` header. One file holds one side: BID or ASK in the file name, none = mid.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from bqx.bars.readers._common import (
    COL, LINE, RAW, RULE, VAL, FileProblem, Parsed, first_line, localize, naive_without_zone, num,
    number_checks, side_from_name, sniff_sep, split_fields, tz_checks, with_parse_errors,
)
from bqx.bar_schema import TS_DTYPE

NAME = "dukascopy"
_DATA = re.compile(r"^\s*\"?\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}")
_TIME_HEADERS = ("gmt time", "local time", "time", "utc time", "date", "datetime")
_TS = r"^(\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:(?:GMT|UTC)\s*([+-])(\d{2}):?(\d{2}))?$"
_EXAMPLE = "Gmt time,Open,High,Low,Close,Volume / 01.07.2024 00:00:00.000,1.07123,1.07130,1.07100,1.07120,57.3"


def _header_names(line: str, sep: str) -> list[str]:
    return [h.strip().strip('"').strip().lower() for h in line.split(sep)]


def sniff(first: str, second: str | None = None) -> bool:
    if _DATA.match(first):
        return True
    sep = sniff_sep(first)
    names = _header_names(first, sep)
    return (names[0] in _TIME_HEADERS and {"open", "high", "low", "close"} <= set(names)
            and second is not None and bool(_DATA.match(second)))


def parse(path: Path, rows: pl.DataFrame, *, tz: str | None = None, column_map: dict[str, str] | None = None) -> Parsed:
    line, first = first_line(rows)
    sep = sniff_sep(first)
    if _DATA.match(first):
        names, header = ["time", "open", "high", "low", "close", "volume"][: len(first.split(sep))], None
    else:
        names, header = _header_names(first, sep), first
        if names[0] not in _TIME_HEADERS:
            raise FileProblem("wrong-format", f"not a Dukascopy-style CSV: expected {_EXAMPLE!r}",
                              line=line, value=first, hint="Check --format, or leave it out to detect the format.")
        rows = rows.slice(1)
        if rows.height == 0:
            raise FileProblem("empty-file", "the file has a header and no rows", line=line, value=first)
    missing = [c for c in ("open", "high", "low", "close") if c not in names]
    if missing:
        raise FileProblem("missing-column", f"the header lacks column(s) {', '.join(missing)}", line=line,
                          value=first, hint=f"A Dukascopy-style file looks like {_EXAMPLE!r}.")
    count = len(names)
    pos = {n: i for i, n in reversed(list(enumerate(names)))}
    fields = {c: f"_f{pos[c]}" for c in ("open", "high", "low", "close", "volume") if c in pos}
    f = split_fields(rows, sep, count)
    parts = pl.col("_f0").str.extract_groups(_TS)
    f = f.with_columns(parts.alias("_p"), pl.col("_f0").alias("_tstext")).with_columns(
        pl.coalesce(
            pl.col("_p").struct.field("1").str.to_datetime("%d.%m.%Y %H:%M:%S%.f", strict=False),
            pl.col("_p").struct.field("1").str.to_datetime("%d.%m.%Y %H:%M", strict=False),
        ).alias("_naive"),
        pl.when(pl.col("_p").struct.field("2") == "-").then(-1).otherwise(1).mul(
            pl.col("_p").struct.field("3").cast(pl.Int64, strict=False) * 60 + pl.col("_p").struct.field("4").cast(pl.Int64, strict=False)
        ).alias("_offset"),
    )
    is_gmt = names[0] in ("gmt time", "utc time")
    needs_zone = pl.col("_naive").is_not_null() & pl.col("_offset").is_null()
    if is_gmt:
        f = f.with_columns(pl.col("_offset").fill_null(0))
    elif tz is None and f.select(needs_zone.any()).item():
        bad = f.filter(needs_zone).row(0, named=True)
        raise naive_without_zone(path, f"Dukascopy-style ({names[0]!r} column)", bad[LINE], bad["_tstext"])
    zone = tz or "UTC"
    f = localize(f, "_naive", zone).with_columns(
        pl.when(pl.col("_offset").is_not_null())
        .then((pl.col("_naive") - pl.duration(minutes=pl.col("_offset"))).dt.replace_time_zone("UTC").cast(TS_DTYPE))
        .otherwise(pl.col("ts")).alias("ts"),
        (pl.col("_ambiguous") & pl.col("_offset").is_null()).alias("_ambiguous"),
        (pl.col("_nonexistent") & pl.col("_offset").is_null()).alias("_nonexistent"),
    )
    f = with_parse_errors(f, [
        ("unparseable", None, pl.col("_n") != count, pl.col(RAW)),
        ("bad-timestamp", "ts", pl.col("_naive").is_null(), pl.col("_f0").fill_null("")),
        *tz_checks(),
        *number_checks(fields),
    ])
    f = f.with_columns(num(src).alias(canon) for canon, src in fields.items())
    has_volume = "volume" in fields
    if not has_volume:
        f = f.with_columns(pl.lit(0.0).alias("volume"))
    frame = f.select(LINE, RAW, "ts", "open", "high", "low", "close", "volume", RULE, COL, VAL)
    side = side_from_name(path) or "mid"
    used = None if is_gmt or not f.select(needs_zone.any()).item() else zone
    return Parsed(file=str(path), fmt=NAME, side=side, frame=frame, has_volume=has_volume, zone=used)
