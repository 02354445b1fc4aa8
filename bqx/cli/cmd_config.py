"""`bqx config show`: the resolved configuration and where each value came from."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from bqx.cli.common import ConfigOpt, JsonOpt, emit_json, out
from bqx.config import describe, load_config

app = typer.Typer(help="Inspect the configuration (bqx.toml, BQX_* environment, defaults).", no_args_is_help=True)


@app.command("show")
def show(config: Optional[Path] = ConfigOpt, json_: bool = JsonOpt) -> None:
    """Print every setting with its value and its source (flag, environment, file or default)."""
    cfg, origins = load_config(config)
    rows = describe(cfg, origins)
    if json_:
        emit_json({k: {"value": v, "source": s} for k, v, s in rows})
        return
    table = Table(title="bqx configuration (precedence: flag > environment > file > default)")
    table.add_column("setting")
    table.add_column("value", overflow="fold")
    table.add_column("source")
    for key, value, source in rows:
        table.add_row(key, str(value), source)
    out.print(table)
