"""`bqx status`: the stage table from the manifest, during or after a run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from bqx.store.backend import store_exists
from bqx.cli.common import ConfigOpt, JsonOpt, StoreOpt, config_from, emit_json, out

_STYLE = {"done": "green", "failed": "red", "interrupted": "red", "running": "yellow", "partial": "yellow", "passed": "green"}


def _with_validation(rows: list[dict], store: Path) -> None:
    """Stage 2.6 shows the store's latest validation: passed, failed, or stale when the store changed since."""
    from bqx.validate import latest_validation

    latest = latest_validation(store)
    for row in rows:
        if row["id"] == "2.6" and latest is not None:
            verdict = "passed" if latest.get("passed") else "failed"
            if not latest.get("current"):
                verdict += " (stale)"
            row["status"] = verdict
            row["seconds"] = latest.get("seconds") or row.get("seconds", 0.0)


def register(app: typer.Typer) -> None:
    @app.command("status")
    def status(store: Optional[str] = StoreOpt, config: Optional[Path] = ConfigOpt, json_: bool = JsonOpt) -> None:
        """Print the stage table: id, name, status, partitions done/total, features, rows, duration, failures."""
        from bqx.engine import status as engine_status
        from bqx.errors import UsageError

        cfg, _ = config_from(config, store=store)
        if not store_exists(cfg.store):
            raise UsageError(f"no store at {cfg.store}", hint="Run `bqx run` first, or pass --store DIR.")
        rows = engine_status(cfg.store)
        _with_validation(rows, cfg.store)
        if json_:
            emit_json(rows)
            return
        table = Table(title=f"store {cfg.store}")
        for col in ("id", "stage", "status", "parts", "features", "rows", "seconds", "failures"):
            table.add_column(col, justify="right" if col in ("features", "rows", "seconds") else "left",
                             no_wrap=col != "failures", overflow="fold")
        for r in rows:
            style = _STYLE.get(r["status"], "")
            status_text = f"[{style}]{r['status']}[/]" if style else r["status"]
            total = f"{r['done']}/{r['total']}" if r.get("total") else ""
            fails = r.get("failures") or []
            fail_text = f"{len(fails)}: {fails[0]['pair'] or ''} {fails[0]['month']}" if fails else ""
            table.add_row(r["id"], r["name"], status_text, total, str(r["features"] or ""),
                          f"{r['rows']:,}" if r["rows"] else "", f"{r['seconds']:.1f}" if r["seconds"] else "",
                          fail_text)
        out.print(table)
