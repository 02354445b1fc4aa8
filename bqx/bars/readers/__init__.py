"""Bar readers: HistData ASCII M1, Dukascopy-style CSV, MetaTrader export, generic CSV/Parquet.

`read_source` reads a file or a directory of per-pair files, detects formats, validates every row
(bqx.bars.rules) under the chosen policy and returns canonical bars with each pair's PairSource and
the quarantine records. `read_bars` is the Python API's short form.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from bqx.bars import rules
from bqx.bars.readers import dukascopy, generic, histdata, metatrader
from bqx.bars.readers._common import (
    LINE, RAW, FileProblem, Parsed, load_lines, pair_from_name, pair_like_tokens,
)
from bqx.bars.timezones import ZoneMap
from bqx.bar_schema import ASK_COLUMNS, BAR_COLUMNS, BID_COLUMNS, PRICE_COLUMNS, PairSource, conform
from bqx.errors import InputError, UsageError
from bqx.universe import PAIR_NAMES, UnknownPairError
from bqx.universe import pair as to_pair

FORMATS = {"histdata": histdata, "dukascopy": dukascopy, "metatrader": metatrader, "generic": generic}
DATA_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
_PARQUET = (".parquet", ".pq")


@dataclass
class ReadResult:
    """Bars read from a source, what each pair's source is, and every rejected row."""

    bars: pl.DataFrame  # pair + BAR_COLUMNS, sorted by pair and ts
    sources: dict[str, PairSource]
    quarantine: pl.DataFrame  # rules.QUARANTINE_SCHEMA
    rows_in: int = 0
    rows_skipped: int = 0  # rows of pairs not asked for (in files that hold several pairs)
    rows_merged: int = 0  # ask rows merged with their bid rows into one bar
    fixes: dict[str, int] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    rejected_files: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    skipped_files: list[str] = field(default_factory=list)  # files of pairs not asked for, not read
    notes: list[str] = field(default_factory=list)
    zones: dict[str, str | None] = field(default_factory=dict)  # pair -> zone its naive times were read in
    origin: pl.DataFrame | None = None  # pair, ts, file, line, raw of every bar (when asked for)

    @property
    def rows_out(self) -> int:
        return self.bars.height

    @property
    def rows_quarantined(self) -> int:
        """Quarantined rows (file-level records of unreadable files have no line and are not rows).

        rows_in = rows_out + rows_merged + rows_quarantined + rows_skipped.
        """
        return int((self.quarantine["scope"] == "row").sum())

    def counts(self) -> dict[str, int]:
        return dict(Counter(self.quarantine["rule"].to_list()).most_common())


Zones = ZoneMap | str | dict[str, str] | list[str] | None


def read_bars(path: str | Path, fmt: str | None = None, tz: Zones = None, column_map: dict[str, str] | None = None,
              pair: str | None = None, policy: str = "strict") -> pl.DataFrame:
    """Read bars from a file or directory into a canonical frame with a `pair` column.

    Under `repair`, rejected rows are left out and a warning gives their counts (use `read_source`
    for the quarantine records themselves).
    """
    result = read_source(path, fmt=fmt, tz=tz, column_map=column_map, pair=pair, policy=policy)
    if result.quarantine.height:
        counts = ", ".join(f"{n} {r}" for r, n in result.counts().items())
        warnings.warn(f"{path}: {result.quarantine.height} rows or files rejected ({counts})", stacklevel=2)
    return result.bars


def list_files(source: str | Path) -> tuple[list[Path], list[str]]:
    """The data files of a source (a file, or a directory searched recursively) and the files ignored."""
    root = Path(source)
    if not root.exists():
        raise UsageError(f"no such file or directory: {root}")
    if root.is_file():
        return [root], []
    files, ignored = [], []
    for p in sorted(root.rglob("*")):
        if not p.is_file() or any(part.startswith((".", "_")) for part in p.relative_to(root).parts):
            continue
        (files if p.suffix.lower() in DATA_SUFFIXES else ignored).append(p)
    if not files:
        raise InputError(f"no data files ({', '.join(DATA_SUFFIXES)}) in directory", file=str(root), rule="empty-file",
                         hint="Point at a CSV/Parquet file or a directory of per-pair files.")
    return files, [str(p) for p in ignored]


def detect_format(path: Path, rows: pl.DataFrame | None) -> str:
    """The format of a file from its suffix and first lines; a clear error when it cannot tell."""
    if path.suffix.lower() in _PARQUET or rows is None:
        return "generic"
    first = str(rows[RAW][0])
    second = str(rows[RAW][1]) if rows.height > 1 else None
    if histdata.sniff(first):
        return "histdata"
    if metatrader.sniff(first, second):
        return "metatrader"
    if dukascopy.sniff(first, second):
        return "dukascopy"
    if generic.sniff(first, second):
        return "generic"
    raise FileProblem("unknown-format", "cannot tell the file's format from its first line",
                      line=int(rows[LINE][0]), value=first,
                      hint="Pass --format histdata|dukascopy|metatrader|generic (generic needs a ts column and open/high/low/close).")


def read_file(path: Path, fmt: str | None = None, tz: Zones = None, column_map: dict[str, str] | None = None,
              pair: str | None = None) -> Parsed:
    """Parse one file (no validation beyond parsing); the frame gains a `pair` column.

    `tz` is a zone or a ZoneMap: the file is read in the zone of the pair its name announces (or `pair`).
    HistData files keep their format's zone (est-fixed) unless their own pair has a zone.
    """
    if fmt is not None and path.suffix.lower() in _PARQUET and fmt != "generic":
        raise FileProblem("wrong-format", f"a Parquet file cannot be {fmt}", hint="Use --format generic for Parquet.")
    zones = ZoneMap.of(tz)
    found = pair or pair_from_name(path)
    rows = None if path.suffix.lower() in _PARQUET else load_lines(path)
    name = fmt or detect_format(path, rows)
    notes = []
    if name == "histdata":
        zone = zones.pairs.get(found) if found else None
        if zone is None and zones.default is not None:
            notes.append(f"{path.name}: HistData times are EST without DST (est-fixed) by definition; --tz {zones.default} "
                         f"not used (give --tz {found or 'PAIR'}=ZONE to override)")
        parsed = histdata.parse(path, rows, tz=zone, column_map=column_map)  # type: ignore[arg-type]
    elif name == "generic":
        parsed = generic.parse(path, rows, tz=zones.for_pair(found), column_map=column_map, zones=zones)
    else:
        parsed = FORMATS[name].parse(path, rows, tz=zones.for_pair(found), column_map=column_map)
    parsed.notes += notes
    if "pair" in parsed.frame.columns:
        return parsed
    if found is None:
        like = pair_like_tokens(path)
        what = f"its name announces {like[0]}, which is not one of the 28 pairs" if like else "cannot tell the pair from the file name"
        raise FileProblem("unknown-pair", what, value=path.name,
                          hint="Name files like EURUSD.csv or DAT_ASCII_EURUSD_M1_2024.csv, add a pair column, or pass the pair.")
    parsed.pair = found
    parsed.frame = parsed.frame.with_columns(pl.lit(found).alias("pair"))
    return parsed


def _pairs_arg(pairs: list[str] | tuple[str, ...] | None) -> set[str] | None:
    if pairs is None:
        return None
    try:
        return {to_pair(p).name for p in pairs}
    except UnknownPairError as exc:
        raise UsageError(str(exc)) from None


def read_source(source: str | Path, fmt: str | None = None, tz: Zones = None, column_map: dict[str, str] | None = None,
                pairs: list[str] | tuple[str, ...] | None = None, pair: str | None = None, policy: str = "strict",
                keep_origin: bool = False) -> ReadResult:
    """Read and validate every data file of `source`; strict raises InputError at the first problem.

    `tz` is a zone, or per-pair zones (a ZoneMap, {PAIR: ZONE, "default": ZONE}, or ["ZONE", "PAIR=ZONE"]).
    With `pairs`, a file whose name announces another pair is not read at all.
    `keep_origin` also returns, per bar, the file, line and raw text it came from.
    """
    policy = rules.check_policy(policy)
    zones = ZoneMap.of(tz)
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint=f"Use one of {', '.join(FORMATS)}, or leave --format out to detect it.")
    if pair is not None:
        try:
            pair = to_pair(pair).name
        except UnknownPairError as exc:
            raise UsageError(str(exc)) from None
    wanted = _pairs_arg(pairs)
    files, ignored = list_files(source)
    result = ReadResult(bars=pl.DataFrame(), sources={}, quarantine=rules.empty_issues(), ignored_files=ignored)
    if ignored:
        result.notes.append(f"ignored {len(ignored)} non-data file(s): {', '.join(Path(p).name for p in ignored[:5])}")
    quarantine: list[pl.DataFrame] = []
    fixes: Counter[str] = Counter()
    groups: dict[str, dict[str, list[tuple[str, pl.DataFrame]]]] = {}
    volume: dict[str, bool] = {}
    if wanted is not None and pair is None:
        named = {p: pair_from_name(p) for p in files}
        result.skipped_files = [str(p) for p, n in named.items() if n is not None and n not in wanted]
        files = [p for p, n in named.items() if n is None or n in wanted]
    for path in files:
        try:
            parsed = read_file(path, fmt=fmt, tz=zones, column_map=column_map, pair=pair)
        except FileProblem as p:
            if policy == "strict" or p.fatal:
                raise InputError(p.message, file=str(path), line=p.line, column=p.column, value=p.value, rule=p.rule,
                                 hint=p.hint) from None
            quarantine.append(rules.file_issue(str(path), p.rule, p.message, line=p.line, column=p.column, value=p.value))
            result.rejected_files.append(str(path))
            continue
        result.notes += parsed.notes
        frame = parsed.frame
        result.rows_in += frame.height
        if wanted is not None:
            skip = pl.col("pair").is_in(PAIR_NAMES) & ~pl.col("pair").is_in(sorted(wanted))
            n_skip = frame.select(skip.sum()).item()
            result.rows_skipped += n_skip
            frame = frame.filter(~skip)
        result.files.append({"path": str(path), "format": parsed.fmt, "side": parsed.side, "pair": parsed.pair,
                             "rows": parsed.frame.height})
        good, issues, order = rules.check_rows(frame, str(path), parsed.price_sets, parsed.pair is None)
        if policy == "strict":
            rules.raise_first(pl.concat([issues, order]), scope=f" in {path.name}")
        fixes["out-of-order"] += order.height
        quarantine.append(issues)
        good = good.with_columns(pl.lit(str(path)).alias("_file"))
        for (p,), part in good.partition_by("pair", as_dict=True, maintain_order=True).items():
            groups.setdefault(p, {}).setdefault(parsed.side, []).append((str(path), part))
            if parsed.zone is not None or p not in result.zones:
                result.zones[p] = (parsed.zone if parsed.pair else zones.for_pair(p)) if parsed.zone else None
            volume[p] = volume.get(p, True) and parsed.has_volume
    bars, origins = [], []
    for p in sorted(groups):
        frame, basis, issues = _combine(p, groups[p], policy)
        quarantine += issues
        if "_line_ask" in frame.columns:
            result.rows_merged += frame.height
            frame = frame.drop("_line_ask")
        if frame.height == 0:
            continue
        if keep_origin:
            origins.append(frame.select("pair", "ts", pl.col("_file").alias("file"), pl.col(LINE).alias("line"),
                                        pl.col(RAW).alias("raw")))
        frame = conform(frame, with_pair=True)
        src = _source_of(p, frame, basis, volume[p])
        result.sources[p] = src
        bars.append(frame)
    result.bars = pl.concat(bars) if bars else conform(pl.DataFrame(schema={"pair": pl.String, "ts": pl.Datetime("us", "UTC"),
                                                                            **{c: pl.Float64 for c in PRICE_COLUMNS}}), with_pair=True)
    result.quarantine = pl.concat(quarantine) if quarantine else rules.empty_issues()
    result.fixes = {k: v for k, v in fixes.items() if v}
    if keep_origin:
        result.origin = pl.concat(origins) if origins else None
    return result


def _combine(p: str, sides: dict[str, list[tuple[str, pl.DataFrame]]], policy: str) -> tuple[pl.DataFrame, str, list[pl.DataFrame]]:
    """One pair's files: overlaps between files, then bid+ask merge or single-side bid/ask columns."""
    if len(sides) > 1 and set(sides) != {"bid", "ask"}:
        files = {s: parts[0][0] for s, parts in sides.items()}
        raise InputError(f"pair {p} mixes price bases {sorted(sides)} ({', '.join(f'{s}: {f}' for s, f in files.items())})",
                         pair=p, rule="mixed-basis", hint="Give one basis per pair: mid files, or bid and ask files.")
    issues = []
    frames = {}
    for side, parts in sides.items():
        kept, ov = rules.overlap_issues(parts)
        if policy == "strict":
            rules.raise_first(ov, scope=f" for {p}")
        issues.append(ov)
        frames[side] = pl.concat(kept, how="diagonal_relaxed").sort("ts")
    if set(frames) == {"bid", "ask"}:
        merged, crossed = rules.merge_sides(frames["bid"], frames["ask"])
        if policy == "strict":
            rules.raise_first(crossed, scope=f" for {p}")
        return merged, "mid", [*issues, crossed]
    (side, frame), = frames.items()
    if side == "bid":
        frame = frame.with_columns(pl.col(m).alias(b) for m, b in zip(PRICE_COLUMNS, BID_COLUMNS))
    elif side == "ask":
        frame = frame.with_columns(pl.col(m).alias(a) for m, a in zip(PRICE_COLUMNS, ASK_COLUMNS))
    return frame, side, issues


def _source_of(p: str, frame: pl.DataFrame, basis: str, volume_column: bool) -> PairSource:
    has_volume = volume_column and bool((frame["volume"].fill_null(0.0) != 0.0).any())
    has_bidask = bool(frame["bid_close"].is_not_null().all() and frame["ask_close"].is_not_null().all())
    return PairSource(pair=p, basis=basis, has_volume=has_volume, has_bidask=has_bidask)  # type: ignore[arg-type]


__all__ = ["FORMATS", "ReadResult", "read_bars", "read_source", "read_file", "detect_format", "list_files", "BAR_COLUMNS"]
