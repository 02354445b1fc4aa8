"""PostgreSQL bars, read month by month through ADBC's libpq driver into the same rows the file readers produce.

Layouts: one table per pair (a name pattern with `{pair}`, default `m1_{pair}`, matched
case-insensitively, optionally schema-qualified) or one long table with a pair column. Columns map
to bar columns as for generic CSV (by name, or a column map). Each pair-month is one query with
`ts >= lower AND ts < upper` (partition pruning), numbers converted to float8 on the server
(numeric -> float8 is correctly rounded, real -> float8 exact), `timestamp without time zone` only
with a declared zone. A month's rows are listed with a row count and a checksum computed in SQL.

Passwords come from libpq (PGPASSWORD or ~/.pgpass); a URL carrying one is refused, and every
message names the URL without it. In quarantine records `file` is `<url>/<table>?month=YYYY-MM`
(plus `&pair=` for a long table) and `line` the row's position in that month read in ts order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterator
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import polars as pl

from bqx.bars.readers import generic
from bqx.bars.readers._common import (
    PRICE_SETS, price_sides,
    LINE, RAW, FileProblem, Parsed, check_tz, fixed_offset_minutes, localize, normalize_pair, tz_checks,
    with_parse_errors,
)
from bqx.bars.timezones import NEW_YORK, NY_CLOSE
from bqx.bar_schema import PRICE_COLUMNS, TS_DTYPE
from bqx.connect.schemes import is_database_url, mask_url, secret_query
from bqx.errors import InputError, UsageError
from bqx.universe import PAIR_NAMES

DEFAULT_TABLE = "m1_{pair}"
_IDENT = r"[A-Za-z_][A-Za-z0-9_$]*"
_PATTERN = re.compile(rf"^(?:({_IDENT})\.)?((?:{_IDENT}|{{pair}})(?:[A-Za-z0-9_$]|{{pair}})*)$")
_NUMERIC = {"numeric", "real", "double precision", "integer", "bigint", "smallint"}
_TEXT = {"text", "character varying", "character"}
_TS_TYPES = {"timestamp with time zone": True, "timestamp without time zone": False}


def check_url(url: str) -> str:
    """The URL, when it is a PostgreSQL URL with a host and a database and no password (in user:pw@ or ?password=)."""
    if not is_database_url(url):
        raise UsageError(f"not a PostgreSQL URL: {mask_url(url)}", hint="Give postgresql://USER@HOST:PORT/DB.")
    parts = urlsplit(url)
    if parts.password is not None or secret_query(parts.query):
        raise UsageError(f"the URL {mask_url(url)} carries a password; bqx never takes one on the command line or in "
                         "configuration (it would be stored and printed)",
                         hint="Remove it from the URL and set PGPASSWORD or add it to ~/.pgpass.")
    if not parts.hostname or not parts.path.strip("/"):
        raise UsageError(f"the URL {url} needs a host and a database", hint="Give postgresql://USER@HOST:PORT/DB.")
    return url


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class PgLayout:
    """Where the bars are: `table` is a pattern with {pair} (one table per pair) or, with `pair_column`, one table."""

    table: str = DEFAULT_TABLE
    pair_column: str | None = None
    column_map: dict[str, str] | None = None
    tz: str | None = None
    zones: dict[str, str] | None = None  # per-pair zones of `timestamp without time zone` columns (one table per pair)

    def zone_for(self, pair: str | None) -> str | None:
        """The zone of a pair's naive timestamps: its own, else `tz`."""
        return (self.zones or {}).get(pair, self.tz) if pair is not None else self.tz

    def checked(self) -> "PgLayout":
        m = _PATTERN.match(self.table)
        if not m:
            raise UsageError(f"table name {self.table!r} is not a plain [schema.]name",
                             hint="Use letters, digits, _ and $ (and {pair} in a per-pair pattern), e.g. market.m1_{pair}.")
        if self.pair_column is None and "{pair}" not in self.table:
            raise UsageError(f"table pattern {self.table!r} has no {{pair}}",
                             hint="Give a pattern like m1_{pair}, or name the pair column of one long table.")
        if self.pair_column is not None and "{pair}" in self.table:
            raise UsageError("a long table (with a pair column) is one table: its name cannot contain {pair}")
        if self.pair_column is not None and not re.fullmatch(_IDENT, self.pair_column):
            raise UsageError(f"pair column {self.pair_column!r} is not a plain column name")
        for target, col in (self.column_map or {}).items():
            if not re.fullmatch(_IDENT, col):
                raise UsageError(f"column {col!r} (mapped to {target}) is not a plain column name")
        check_tz(self.tz)
        for z in (self.zones or {}).values():
            check_tz(z)
        return self


@dataclass
class Table:
    """One resolved table: catalog names, columns by bar column, and the pair value(s) it holds."""

    schema: str
    name: str
    columns: dict[str, tuple[str, str]]  # bar column -> (column name, type)
    pair: str | None  # per-pair layout: the pair; long layout: None

    @property
    def qualified(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def zoned(self) -> bool:
        return _TS_TYPES[self.columns["ts"][1]]


@dataclass
class MonthInfo:
    pair_value: str | None  # long layout: the pair as written in the table
    pair: str  # normalized (may be unknown to bqx; the rules quarantine it)
    month: str
    rows: int
    checksum: str


@dataclass
class MonthRead:
    parsed: Parsed
    file: str  # the label used in quarantine records and errors
    fetched: pl.DataFrame  # the rows as fetched (for the text of rejected rows)
    names: list[str]

    def with_raw(self, issues: pl.DataFrame) -> pl.DataFrame:
        """Quarantine records with `raw` filled from the fetched rows they name."""
        if issues.height == 0:
            return issues
        lines = issues.select(pl.col("line").alias(LINE)).unique()
        text = raw_text(self.fetched, self.names).join(lines, on=LINE, how="semi")
        return issues.join(text.rename({LINE: "line"}), on="line", how="left").with_columns(
            pl.coalesce("_text", "raw").alias("raw")).drop("_text")


@dataclass
class Reader:
    """An open connection to one database with its resolved tables."""

    url: str
    layout: PgLayout
    conn: Any = None
    tables: list[Table] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    # -- connection ----------------------------------------------------------------------------

    def __enter__(self) -> "Reader":
        self.conn = connect(self.url)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - a dropped connection cannot be closed cleanly
            pass

    def query(self, sql: str, params: tuple[Any, ...] | None = None) -> pl.DataFrame:
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql, params) if params else cur.execute(sql)
                return pl.from_arrow(cur.fetch_arrow_table())  # type: ignore[return-value]
        except Exception as exc:  # noqa: BLE001 - every driver error becomes one clear InputError
            raise db_error(self.url, exc) from None

    # -- tables --------------------------------------------------------------------------------

    def resolve(self, pairs: list[str] | None) -> list[Table]:
        """Find the tables (case-insensitively) and map their columns; a missing table is an error."""
        lay = self.layout
        m = _PATTERN.match(lay.table)
        assert m
        schema, pattern = m.group(1), m.group(2)
        rels = self.query(
            "SELECT n.nspname AS s, c.relname AS t, n.nspname = ANY(current_schemas(false)) AS on_path, "
            "array_position(current_schemas(false), n.nspname) AS rank FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition")
        where = (f" in schema {schema}" if schema else " on the search path")
        if lay.pair_column is not None:
            found = self._find(rels, schema, pattern.lower())
            if found is None:
                raise InputError(f"table {lay.table} not found{where} in {self.url}",
                                 hint="Check the table name (--table) and the database in the URL.")
            self.tables = [self._table(*found, pair=None)]
            return self.tables
        wanted = pairs or list(PAIR_NAMES)
        for p in wanted:
            name = pattern.replace("{pair}", p.lower())
            found = self._find(rels, schema, name.lower())
            if found is None:
                self.missing.append(f"{schema + '.' if schema else ''}{name}")
                continue
            self.tables.append(self._table(*found, pair=p))
        if not self.tables or (pairs and self.missing):
            raise InputError(f"table {self.missing[0]} not found{where} in {self.url}"
                             + (f" ({len(self.missing)} of {len(wanted)} tables missing)" if len(self.missing) > 1 else ""),
                             hint=f"Check the table pattern (--table, default {DEFAULT_TABLE}) and the database in the URL.")
        return self.tables

    @staticmethod
    def _find(rels: pl.DataFrame, schema: str | None, name: str) -> tuple[str, str] | None:
        hit = rels.filter(pl.col("t").str.to_lowercase() == name)
        hit = hit.filter(pl.col("s").str.to_lowercase() == schema.lower()) if schema else hit.filter(pl.col("on_path")).sort("rank")
        return (hit["s"][0], hit["t"][0]) if hit.height else None

    def _table(self, schema: str, name: str, pair: str | None) -> Table:
        cols = self.query(
            "SELECT a.attname AS name, format_type(a.atttypid, NULL) AS type FROM pg_attribute a "
            f"WHERE a.attrelid = {quote_literal(quote_ident(schema) + '.' + quote_ident(name))}::regclass "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum")
        header, types = cols["name"].to_list(), dict(zip(cols["name"], cols["type"]))
        label = f"{self.url}/{schema}.{name}"
        cmap = dict(self.layout.column_map or {})
        if self.layout.pair_column:
            cmap["pair"] = self.layout.pair_column
        try:
            pos = generic.resolve(header, cmap or None)
        except FileProblem as p:
            raise InputError(p.message, file=label, column=p.column, rule=p.rule,
                             hint=f"The table has columns {header}; map yours with --column-map.") from None
        if "pair" in pos and not self.layout.pair_column:
            pos.pop("pair")
        mapped = {t: (header[i], types[header[i]]) for t, i in pos.items()}
        complete = [k for k, cs in PRICE_SETS.items() if all(c in mapped for c in cs)]
        if "ts" not in mapped or not complete:
            need = ["ts"] if "ts" not in mapped else [c for c in PRICE_COLUMNS if c not in mapped]
            raise InputError(f"no column for {', '.join(need)}", file=label, rule="missing-column",
                             hint=f"The table has columns {header}; name them ts,open,high,low,close[,volume] or pass "
                                  'a column map (e.g. {"ts": "time"}).')
        for k, cs in PRICE_SETS.items():
            if k not in complete:
                for c in cs:
                    mapped.pop(c, None)
        ts_name, ts_type = mapped["ts"]
        if ts_type not in _TS_TYPES:
            raise InputError(f"column {ts_name} has type {ts_type}, not a timestamp", file=label, column=ts_name,
                             rule="bad-timestamp", hint="The ts column must be timestamptz (or timestamp with --tz).")
        if not _TS_TYPES[ts_type] and pair is None and self.layout.zones:
            raise UsageError(f"per-pair time zones ({', '.join(sorted(self.layout.zones))}) need one table per pair; "
                             f"{label} is one long table with naive timestamps",
                             hint="Give one zone for the whole table (--tz ZONE), or store timestamptz.")
        if not _TS_TYPES[ts_type] and self.layout.zone_for(pair) is None:
            raise InputError(f"column {ts_name} is timestamp without time zone and no zone was declared", file=label,
                             column=ts_name, rule="naive-timestamp",
                             hint="Declare the zone of its times with --tz (e.g. --tz UTC) or tz in [postgres].")
        for target, (col, typ) in mapped.items():
            if target not in ("ts", "pair") and typ not in _NUMERIC | _TEXT:
                raise InputError(f"column {col} (for {target}) has type {typ}, not a number", file=label, column=col,
                                 rule="bad-number", hint="Map a numeric, real or double precision column.")
        return Table(schema, name, mapped, pair)

    # -- months --------------------------------------------------------------------------------

    def months(self, table: Table) -> list[MonthInfo]:
        """Every (pair, month) of a table with its row count and a checksum of its rows, computed in SQL."""
        cols = ", ".join(quote_ident(c) for t, (c, _) in table.columns.items() if t != "pair")
        pair_sel = f"{quote_ident(table.columns['pair'][0])}::text" if "pair" in table.columns else "NULL::text"
        sql = (f"SELECT {pair_sel} AS p, to_char(date_trunc('month', {self._utc(table)}), 'YYYY-MM') AS m, "
               f"count(*) AS n, sum(hashtextextended(ROW({cols})::text, 0))::text AS h "
               f"FROM {table.qualified} GROUP BY 1, 2 ORDER BY 1, 2")
        rows = self.query(sql)
        out = []
        for pv, m, n, h in rows.iter_rows():
            if m is None:
                raise InputError(f"{n} rows of {table.label} have no timestamp (NULL)", file=f"{self.url}/{table.label}",
                                 column=table.columns["ts"][0], rule="bad-timestamp",
                                 hint="Give every row a ts, or exclude them with a view.")
            pair = table.pair if table.pair else _normalize(pv)
            out.append(MonthInfo(pv, pair, m, int(n), str(h)))
        return out

    def _utc(self, table: Table) -> str:
        """SQL for the ts column as naive UTC time."""
        ts = quote_ident(table.columns["ts"][0])
        if table.zoned:
            return f"({ts} AT TIME ZONE 'UTC')"
        zone = self.layout.zone_for(table.pair)
        assert zone is not None
        minutes = fixed_offset_minutes(zone)
        if minutes is not None:
            return f"({ts} - interval '{int(minutes)} minutes')"
        if zone == NY_CLOSE:  # New York time + 7 h
            return f"((({ts} - interval '7 hours') AT TIME ZONE {quote_literal(NEW_YORK)}) AT TIME ZONE 'UTC')"
        return f"(({ts} AT TIME ZONE {quote_literal(zone)}) AT TIME ZONE 'UTC')"

    def _bounds(self, table: Table, month: str) -> tuple[str, str]:
        lo = datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=timezone.utc)
        hi = lo.replace(year=lo.year + (lo.month == 12), month=lo.month % 12 + 1)
        if table.zoned:
            return (f"'{lo:%Y-%m-%d %H:%M:%S}+00'::timestamptz", f"'{hi:%Y-%m-%d %H:%M:%S}+00'::timestamptz")
        name = self.layout.zone_for(table.pair)
        assert name is not None
        minutes = fixed_offset_minutes(name)
        if minutes is not None:
            return tuple(f"('{b:%Y-%m-%d %H:%M:%S}'::timestamp + interval '{int(minutes)} minutes')" for b in (lo, hi))  # type: ignore[return-value]
        if name == NY_CLOSE:  # New York's wall clock shifted by 7 h: bound by New York time, then shift
            zone = ZoneInfo(NEW_YORK)
            return tuple(f"('{b.astimezone(zone).replace(tzinfo=None):%Y-%m-%d %H:%M:%S}'::timestamp + interval '{d + 7} hour')"
                         for b, d in ((lo, -1), (hi, 1)))  # type: ignore[return-value]
        zone = ZoneInfo(name)
        # one hour of slack each side: local times are localized (DST-checked) in Python, then kept by UTC month
        return tuple(f"('{b.astimezone(zone).replace(tzinfo=None):%Y-%m-%d %H:%M:%S}'::timestamp + interval '{d} hour')"
                     for b, d in ((lo, -1), (hi, 1)))  # type: ignore[return-value]

    def read_month(self, table: Table, info: MonthInfo) -> MonthRead:
        """One pair-month as parsed rows (_line, _raw, ts, prices, volume[, pair]) with parse errors flagged."""
        lo, hi = self._bounds(table, info.month)
        ts = quote_ident(table.columns["ts"][0])
        sel = [f"{ts} AS ts"]
        texts: dict[str, str] = {}
        for target, (col, typ) in table.columns.items():
            if target in ("ts", "pair"):
                continue
            if typ in _TEXT:
                sel.append(f"{quote_ident(col)}::text AS {quote_ident(target)}")
                texts[target] = col
            else:
                sel.append(f"{quote_ident(col)}::float8 AS {quote_ident(target)}")
        where = f"{ts} >= {lo} AND {ts} < {hi}"
        params: tuple[Any, ...] | None = None
        if "pair" in table.columns:
            sel.append(f"{quote_ident(table.columns['pair'][0])}::text AS pair")
            where += f" AND {quote_ident(table.columns['pair'][0])}::text = $1"
            params = (info.pair_value,)
        names = [t for t in table.columns if t not in ("ts", "pair")]
        order = ", ".join(["ts", *(quote_ident(n) for n in names)])
        frame = self.query(f"SELECT {', '.join(sel)} FROM {table.qualified} WHERE {where} ORDER BY {order}", params)
        file = f"{self.url}/{table.label}?month={info.month}" + (f"&pair={info.pair_value}" if "pair" in table.columns else "")
        return MonthRead(_parsed(frame, table, names, texts, info, self.layout.zone_for(table.pair), file), file, frame, names)


def _normalize(value: str | None) -> str:
    return pl.select(normalize_pair(pl.lit(value or "", pl.String))).item()


def _parsed(frame: pl.DataFrame, table: Table, names: list[str], texts: dict[str, str], info: MonthInfo,
            tz: str | None, file: str) -> Parsed:
    """Fetched rows as the readers' parsed frame, so bqx.bars.rules sees what it sees for a CSV file."""
    # the row's text is built only for rejected rows (raw_text), after the rules ran: RAW stays NULL here
    f = frame.with_row_index(LINE, offset=1).with_columns(pl.col(LINE).cast(pl.Int64), pl.lit(None, pl.String).alias(RAW))
    if "pair" in f.columns:
        f = f.with_columns(normalize_pair(pl.col("pair").fill_null("")).alias("pair"))
    else:
        f = f.with_columns(pl.lit(table.pair).alias("pair"))
    checks = []
    if table.zoned:
        f = f.with_columns(pl.col("ts").dt.convert_time_zone("UTC").cast(TS_DTYPE))
    else:
        f = localize(f.rename({"ts": "_naive"}), "_naive", tz or "UTC").with_columns(pl.col("_naive").cast(pl.String).alias("_tstext"))
        checks += tz_checks()
    for n in names:
        v = pl.col(n).cast(pl.String).fill_null("NULL")
        if n in texts:
            checks.append(("bad-number", n, pl.col(n).cast(pl.Float64, strict=False).is_null(), v))
        else:
            checks.append(("bad-number", n, pl.col(n).is_null(), v))
    f = with_parse_errors(f, checks)
    f = f.with_columns(pl.col(n).cast(pl.Float64, strict=False) for n in names)
    if not table.zoned:  # the slack rows around a DST change belong to the neighbouring month
        f = f.filter(pl.col("ts").is_null() | (pl.col("ts").dt.strftime("%Y-%m") == info.month))
    f, side, keep, price_sets = price_sides(f, names)
    has_volume = "volume" in names
    if not has_volume:
        f = f.with_columns(pl.lit(0.0).alias("volume"))
    out = f.select(LINE, RAW, "ts", *PRICE_COLUMNS, "volume", *keep, "pair", "_rule", "_col", "_val")
    return Parsed(file=file, fmt="postgresql", side=side, frame=out, pair=table.pair, price_sets=price_sets,
                  has_volume=has_volume)


def raw_text(frame: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """(_line, text) of fetched rows: the values as the database gave them, comma-separated."""
    text = pl.concat_str([pl.col("ts").cast(pl.String).fill_null("NULL"),
                          *[pl.col(n).cast(pl.String).fill_null("NULL") for n in names]], separator=",")
    return frame.with_row_index(LINE, offset=1).select(pl.col(LINE).cast(pl.Int64), text.alias("_text"))


def connect(url: str, autocommit: bool = True) -> Any:
    """An ADBC connection (libpq reads PGPASSWORD / ~/.pgpass); a clear InputError when it fails."""
    check_url(url)
    try:
        import adbc_driver_postgresql.dbapi as adbc
    except ImportError:
        raise UsageError("reading PostgreSQL needs the ADBC driver",
                         hint="Install bqx with the postgres extra: pip install 'bqx[postgres]'.") from None
    try:
        conn = adbc.connect(url, autocommit=autocommit)
    except Exception as exc:  # noqa: BLE001
        raise db_error(url, exc) from None
    return conn


def db_error(url: str, exc: BaseException) -> InputError:
    """A driver error as an InputError naming the masked URL and libpq's own message."""
    text = re.sub(r"\s+", " ", str(exc)).strip()
    text = re.sub(r"^[A-Z_]+: \[libpq\] ", "", text)
    hint = "Check the URL, that the server is up, and the password in PGPASSWORD or ~/.pgpass."
    if "password authentication failed" in text:
        hint = "The password (from PGPASSWORD or ~/.pgpass) was refused: check it for this user and host."
    elif "terminat" in text or "server closed the connection" in text or "connection" in text.lower() and "lost" in text.lower():
        hint = "The connection dropped; months already written are kept: rerun the same command to resume."
    return InputError(f"PostgreSQL {mask_url(url)}: {text[:400]}", hint=hint)


def iter_months(reader: Reader, tables: list[Table]) -> Iterator[tuple[Table, MonthInfo]]:
    for t in tables:
        for info in reader.months(t):
            yield t, info


__all__ = ["PgLayout", "Reader", "Table", "MonthInfo", "MonthRead", "mask_url", "check_url",
           "quote_ident", "connect", "db_error", "DEFAULT_TABLE"]
