"""What every command shares: the console, output modes, configuration loading."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping

import typer
from rich.console import Console

from bqx.config import Config, load_config

console = Console(stderr=True, highlight=False)
out = Console(highlight=False, soft_wrap=True)
if not out.is_terminal and "COLUMNS" not in os.environ:
    out.width = 160  # piped or redirected: tables (status, features, signal) are not squeezed into 80 columns


class State:
    verbose: bool = False
    quiet: bool = False
    store: str | None = None


STATE = State()

StoreOpt = typer.Option(None, "--store", help="Store: a directory, or s3://BUCKET/PREFIX (default: ./bqx-store, or `store` in bqx.toml).",
                        show_default=False)
ConfigOpt = typer.Option(None, "--config", help="Configuration file (default: ./bqx.toml if present).",
                         exists=False, show_default=False)
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON to stdout instead of tables.")


def config_from(config_file: Path | None, **flags: Any) -> tuple[Config, dict[str, str]]:
    """Configuration from file, environment and the command's flags (flags win)."""
    cfg, origins = load_config(config_file, {k: v for k, v in flags.items() if v is not None})
    STATE.store = cfg.store  # where an error message may look for the file it names
    return cfg, origins


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def info(message: str) -> None:
    if not STATE.quiet:
        console.print(message)


def split_list(values: list[str] | None) -> list[str] | None:
    """Accept `--pairs EURUSD,GBPUSD` as well as repeated `--pairs EURUSD --pairs GBPUSD`."""
    if not values:
        return None
    return [v for item in values for v in item.replace(" ", ",").split(",") if v]


def month_arg(option: str, value: str | None) -> str | None:
    """A YYYY-MM command-line value, checked (a usage error names the option and the value)."""
    if value is None:
        return None
    from bqx.engine.partitions import parse_month
    from bqx.errors import UsageError

    try:
        return parse_month(value)
    except ValueError as exc:
        raise UsageError(f"{option} {value!r}: {exc}", hint="Write the month as YYYY-MM, e.g. 2024-07.") from None


def fmt_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())
