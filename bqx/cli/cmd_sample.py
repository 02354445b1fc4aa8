"""`bqx sample`: write the built-in sample market as files."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bqx.cli.common import JsonOpt, emit_json, info, month_arg, split_list


def register(app: typer.Typer) -> None:
    @app.command("sample")
    def sample(
        out: Path = typer.Option(..., "--out", help="Directory to write one file per pair into (created if missing)."),
        pairs: Optional[list[str]] = typer.Option(None, "--pairs", help="Pairs to write, e.g. EURUSD,USDJPY (default: all 28)."),
        start: str = typer.Option("2024-07", "--start", help="First month, YYYY-MM."),
        months: int = typer.Option(2, "--months", min=1, help="Number of months."),
        seed: int = typer.Option(0, "--seed", help="Generator seed; the same seed gives the same bars."),
        fmt: str = typer.Option("parquet", "--format", help="parquet, or csv (a dialect `bqx ingest` reads as is)."),
        json_: bool = JsonOpt,
    ) -> None:
        """Write the seeded, deterministic sample market (28 pairs by default) for a range of months."""
        from bqx.bars.sample import write_sample
        from bqx.errors import UsageError

        if fmt not in ("parquet", "csv"):
            raise UsageError(f"--format must be parquet or csv, got {fmt!r}")
        start = month_arg("--start", start)
        chosen = split_list(pairs)
        paths = write_sample(out, pairs=chosen, start=start, months=months, seed=seed, fmt=fmt)
        if json_:
            emit_json({"out": str(out), "format": fmt, "start": start, "months": months, "seed": seed,
                       "files": [str(p) for p in paths]})
            return
        info(f"wrote {len(paths)} {fmt} files for {months} month(s) from {start} to {out}")
