"""`bqx ingest`: read, validate and store bars."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from bqx.cli.common import ConfigOpt, JsonOpt, StoreOpt, config_from, emit_json, info, split_list


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    def ingest(
        source: str = typer.Argument(..., help="A bar file, a directory of per-pair files, or "
                                               "postgresql://USER@HOST:PORT/DB (password from PGPASSWORD or ~/.pgpass).",
                                     show_default=False),
        store: Optional[str] = StoreOpt,
        fmt: Optional[str] = typer.Option(
            None, "--format",
            help="histdata, dukascopy, metatrader or generic (CSV/Parquet; the `bqx sample` CSV dialect needs no "
                 "column map); detected when omitted."),
        policy: str = typer.Option(
            "strict", "--policy",
            help="strict: stop at the first bad row, naming file, line, column, value and rule. "
                 "repair: drop or fix what can be, quarantine every rejected row with its reason."),
        tz: Optional[list[str]] = typer.Option(
            None, "--tz", help="Time zone of naive timestamps: ZONE for every file, PAIR=ZONE for one pair's files "
                               "(repeatable; over the ingest.tz table of bqx.toml). ZONE: UTC, an IANA name (Europe/London, "
                               "Etc/GMT-3 = UTC+3), an offset (+02:00), ny-close (MetaTrader brokers: New York + 7 h, "
                               "UTC+2/+3) or est-fixed (UTC-5, HistData). Required for MetaTrader and generic files "
                               "without an offset."),
        pairs: Optional[list[str]] = typer.Option(None, "--pairs", help="Only these pairs (default: every pair found)."),
        column_map: Optional[str] = typer.Option(
            None, "--column-map",
            help='Generic files: JSON mapping canonical columns to yours, e.g. \'{"ts": "Time", "close": "Close"}\'.'),
        table: Optional[str] = typer.Option(
            None, "--table", help="PostgreSQL: table per pair, a pattern with {pair} (default m1_{pair}, "
                                  "case-insensitive, schema.name allowed), or the one long table of --pair-column."),
        pair_column: Optional[str] = typer.Option(None, "--pair-column", help="PostgreSQL: the pair column of a long table."),
        config: Optional[Path] = ConfigOpt,
        json_: bool = JsonOpt,
    ) -> None:
        """Read bars, validate them before anything is computed, and write them to the store."""
        from bqx.bars.ingest import ingest as do_ingest
        from bqx.bars.timezones import ZoneMap
        from bqx.connect.schemes import is_database_url
        from bqx.errors import UsageError

        if policy not in ("strict", "repair"):
            raise UsageError(f"--policy must be strict or repair, got {policy!r}")
        cfg, _ = config_from(config, store=store)
        zones = ZoneMap.of(tz).over(ZoneMap.of(cfg.ingest.tz))
        mapping = None
        if column_map:
            try:
                mapping = json.loads(column_map)
            except json.JSONDecodeError as exc:
                raise UsageError(f"--column-map is not valid JSON: {exc}") from None
        database = is_database_url(source)
        if database:
            pg = cfg.postgres.model_copy(update={k: v for k, v in
                                                 {"table": table, "pair_column": pair_column, "columns": mapping,
                                                  "tz": zones.default}.items()
                                                 if v is not None})
            report = ingest_database(source, cfg.store, pg, policy=policy, pairs=split_list(pairs), quiet=json_,
                                     zones=dict(zones.pairs) or None)
        else:
            report = do_ingest(source, cfg.store, fmt=fmt, policy=policy, tz=zones, pairs=split_list(pairs),
                               column_map=mapping)
        if json_:
            emit_json(report.to_dict())
        elif not database:
            for line in report.lines():
                info(line)


def ingest_database(url: str, store: Path, pg=None, *, policy: str = "strict", tz: str | None = None,
                    pairs: list[str] | None = None, quiet: bool = False, zones: dict[str, str] | None = None):
    """Ingest a PostgreSQL source with the [postgres] layout, a line per pair-month read."""
    from bqx.bars.timezones import ZoneMap
    from bqx.config import PostgresConfig
    from bqx.connect.sources import IngestOptions, open_source

    pg = pg or PostgresConfig()

    def on_month(pair: str, month: str, status: str, rows: int) -> None:
        if status != "unchanged" and not quiet:
            info(f"  {pair} {month}: {rows:,} bars {status}" if status == "read" else f"  {pair} {month}: {status}")

    options = IngestOptions(policy=policy, tz=ZoneMap(tz or pg.tz, zones or {}), pairs=pairs, column_map=pg.columns,
                            table=pg.table, pair_column=pg.pair_column, on_month=on_month)
    report = open_source(url).ingest(store, options)
    if not quiet:
        for line in report.lines():
            info(line)
    return report
