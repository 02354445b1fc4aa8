"""Live bars get ingest's row rules (bqx/bars/rules.py) plus the order rules against the cached state.

A rejected bar becomes one record (pair, ts, rule, column, value, detail) and never reaches the
cache. Rows are judged in arrival order: a bar at or before its pair's last accepted bar is a
duplicate (identical or conflicting) or out of order; a bar at or before a minute already computed
without it is `late-bar`.
"""

from __future__ import annotations

from typing import Any, Mapping

import polars as pl

from bqx.bars.readers._common import COL, RULE, VAL
from bqx.bars.rules import RULES, _chain, row_checks
from bqx.bar_schema import ASK_COLUMNS, BAR_COLUMNS, BID_COLUMNS, PRICE_COLUMNS, REQUIRED_COLUMNS, conform
from bqx.errors import UsageError

LIVE_RULES: dict[str, str] = {
    "late-bar": "the minute was already computed without this pair's bar (it came after the wait)",
    "not-followed": "the pair is not one of this live session's pairs",
}
REJECT_SCHEMA: dict[str, pl.DataType] = {
    "pair": pl.String, "ts": pl.String, "rule": pl.String, "column": pl.String, "value": pl.String,
    "detail": pl.String, "line": pl.Int64, "file": pl.String,
}


def describe(rule: str) -> str:
    return RULES.get(rule) or LIVE_RULES.get(rule, rule)


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECT_SCHEMA)


def as_frame(bars: Any) -> pl.DataFrame:
    """A polars frame from a polars or pandas frame, a list of dicts or one dict."""
    if isinstance(bars, pl.DataFrame):
        return bars
    if isinstance(bars, Mapping):
        bars = [bars]
    if isinstance(bars, list):
        return pl.DataFrame(bars, infer_schema_length=None) if bars else pl.DataFrame()
    if hasattr(bars, "to_dict"):
        return pl.from_pandas(bars)
    raise UsageError(f"live.update takes a polars or pandas frame or a list of dicts, not {type(bars).__name__}")


def row_rejects(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(canonical good rows with `pair` and the line columns kept, rejected records) under ingest's row rules."""
    if frame.height == 0:
        return frame, empty_rejects()
    missing = [c for c in ("pair", *REQUIRED_COLUMNS) if c not in frame.columns]
    if missing:
        raise UsageError(f"live bars lack the columns {missing} (they have {frame.columns})",
                         hint="Give pair, ts, open, high, low, close (volume, bid_*/ask_* optional).")
    extra = [c for c in ("_line", "_file") if c in frame.columns]
    ts_type = frame.schema["ts"]
    if not isinstance(ts_type, pl.Datetime):
        raise UsageError(f"live bars: ts must be a datetime column, got {ts_type}")
    if ts_type.time_zone is None:
        bad = frame.select(pl.col("pair").cast(pl.String), pl.col("ts").cast(pl.String), *extra)
        return frame.clear(), _records(bad.with_columns(pl.lit("naive-timestamp").alias(RULE), pl.lit("ts").alias(COL),
                                                        pl.col("ts").alias(VAL)))
    canon = conform(frame, with_pair=True).hstack(frame.select(extra))
    sets = [PRICE_COLUMNS]
    for side in (BID_COLUMNS, ASK_COLUMNS):
        if canon.select(pl.col(side[-1]).is_not_null().any()).item():
            sets.append(side)
    rule, col, val = _chain(row_checks(tuple(sets), pair_from_rows=True))
    tagged = canon.with_columns(pl.lit(None, pl.String).alias(RULE), pl.lit(None, pl.String).alias(COL),
                                pl.lit(None, pl.String).alias(VAL))
    tagged = tagged.with_columns(rule.alias(RULE), col.alias(COL), val.alias(VAL))
    bad = tagged.filter(pl.col(RULE).is_not_null())
    good = tagged.filter(pl.col(RULE).is_null()).drop(RULE, COL, VAL)
    return good, _records(bad.with_columns(pl.col("ts").dt.to_string("%Y-%m-%dT%H:%M:%SZ")))


def _records(bad: pl.DataFrame) -> pl.DataFrame:
    if bad.height == 0:
        return empty_rejects()
    line = pl.col("_line").cast(pl.Int64) if "_line" in bad.columns else pl.lit(None, pl.Int64)
    file = pl.col("_file").cast(pl.String) if "_file" in bad.columns else pl.lit(None, pl.String)
    return bad.select(
        pl.col("pair").cast(pl.String), pl.col("ts").cast(pl.String), pl.col(RULE).cast(pl.String).alias("rule"),
        pl.col(COL).cast(pl.String).alias("column"), pl.col(VAL).cast(pl.String).alias("value"),
        pl.col(RULE).replace_strict({**RULES, **LIVE_RULES}, default=pl.col(RULE), return_dtype=pl.String).alias("detail"),
        line.alias("line"), file.alias("file"))


def record(pair: str, ts: str, rule: str, detail: str = "", *, column: str = "ts", value: str | None = None,
           line: int | None = None, file: str | None = None) -> dict[str, Any]:
    text = describe(rule) + (f" ({detail})" if detail else "")
    return {"pair": pair, "ts": ts, "rule": rule, "column": column, "value": value if value is not None else ts,
            "detail": text, "line": line, "file": file}


def bar_values(row: Mapping[str, Any]) -> tuple:
    return tuple(row.get(c) for c in BAR_COLUMNS if c != "ts")
