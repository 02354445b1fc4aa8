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
        source: Path = typer.Argument(..., help="A bar file, or a directory of per-pair files.", show_default=False),
        store: Optional[Path] = StoreOpt,
        fmt: Optional[str] = typer.Option(
            None, "--format",
            help="histdata, dukascopy, metatrader or generic (CSV/Parquet; the `bqx sample` CSV dialect needs no "
                 "column map); detected when omitted."),
        policy: str = typer.Option(
            "strict", "--policy",
            help="strict: stop at the first bad row, naming file, line, column, value and rule. "
                 "repair: drop or fix what can be, quarantine every rejected row with its reason."),
        tz: Optional[str] = typer.Option(
            None, "--tz", help="Time zone of naive timestamps, e.g. UTC, Europe/London, Etc/GMT-2 "
                               "(required for MetaTrader and generic files without an offset)."),
        pairs: Optional[list[str]] = typer.Option(None, "--pairs", help="Only these pairs (default: every pair found)."),
        column_map: Optional[str] = typer.Option(
            None, "--column-map",
            help='Generic files: JSON mapping canonical columns to yours, e.g. \'{"ts": "Time", "close": "Close"}\'.'),
        config: Optional[Path] = ConfigOpt,
        json_: bool = JsonOpt,
    ) -> None:
        """Read bars, validate them before anything is computed, and write them to the store."""
        from bqx.bars.ingest import ingest as do_ingest
        from bqx.errors import UsageError

        if policy not in ("strict", "repair"):
            raise UsageError(f"--policy must be strict or repair, got {policy!r}")
        cfg, _ = config_from(config, store=store)
        mapping = None
        if column_map:
            try:
                mapping = json.loads(column_map)
            except json.JSONDecodeError as exc:
                raise UsageError(f"--column-map is not valid JSON: {exc}") from None
        report = do_ingest(source, cfg.store, fmt=fmt, policy=policy, tz=tz, pairs=split_list(pairs),
                           column_map=mapping)
        if json_:
            emit_json(report.to_dict())
        else:
            for line in report.lines():
                info(line)
