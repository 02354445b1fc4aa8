"""HistData ASCII M1: `YYYYMMDD HHMMSS;open;high;low;close;volume`, no header, bid prices, EST without DST (UTC-5).

The format fixes the zone (est-fixed); only a zone declared for the file's own pair (--tz PAIR=ZONE)
overrides it, so a bare --tz meant for other files of a directory leaves HistData files alone.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from bqx.bars.readers._common import (
    COL, LINE, RAW, RULE, VAL, FileProblem, Parsed, first_line, localize, num, number_checks, split_fields, tz_checks,
    with_parse_errors,
)
from bqx.bars.timezones import EST_FIXED

NAME = "histdata"
_SIGNATURE = re.compile(r"^\s*\d{8} \d{6};")
_EXAMPLE = "20240701 000000;1.07123;1.07130;1.07100;1.07120;0"
#: HistData documents its times as Eastern Standard Time without daylight saving: fixed UTC-5.
ZONE = EST_FIXED


def sniff(first: str) -> bool:
    return bool(_SIGNATURE.match(first))


def parse(path: Path, rows: pl.DataFrame, *, tz: str | None = None, column_map: dict[str, str] | None = None) -> Parsed:
    """Parse HistData rows in EST without DST, or in `tz` when the caller declared one for this file's pair."""
    line, first = first_line(rows)
    if not sniff(first):
        raise FileProblem("wrong-format", f"not a HistData ASCII M1 file: lines should look like {_EXAMPLE!r}",
                          line=line, value=first, hint="Check --format, or leave it out to detect the format.")
    f = split_fields(rows, ";", 6).with_columns(
        pl.col("_f0").str.to_datetime("%Y%m%d %H%M%S", strict=False).alias("_naive"),
        pl.col("_f0").alias("_tstext"),
    )
    names = {"open": "_f1", "high": "_f2", "low": "_f3", "close": "_f4", "volume": "_f5"}
    zone = tz or ZONE
    f = localize(f, "_naive", zone)
    f = with_parse_errors(f, [
        ("unparseable", None, pl.col("_n") != 6, pl.col(RAW)),
        ("bad-timestamp", "ts", pl.col("_naive").is_null(), pl.col("_f0").fill_null("")),
        *tz_checks(),
        *number_checks(names),
    ])
    f = f.with_columns(num(src).alias(canon) for canon, src in names.items())
    frame = f.select(LINE, RAW, "ts", "open", "high", "low", "close", "volume", RULE, COL, VAL)
    return Parsed(file=str(path), fmt=NAME, side="bid", frame=frame, has_volume=False, zone=zone)
