"""The export into PostgreSQL: one wide table per split, written by ADBC's bulk ingest (COPY BINARY).

Tables `<prefix>_train`, `<prefix>_validation`, `<prefix>_test` (prefix `bqx`, optionally
schema-qualified: `?table=market.bqx` in the URL) hold `pair text, ts timestamptz` and every exported
column as `real` (float32) or `double precision`, primary key (pair, ts), NULL where the feature is
undefined. Each pair-month is one transaction (delete its rows from the three tables, then COPY), so a failure
leaves every partition either as it was or complete, and a re-export replaces rows in place.
`<prefix>_export` gets one row per finished export (id, time, metadata and scaler as jsonb), last.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import polars as pl

from bqx.bars.readers.postgres import connect, db_error, mask_url, quote_ident, quote_literal
from bqx.errors import UsageError
from bqx.export import source
from bqx.export.options import ExportOptions
from bqx.export.preamble import prepare_export
from bqx.export.splits import SPLITS

_NAME = re.compile(r"^(?:([A-Za-z_][A-Za-z0-9_$]*)\.)?([A-Za-z_][A-Za-z0-9_$]*)$")


class PostgresSink:
    """The feature sink of the "postgresql" scheme (bqx.connect.sinks): one table per split, see the module."""

    scheme = "postgresql"

    def __init__(self, url: str, options: ExportOptions | None = None):
        self.url = str(url)

    def describe(self) -> str:
        return mask_url(self.url)

    def check(self, options: ExportOptions) -> None:
        if options.cv or options.targets:
            raise UsageError("--cv and --targets are for Parquet exports (a directory or s3://), not PostgreSQL")

    def export(self, store: Any, options: ExportOptions) -> Any:
        return export_postgres(store, self.url, options)


def _target(url: str) -> tuple[str, str | None, str]:
    """(connection URL without ?table=, schema or None, table prefix)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    name = query.pop("table", ["bqx"])[0]
    m = _NAME.match(name)
    if not m:
        raise UsageError(f"export table prefix {name!r} is not a plain [schema.]name",
                         hint="Use letters, digits and _, e.g. ?table=market.bqx.")
    rest = "&".join(f"{k}={v}" for k, vs in query.items() for v in vs)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, "")), m.group(1), m.group(2)


def _qualified(schema: str | None, name: str) -> str:
    return (quote_ident(schema) + "." if schema else "") + quote_ident(name)


def export_postgres(store: Any, to: str, options: ExportOptions) -> Any:
    """Export a store's features and targets into PostgreSQL tables; returns the exporter's ExportResult."""
    t0 = time.perf_counter()
    say = options.say
    normalize, precision, no_validate, embargo = options.normalize, options.precision, options.no_validate, options.embargo
    conn_url, schema, prefix = _target(to)
    pre = prepare_export(store, replace(options, drop_empty=False, targets=None, cv=None))
    sel, plan, purge, fit, why = pre.sel, pre.plan, pre.purge, pre.fit, pre.why
    dtype, sqltype = (pl.Float32, "real") if precision == "float32" else (pl.Float64, "double precision")
    cols = list(sel.columns)
    tables = {s: f"{prefix}_{s}" for s in SPLITS}
    conn = connect(conn_url, autocommit=False)
    rows: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    try:
        _sql(conn, conn_url, *[f"CREATE TABLE IF NOT EXISTS {t} (pair text NOT NULL, ts timestamptz NOT NULL, "
                               + ", ".join(f"{quote_ident(c)} {sqltype}" for c in cols) + ", PRIMARY KEY (pair, ts))"
                               for t in (_qualified(schema, n) for n in tables.values())])
        fitted = None
        if normalize:
            for pair, _, parts in _blocks(sel, plan):
                if "train" in parts:
                    fit.update(pair, parts["train"])
            fitted = fit.result(sel.pairs)
        for pair, month, parts in _blocks(sel, plan):
            outs = {}
            for name, part in parts.items():
                if fitted is None and name == "train":
                    fit.update(pair, part)
                out = fitted.transform(part, pair) if fitted is not None else part
                outs[name] = out.select(pl.lit(pair).alias("pair"), pl.col("ts"), *[pl.col(c).cast(dtype) for c in cols])
                rows[name][pair] = rows[name].get(pair, 0) + out.height
            _write_partition(conn, conn_url, schema, tables, pair, month, outs)
            say(f"{pair} {month}: " + ", ".join(f"{k} {v.height}" for k, v in parts.items()))
        fitted = fitted or fit.result(sel.pairs)
        meta = {"format": "bqx-export-postgresql", "tables": {s: f"{prefix}_{s}" for s in SPLITS}, "rows": rows,
                "columns": cols, "boundaries": {k: v.isoformat() for k, v in plan.boundaries.items()},
                "precision": precision, "normalized_output": normalize, "validated": not no_validate,
                "validation_status": why, "purge": purge, "embargo": embargo}
        export_id = uuid.uuid4().hex[:12]
        log = _qualified(schema, f"{prefix}_export")
        _sql(conn, conn_url, f"CREATE TABLE IF NOT EXISTS {log} (export_id text PRIMARY KEY, finished_at timestamptz, "
                             "metadata jsonb, scaler jsonb)",
             f"INSERT INTO {log} VALUES ({quote_literal(export_id)}, now(), "
             f"{quote_literal(json.dumps(meta, default=str))}::jsonb, "
             f"{quote_literal(json.dumps(fitted.to_dict(), default=str))}::jsonb)")
        conn.commit()
    finally:
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass
    from bqx.export.outcome import ExportResult

    n_parts = sum(1 for by_pair in rows.values() for _ in by_pair)
    scaled_n = sum(1 for c in fitted.for_pair(sel.pairs[0]).values() if c.mean is not None) if sel.pairs else 0
    return ExportResult(destination=mask_url(to), export_id=export_id, rows=rows, files=n_parts,
                        boundaries=meta["boundaries"], columns=len(cols), scaled=scaled_n,
                        constant=fitted.report()["constant"], validated=not no_validate, checks=[],
                        seconds=time.perf_counter() - t0)


def _sql(conn: Any, url: str, *statements: str) -> None:
    try:
        with conn.cursor() as cur:
            for s in statements:
                cur.execute(s)
        conn.commit()
    except Exception as exc:  # noqa: BLE001
        _rollback(conn)
        raise db_error(url, exc) from None


def _write_partition(conn: Any, url: str, schema: str | None, tables: dict[str, str], pair: str, month: str,
                     outs: dict[str, pl.DataFrame]) -> None:
    """One transaction per pair-month: remove its rows from every split table, COPY the new ones, commit."""
    lo = f"{month}-01 00:00+00"
    y, m = int(month[:4]), int(month[5:])
    hi = f"{y + (m == 12):04d}-{m % 12 + 1:02d}-01 00:00+00"
    kw = {"db_schema_name": schema} if schema else {}
    try:
        with conn.cursor() as cur:
            for name in tables.values():
                cur.execute(f"DELETE FROM {_qualified(schema, name)} WHERE pair = {quote_literal(pair)} AND "
                            f"ts >= {quote_literal(lo)}::timestamptz AND ts < {quote_literal(hi)}::timestamptz")
            for split, frame in outs.items():
                cur.adbc_ingest(tables[split], frame.to_arrow(), mode="append", **kw)
        conn.commit()
    except Exception as exc:  # noqa: BLE001
        _rollback(conn)
        raise db_error(url, exc) from None


def _rollback(conn: Any) -> None:
    try:
        conn.rollback()
    except Exception:  # noqa: BLE001 - a dropped connection has nothing to roll back
        pass


def _blocks(sel: source.Selection, plan: Any):
    """(pair, month, {split: rows}) of every pair-month, purged and embargoed rows left out."""
    for pair in sel.pairs:
        for month in sel.months[pair]:
            frame = source.read_month(sel, pair, month)
            frame = frame.with_columns(plan.label(pair, frame["ts"]).alias("_split"))
            parts = {s: frame.filter(pl.col("_split") == s).drop("_split") for s in SPLITS}
            parts = {s: f for s, f in parts.items() if f.height}
            if parts:
                yield pair, month, parts


__all__ = ["PostgresSink", "export_postgres"]
