"""`bqx report`: one self-contained HTML page of a store, to look at."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bqx.cli.common import STATE, ConfigOpt, JsonOpt, StoreOpt, config_from, console, emit_json, info, out


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report_cmd(
        store: Optional[str] = StoreOpt,
        config: Optional[Path] = ConfigOpt,
        out_: Path = typer.Option(Path("report.html"), "--out", "-o", help="The HTML file to write."),
        export: Optional[str] = typer.Option(None, "--export",
                                             help="An export directory to include (default: export/ in or beside the store)."),
        json_: bool = JsonOpt,
    ) -> None:
        """Write one HTML page of the store: run, coverage, currency strength, triangles, validation, features, export.

        Everything is inlined (plotly.js and the data): the file opens offline in any browser.
        """
        from bqx.report import build_report

        cfg, _ = config_from(config, store=store)
        cfg.family_params()  # imports plugin families so their columns are known
        quiet = json_ or STATE.quiet
        result = build_report(cfg.store, out_, export=export,
                              progress=None if quiet else (lambda s: console.print(f"[dim]{s}[/]")))
        if json_:
            emit_json({"path": str(result.path), "bytes": result.bytes, "seconds": round(result.seconds, 2),
                       "sections": result.sections, "notes": result.notes, "timings": result.timings})
            return
        for sec, notes in result.notes.items():
            for n in notes:
                info(f"[yellow]{sec}:[/] {n}")
        out.print(f"wrote {result.path} ({result.bytes / 1e6:.1f} MB, {sum(result.sections.values())} charts) "
                  f"in {result.seconds:.1f} s")
