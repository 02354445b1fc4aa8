"""HistData ASCII M1: `YYYYMMDD HHMMSS;open;high;low;close;volume`, no header, bid prices, EST without DST (UTC-5)."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from bqx.bars.readers._common import (
    COL, LINE, RAW, RULE, VAL, FileProblem, Parsed, first_line, num, number_checks, split_fields, with_parse_errors,
)
from bqx.bar_schema import TS_DTYPE

NAME = "histdata"
_SIGNATURE = re.compile(r"^\s*\d{8} \d{6};")
_EXAMPLE = "20240701 000000;1.07123;1.07130;1.07100;1.07120;0"
#: HistData documents its times as Eastern Standard Time without daylight saving: fixed UTC-5.
UTC_OFFSET_HOURS = -5


def sniff(first: str) -> bool:
    return bool(_SIGNATURE.match(first))


def parse(path: Path, rows: pl.DataFrame, *, tz: str | None = None, column_map: dict[str, str] | None = None) -> Parsed:
    """Parse HistData rows; the zone is fixed by the format, so `tz` is not used (a note says so)."""
    line, first = first_line(rows)
    if not sniff(first):
        raise FileProblem("wrong-format", f"not a HistData ASCII M1 file: lines should look like {_EXAMPLE!r}",
                          line=line, value=first, hint="Check --format, or leave it out to detect the format.")
    f = split_fields(rows, ";", 6).with_columns(
        pl.col("_f0").str.to_datetime("%Y%m%d %H%M%S", strict=False).alias("_naive"),
        pl.col("_f0").alias("_tstext"),
    )
    names = {"open": "_f1", "high": "_f2", "low": "_f3", "close": "_f4", "volume": "_f5"}
    f = with_parse_errors(f, [
        ("unparseable", None, pl.col("_n") != 6, pl.col(RAW)),
        ("bad-timestamp", "ts", pl.col("_naive").is_null(), pl.col("_f0").fill_null("")),
        *number_checks(names),
    ])
    f = f.with_columns(
        (pl.col("_naive") - pl.duration(hours=UTC_OFFSET_HOURS)).dt.replace_time_zone("UTC").cast(TS_DTYPE).alias("ts"),
        *[num(src).alias(canon) for canon, src in names.items()],
    )
    notes = [f"{path.name}: HistData times are EST without DST (UTC-5) by definition; --tz {tz} not used"] if tz else []
    frame = f.select(LINE, RAW, "ts", "open", "high", "low", "close", "volume", RULE, COL, VAL)
    return Parsed(file=str(path), fmt=NAME, side="bid", frame=frame, has_volume=False, notes=notes)
