"""`bqx features`: the feature catalog."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from bqx.catalog import catalog, markdown
from bqx.cli.common import JsonOpt, emit_json, out, split_list


def register(app: typer.Typer) -> None:
    @app.command("features")
    def features(
        family: Optional[list[str]] = typer.Option(None, "--family", "-f", help="Only these families (repeat or comma-separate)."),
        json_: bool = JsonOpt,
        md: bool = typer.Option(False, "--markdown", help="Print the Markdown feature reference (docs/FEATURES_CATALOG.md)."),
    ) -> None:
        """List every feature: name, family, stage, kind, warm-up, context, lookahead, description."""
        rows = catalog(split_list(family))
        if json_:
            emit_json(rows)
            return
        if md:
            out.print(markdown(rows), markup=False, end="")
            return
        table = Table(title=f"{len(rows)} columns", show_lines=False)
        for col in ("name", "family", "stage", "kind", "warm-up", "context", "lookahead", "description"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(r["name"], r["family"], f"{r['stage_id']} {r['stage']}", r["kind"], str(r["warmup"]),
                          str(r["context"]), str(r["lookahead"]), r["description"])
        out.print(table)
