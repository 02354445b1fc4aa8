"""MetaTrader history export: `date,time,open,high,low,close,volume` (`2024.07.01,00:00,1.07123,...`).

With or without a header (`<DATE>\t<TIME>\t<OPEN>...` in MT5 exports); comma, semicolon or tab
separated; extra columns (tick volume, real volume, spread) allowed. Prices are bid prices (MetaTrader
charts are bid charts). Times are in the broker's zone, which the file does not say: --tz is required
(most brokers keep New York close time: --tz ny-close).
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from bqx.bars.readers._common import (
    COL, LINE, RAW, RULE, VAL, FileProblem, Parsed, first_line, localize, naive_without_zone, num,
    number_checks, sniff_sep, split_fields, tz_checks, with_parse_errors,
)

NAME = "metatrader"
_DATA = re.compile(r"^\s*\d{4}\.\d{2}\.\d{2}[ ,;\t]\d{1,2}:\d{2}")
_EXAMPLE = "2024.07.01,00:00,1.07123,1.07130,1.07100,1.07120,57"
_VOLUME_NAMES = ("tickvol", "tick_volume", "volume", "vol")


def _header_names(line: str, sep: str) -> list[str]:
    return [h.strip().strip('"').strip().strip("<>").lower() for h in line.split(sep)]


def sniff(first: str, second: str | None = None) -> bool:
    if _DATA.match(first):
        return True
    names = _header_names(first, sniff_sep(first))
    return names[:2] == ["date", "time"] and second is not None and bool(_DATA.match(second))


def parse(path: Path, rows: pl.DataFrame, *, tz: str | None = None, column_map: dict[str, str] | None = None) -> Parsed:
    line, first = first_line(rows)
    sep = sniff_sep(first)
    if _DATA.match(first):
        n = len(first.split(sep))
        combined = " " in first.split(sep)[0].strip()
        base = ["datetime"] if combined else ["date", "time"]
        names = base + ["open", "high", "low", "close", "volume"] + [f"extra{i}" for i in range(max(0, n - len(base) - 5))]
        names = names[: max(n, len(base) + 4)]
    else:
        names = _header_names(first, sep)
        if names[:2] != ["date", "time"]:
            raise FileProblem("wrong-format", f"not a MetaTrader export: expected lines like {_EXAMPLE!r}",
                              line=line, value=first, hint="Check --format, or leave it out to detect the format.")
        missing = [c for c in ("open", "high", "low", "close") if c not in names]
        if missing:
            raise FileProblem("missing-column", f"the header lacks column(s) {', '.join(missing)}", line=line, value=first)
        rows = rows.slice(1)
        if rows.height == 0:
            raise FileProblem("empty-file", "the file has a header and no rows", line=line, value=first)
    if tz is None:
        raise naive_without_zone(path, "MetaTrader", line, first)
    count = len(names)
    pos = {n: i for i, n in reversed(list(enumerate(names)))}
    fields = {c: f"_f{pos[c]}" for c in ("open", "high", "low", "close")}
    vol = next((v for v in _VOLUME_NAMES if v in pos), None)
    if vol:
        fields["volume"] = f"_f{pos[vol]}"
    f = split_fields(rows, sep, count)
    text = pl.col("_f0") if "datetime" in pos else pl.concat_str([pl.col("_f0"), pl.col("_f1")], separator=" ")
    f = f.with_columns(text.str.replace_all(r"\s+", " ").alias("_tstext")).with_columns(
        pl.coalesce(
            pl.col("_tstext").str.to_datetime("%Y.%m.%d %H:%M:%S", strict=False),
            pl.col("_tstext").str.to_datetime("%Y.%m.%d %H:%M", strict=False),
        ).alias("_naive")
    )
    f = localize(f, "_naive", tz)
    f = with_parse_errors(f, [
        ("unparseable", None, pl.col("_n") != count, pl.col(RAW)),
        ("bad-timestamp", "ts", pl.col("_naive").is_null(), pl.col("_tstext").fill_null("")),
        *tz_checks(),
        *number_checks(fields),
    ])
    f = f.with_columns(num(src).alias(canon) for canon, src in fields.items())
    if not vol:
        f = f.with_columns(pl.lit(0.0).alias("volume"))
    frame = f.select(LINE, RAW, "ts", "open", "high", "low", "close", "volume", RULE, COL, VAL)
    return Parsed(file=str(path), fmt=NAME, side="bid", frame=frame, has_volume=vol is not None, zone=tz)
