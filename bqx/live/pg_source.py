"""`bqx live --source postgresql://...`: poll a bars table for rows newer than each pair's last seen bar.

The table is found and read exactly as `bqx ingest postgresql://` reads it (bqx/bars/readers/postgres.py,
docs/POSTGRESQL.md): one table per pair (`m1_{pair}`) or one long table with a pair column, the same
column mapping, float8 conversion on the server and zone rules. Each poll asks, per table (and pair
value of a long table), for the rows with ts after that pair's last seen bar, month by month from
the month of that bar (a `ts >= GREATEST(month start, last seen)` bound, so partitions still prune).

A row that does not parse (a NULL or non-numeric price, a bad local time) is rejected with the
reader's rule and its place (`file` is `<url>/<table>?month=YYYY-MM`, `line` its position in that
poll's result); the rest go to `Live.update`, which applies ingest's row rules and the order rules.
Every row fetched moves its pair's last seen bar forward, rejected or not, so a bad row is reported
once. A row inserted with a ts at or before its pair's last seen bar is not seen (`bqx ingest` picks
it up in the next batch run).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

import polars as pl

from bqx.bar_schema import BAR_COLUMNS, TS_DTYPE
from bqx.bars.readers._common import COL, LINE, RULE, VAL, fixed_offset_minutes
from bqx.bars.timezones import NEW_YORK, NY_CLOSE
from bqx.bars.readers.postgres import MonthInfo, PgLayout, Reader, Table, _normalize, quote_ident, quote_literal
from bqx.live.checks import record

_NUMBERS = tuple(c for c in BAR_COLUMNS if c != "ts")
_SCHEMA = {"pair": pl.String, "ts": TS_DTYPE, **{c: pl.Float64 for c in _NUMBERS}, "_line": pl.Int64, "_file": pl.String}


class _SinceReader(Reader):
    """The ingest reader with each month's lower bound raised to the table's last seen time (exclusive)."""

    since: dict[str, str]  # table label -> SQL for the lower bound in the ts column's own type

    def _bounds(self, table: Table, month: str) -> tuple[str, str]:
        lo, hi = super()._bounds(table, month)
        bound = self.since.get(table.label)
        return (f"GREATEST({lo}, {bound})" if bound else lo), hi


class PostgresFeed:
    """The "postgresql" live source (bqx.connect.sources.StreamSource): the URL is checked when opened (a password
    in it is refused before anything reads or prints it), the database polled once the session has started it."""

    def __init__(self, url: str, options: Any = None):
        from bqx.bars.readers.postgres import check_url

        check_url(url)
        self.url = url
        self.layout = PgLayout(**({"table": options.table} if options is not None and options.table else {}),
                               pair_column=getattr(options, "pair_column", None),
                               column_map=getattr(options, "column_map", None), tz=getattr(options, "tz", None))
        self.source: PostgresSource | None = None

    @property
    def done(self) -> bool:
        return False

    def start(self, pairs: Sequence[str], since: Mapping[str, datetime | None]) -> None:
        self.source = PostgresSource(self.url, self.layout, pairs, since)

    def read_bars(self, timeout: float) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
        assert self.source is not None, "start() first"
        return self.source.read_bars(timeout)

    def close(self) -> None:
        if self.source is not None:
            self.source.close()


class PostgresSource:
    """Rows newer than each pair's last seen bar, as a bar frame for Live.update, polled every `read`."""

    done = False

    def __init__(self, url: str, layout: PgLayout, pairs: Sequence[str], since: Mapping[str, datetime | None]):
        self.layout = layout.checked()
        self.reader = _SinceReader(url, self.layout)
        self.reader.since = {}
        self.reader.__enter__()
        try:
            self.tables = self.reader.resolve(None if self.layout.pair_column else list(pairs))
        except BaseException:
            self.close()
            raise
        self.last: dict[str, datetime | None] = {p: since.get(p) for p in pairs}

    def close(self) -> None:
        self.reader.__exit__(None, None, None)

    def read_bars(self, timeout: float) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
        """One poll: (bars with pair, _line, _file; rejection records of rows that did not parse)."""
        import time

        frame, bad = self.poll()
        if frame.height == 0 and not bad and timeout > 0:
            time.sleep(timeout)
            frame, bad = self.poll()
        return frame, bad

    def poll(self) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
        parts: list[pl.DataFrame] = []
        bad: list[dict[str, Any]] = []
        for table in self.tables:
            for value, pair, top in self._news(table):
                since = self.last.setdefault(pair, self._oldest())
                self.reader.since[table.label] = self._bound(table, since)
                for month in _months(since, top, slack=not table.zoned):
                    read = self.reader.read_month(table, MonthInfo(value, pair, month, 0, ""))
                    rows = read.parsed.frame
                    if since is not None:
                        rows = rows.filter(pl.col("ts").is_null() | (pl.col("ts") > since))
                    if rows.height == 0:
                        continue
                    newest = rows["ts"].max()
                    if newest is not None and (self.last[pair] is None or newest > self.last[pair]):
                        self.last[pair] = newest
                    for r in rows.filter(pl.col(RULE).is_not_null()).iter_rows(named=True):
                        ts = r["ts"].strftime("%Y-%m-%dT%H:%M:%SZ") if r["ts"] is not None else ""
                        bad.append(record(r.get("pair") or pair, ts, r[RULE], column=r[COL] or "", value=r[VAL],
                                          line=r[LINE], file=read.file))
                    good = rows.filter(pl.col(RULE).is_null())
                    parts.append(good.select(pl.col("pair").cast(pl.String), "ts", *[
                        (pl.col(c) if c in good.columns else pl.lit(None, pl.Float64)).cast(pl.Float64).alias(c)
                        for c in _NUMBERS], pl.col(LINE).cast(pl.Int64).alias("_line"), pl.lit(read.file).alias("_file")))
        frame = pl.concat(parts).cast(_SCHEMA) if parts else pl.DataFrame(schema=_SCHEMA)  # type: ignore[arg-type]
        return frame.sort("ts", "pair", maintain_order=True), bad

    def _oldest(self) -> datetime | None:
        """Where a pair value seen for the first time starts: the earliest last seen bar."""
        known = [t for t in self.last.values() if t is not None]
        return min(known) if known else None

    def _news(self, table: Table) -> list[tuple[str | None, str, datetime]]:
        """(pair value as written, pair, newest ts) of the rows after the last seen bar (one cheap query)."""
        ts = quote_ident(table.columns["ts"][0])
        if table.pair is not None:
            bound = self._bound(table, self.last.get(table.pair))
            where = f" WHERE {ts} > {bound}" if bound else ""
            top = self.reader.query(f"SELECT max({ts}) AS top FROM {table.qualified}{where}")["top"][0]
            return [(None, table.pair, top)] if top is not None else []
        col = quote_ident(table.columns["pair"][0])
        bound = self._bound(table, self._oldest())
        where = f" WHERE {ts} > {bound}" if bound else ""
        found = self.reader.query(f"SELECT {col}::text AS v, max({ts}) AS top FROM {table.qualified}{where} GROUP BY 1")
        return [(v, _normalize(v), top) for v, top in found.iter_rows()]

    def _bound(self, table: Table, since: datetime | None) -> str:
        """The last seen time in the ts column's type: exact for timestamptz, an hour early for local times
        (rows at or before it are dropped again after parsing, in UTC)."""
        if since is None:
            return ""
        utc = since.astimezone(timezone.utc).replace(tzinfo=None)
        if table.zoned:
            return f"('{utc:%Y-%m-%d %H:%M:%S.%f}+00'::timestamptz + interval '1 microsecond')"
        tz = self.layout.zone_for(table.pair) or "UTC"
        minutes = fixed_offset_minutes(tz)
        if minutes is not None:
            return f"('{utc:%Y-%m-%d %H:%M:%S.%f}'::timestamp + interval '{int(minutes)} minutes')"
        if tz == NY_CLOSE:  # broker time: New York time + 7 h
            return (f"(('{utc:%Y-%m-%d %H:%M:%S.%f}+00'::timestamptz AT TIME ZONE {quote_literal(NEW_YORK)}) "
                    f"+ interval '7 hours' - interval '1 hour')")
        return (f"(('{utc:%Y-%m-%d %H:%M:%S.%f}+00'::timestamptz AT TIME ZONE {quote_literal(tz)}) "
                f"- interval '1 hour')")


def _utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=timezone.utc)


def _months(since: datetime | None, top: datetime, slack: bool) -> list[str]:
    """The months from the last seen bar's to the newest row's (one more for local times near a month's end)."""
    first = _utc(since or top).astimezone(timezone.utc)
    end = _utc(top).astimezone(timezone.utc) + (timedelta(days=1) if slack else timedelta(0))
    out, y, m = [], first.year, first.month
    while (y, m) <= (end.year, end.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = y + (m == 12), m % 12 + 1
    return out
