"""`bqx features`: the feature catalog."""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from bqx.catalog import catalog, markdown
from pathlib import Path

from bqx.cli.common import ConfigOpt, JsonOpt, config_from, emit_json, out, split_list


def register(app: typer.Typer) -> None:
    @app.command("features")
    def features(
        family: Optional[list[str]] = typer.Option(None, "--family", "-f", help="Only these families (repeat or comma-separate)."),
        json_: bool = JsonOpt,
        md: bool = typer.Option(False, "--markdown", help="Print the Markdown feature reference (docs/FEATURES_CATALOG.md)."),
        config: Optional[Path] = ConfigOpt,
    ) -> None:
        """List every feature: name, family, stage, kind, warm-up, context, lookahead, description (plugins too)."""
        cfg, _ = config_from(config)
        cfg.family_params()  # imports the plugin modules of bqx.toml, so their families are listed
        rows = catalog(split_list(family))
        if json_:
            emit_json(rows)
            return
        if md:
            out.print(markdown(rows), markup=False, end="")
            return
        families = {r["family"]: r for r in rows}
        table = Table(title=f"{len(rows)} columns in {len(families)} families (context and lookahead in rows; "
                            "--json or --markdown for everything)", show_lines=False, expand=True)
        table.add_column("name", no_wrap=True)
        table.add_column("family", no_wrap=True)
        table.add_column("kind", no_wrap=True)
        table.add_column("warm-up", justify="right", no_wrap=True)
        table.add_column("description", ratio=1, overflow="fold")
        for r in rows:
            table.add_row(r["name"], r["family"], r["kind"], str(r["warmup"]), r["description"])
        out.print(table)
        for name, r in families.items():
            out.print(f"{name}: stage {r['stage_id']} {r['stage']}, context {r['context']}, lookahead {r['lookahead']}"
                      + (", view (computed on load)" if r["view"] else "") + (", cross-pair" if r["cross_pair"] else ""))
