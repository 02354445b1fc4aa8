"""Shared reader machinery: text loading with physical line numbers, vectorised field parsing, time zones, pair names."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from bqx.bars import timezones
from bqx.bar_schema import ASK_COLUMNS, BID_COLUMNS, PRICE_COLUMNS
from bqx.bars.rules import COL, LINE, RAW, RULE, VAL  # noqa: F401 - the internal columns every reader writes
from bqx.universe import CURRENCIES, PAIR_NAMES


class FileProblem(Exception):
    """A whole file cannot be read as bars: strict raises it as InputError, repair quarantines the file.

    `fatal` problems (missing time zone, bad arguments) are errors under every policy.
    """

    def __init__(self, rule: str, message: str, *, line: int | None = None, column: str | None = None,
                 value: str | None = None, hint: str | None = None, fatal: bool = False):
        super().__init__(message)
        self.rule, self.message, self.line, self.column, self.value = rule, message, line, column, value
        self.hint, self.fatal = hint, fatal


@dataclass
class Parsed:
    """One file parsed into rows: `frame` has _line, _raw, ts (UTC), the price columns, volume, maybe pair,
    and _rule/_col/_val naming the first parse failure of a row (NULL when the row parsed)."""

    file: str
    fmt: str
    side: str  # "mid", "bid" or "ask": what open..close hold
    frame: pl.DataFrame
    pair: str | None = None  # from the file name or the caller; None when rows carry a pair column
    price_sets: tuple[tuple[str, ...], ...] = (PRICE_COLUMNS,)
    has_volume: bool = True
    notes: list[str] = field(default_factory=list)
    zone: str | None = None  # the zone naive times were read in; None when the times carried their own zone


# --------------------------------------------------------------------------------------------- text


def load_lines(path: Path) -> pl.DataFrame:
    """Non-blank lines of a text file as (_line, _raw) with 1-based physical line numbers."""
    data = path.read_bytes()
    if not data.strip():
        raise FileProblem("empty-file", "the file is empty", hint="Remove it or give a file with bars.")
    if b"\x00" in data:
        at = data.index(b"\x00")
        raise FileProblem("not-text", f"the file is binary, not CSV text (NUL byte at offset {at})",
                          hint="Is it the wrong format? Give CSV text or Parquet.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileProblem("not-text", f"the file is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start})",
                          hint="Is it the wrong format? Give CSV text in UTF-8 or ASCII.") from None
    lines = [s.rstrip("\r") for s in text.split("\n")]
    frame = pl.DataFrame({LINE: pl.int_range(1, len(lines) + 1, eager=True, dtype=pl.Int64), RAW: lines})
    frame = frame.filter(pl.col(RAW).str.strip_chars() != "")
    if frame.height == 0:
        raise FileProblem("empty-file", "the file has only blank lines", hint="Remove it or give a file with bars.")
    return frame


def first_line(frame: pl.DataFrame) -> tuple[int, str]:
    return int(frame[LINE][0]), str(frame[RAW][0])


def sniff_sep(line: str, candidates: str = ",;\t") -> str:
    counts = {c: line.count(c) for c in candidates}
    best = max(counts, key=lambda c: counts[c])
    return best if counts[best] else ","


def split_fields(frame: pl.DataFrame, sep: str, count: int) -> pl.DataFrame:
    """Add _n (number of fields) and _f0.._f{count-1} (stripped text fields, NULL when absent)."""
    parts = pl.col(RAW).str.split(sep)
    return frame.with_columns(
        parts.list.len().alias("_n"),
        *[parts.list.get(i, null_on_oob=True).str.strip_chars().str.strip_chars('"').str.strip_chars().alias(f"_f{i}")
          for i in range(count)],
    )


def num(name: str) -> pl.Expr:
    """A text field as Float64 (NULL when unparseable; nan/inf parse and are caught by the price rules)."""
    return pl.col(name).cast(pl.Float64, strict=False)


def with_parse_errors(frame: pl.DataFrame, checks: list[tuple[str, str | None, pl.Expr, pl.Expr]]) -> pl.DataFrame:
    """Set _rule/_col/_val from the first failing (rule, column, bad, value) check of each row, in order."""
    if not checks:
        return frame.with_columns(pl.lit(None, pl.String).alias(c) for c in (RULE, COL, VAL))
    rule = col = val = None
    for r, c, bad, v in checks:
        if rule is None:
            rule, col, val = pl.when(bad).then(pl.lit(r)), pl.when(bad).then(pl.lit(c, pl.String)), pl.when(bad).then(v.cast(pl.String))
        else:
            rule, col, val = rule.when(bad).then(pl.lit(r)), col.when(bad).then(pl.lit(c, pl.String)), val.when(bad).then(v.cast(pl.String))
    return frame.with_columns(
        rule.otherwise(None).alias(RULE), col.otherwise(None).alias(COL), val.otherwise(None).alias(VAL)
    )


def number_checks(names: dict[str, str]) -> list[tuple[str, str | None, pl.Expr, pl.Expr]]:
    """bad-number checks: canonical column -> text field name."""
    return [("bad-number", canon, num(f).is_null(), pl.col(f).fill_null("")) for canon, f in names.items()]


# --------------------------------------------------------------------------------------------- time

def check_tz(tz: str | None) -> str | None:
    """Validate a declared zone (IANA name, UTC, a fixed offset like +02:00 / UTC-5, ny-close, est-fixed); None passes."""
    return timezones.check_zone(tz)


fixed_offset_minutes = timezones.fixed_offset_minutes
localize = timezones.localize


def tz_checks() -> list[tuple[str, str | None, pl.Expr, pl.Expr]]:
    return [
        ("nonexistent-local-time", "ts", pl.col("_nonexistent"), pl.col("_tstext")),
        ("ambiguous-local-time", "ts", pl.col("_ambiguous"), pl.col("_tstext")),
    ]


def naive_without_zone(path: Path, fmt: str, line: int, value: str) -> FileProblem:
    return FileProblem(
        "naive-timestamp",
        f"{fmt} timestamps carry no time zone and none was declared",
        line=line, column="ts", value=value, fatal=True,
        hint="Declare the zone of the file's times with --tz (e.g. --tz UTC, --tz Europe/London, --tz +02:00, "
             "--tz ny-close for MetaTrader brokers), or per pair with --tz PAIR=ZONE.",
    )


# --------------------------------------------------------------------------------------------- names

_TOKEN = re.compile(r"[A-Za-z]+")


def pair_from_name(path: Path) -> str | None:
    """The pair a file name announces (EURUSD.csv, DAT_ASCII_EURUSD_M1_2024.csv, EUR_USD.csv...), else None."""
    tokens = [t.upper() for t in _TOKEN.findall(path.stem)]
    for t in tokens:
        if t in PAIR_NAMES:
            return t
    for a, b in zip(tokens, tokens[1:]):
        if a + b in PAIR_NAMES:
            return a + b
    return None


def pair_like_tokens(path: Path) -> list[str]:
    """Six-letter tokens of a file name made of two currency-looking codes (for a clear unknown-pair message)."""
    return [t.upper() for t in _TOKEN.findall(path.stem) if len(t) == 6 and (t[:3].upper() in CURRENCIES or t[3:].upper() in CURRENCIES)]


def side_from_name(path: Path) -> str | None:
    tokens = {t.upper() for t in _TOKEN.findall(path.stem)}
    if "BID" in tokens and "ASK" not in tokens:
        return "bid"
    if "ASK" in tokens and "BID" not in tokens:
        return "ask"
    return None


def normalize_pair(expr: pl.Expr) -> pl.Expr:
    return expr.str.strip_chars().str.to_uppercase().str.replace_all(r"[/_\-\s]", "")


__all__ = [
    "ASK_COLUMNS", "BID_COLUMNS", "PRICE_COLUMNS", "PRICE_SETS", "price_sides", "FileProblem", "Parsed", "load_lines", "split_fields", "num",
    "with_parse_errors", "number_checks", "check_tz", "localize", "tz_checks", "pair_from_name", "side_from_name",
]


PRICE_SETS = {"mid": PRICE_COLUMNS, "bid": BID_COLUMNS, "ask": ASK_COLUMNS}


def price_sides(frame: pl.DataFrame, present) -> tuple[pl.DataFrame, str, list[str], tuple[tuple[str, ...], ...]]:
    """The mid prices of parsed bars from the columns `present`: as given, else (bid + ask) / 2, else
    the one side there is. Returns (frame with open/high/low/close, the side used, the bid/ask
    columns kept beside the mid, the price sets the row rules check)."""
    complete = {k: all(c in present for c in cs) for k, cs in PRICE_SETS.items()}
    side = "mid"
    if not complete["mid"]:
        if complete["bid"] and complete["ask"]:
            frame = frame.with_columns(((pl.col(b) + pl.col(a)) / 2).alias(m)
                                       for m, b, a in zip(PRICE_COLUMNS, BID_COLUMNS, ASK_COLUMNS))
        else:
            side = "bid" if complete["bid"] else "ask"
            frame = frame.with_columns(pl.col(s).alias(m) for m, s in zip(PRICE_COLUMNS, PRICE_SETS[side]))
    kept = [k for k in ("bid", "ask") if complete[k] and side != k]
    keep = [c for k in kept for c in PRICE_SETS[k]]
    return frame, side, keep, (PRICE_COLUMNS, *[PRICE_SETS[k] for k in kept])
