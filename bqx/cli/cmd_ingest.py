"""`bqx ingest`: read, validate and store bars."""

from __future__ import annotations

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
            help="histdata, dukascopy, metatrader, csv (generic / sample dialect) or parquet; detected when omitted."),
        policy: str = typer.Option(
            "strict", "--policy",
            help="strict: stop at the first bad row, naming file, line, column, value and rule. "
                 "repair: drop or fix what can be, quarantine every rejected row with its reason."),
        tz: Optional[str] = typer.Option(
            None, "--tz", help="Time zone of naive timestamps, e.g. UTC, Europe/London, Etc/GMT-2 "
                               "(required for MetaTrader and generic files without an offset)."),
        pairs: Optional[list[str]] = typer.Option(None, "--pairs", help="Only these pairs (default: every pair found)."),
        config: Optional[Path] = ConfigOpt,
        json_: bool = JsonOpt,
    ) -> None:
        """Read bars, validate them before anything is computed, and write them to the store."""
        from bqx.bars.ingest import ingest as do_ingest
        from bqx.errors import UsageError

        if policy not in ("strict", "repair"):
            raise UsageError(f"--policy must be strict or repair, got {policy!r}")
        cfg, _ = config_from(config, store=store)
        report = do_ingest(source, cfg.store, fmt=fmt, policy=policy, tz=tz, pairs=split_list(pairs))
        if json_:
            emit_json(report.to_dict() if hasattr(report, "to_dict") else report)
        else:
            info(str(report))
