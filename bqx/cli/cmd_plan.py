"""`bqx plan`: the DAG before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from bqx.store.backend import store_exists
from bqx.store.layout import bars_stats
from bqx.cli.common import ConfigOpt, JsonOpt, StoreOpt, config_from, emit_json, out, split_list


def register(app: typer.Typer) -> None:
    @app.command("plan")
    def plan(
        store: Optional[str] = StoreOpt,
        pairs: Optional[list[str]] = typer.Option(None, "--pairs", help="Pairs (default: all in the store, or all 28)."),
        start: Optional[str] = typer.Option(None, "--start", help="First month YYYY-MM."),
        end: Optional[str] = typer.Option(None, "--end", help="Last month YYYY-MM, included."),
        stages: Optional[list[str]] = typer.Option(None, "--stages", help="Only these stages and what they read."),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Workers the estimate assumes."),
        config: Optional[Path] = ConfigOpt,
        json_: bool = JsonOpt,
    ) -> None:
        """Show stages, dependencies, task counts, contexts, the critical path and the disk space a run needs."""
        from bqx.engine import plan as engine_plan

        cfg, _ = config_from(config, store=store, pairs=split_list(pairs), start=start, end=end, workers=workers)
        has_bars = bool(bars_stats(cfg.store)) if store_exists(cfg.store) else False
        source = None if has_bars else ("sample" if cfg.source == "sample" else None)
        data = engine_plan(cfg.store, source=source, pairs=list(cfg.pairs) if cfg.pairs else None, start=cfg.start,
                           end=cfg.end, stages=split_list(stages), workers=cfg.workers, params=cfg.family_params())
        if json_:
            emit_json(data)
            return
        table = Table(title=f"plan: {len(data.get('pairs', []))} pairs x {len(data.get('months', []))} months, "
                            f"{data['tasks']} tasks, {data['to_run']} to run")
        for col in ("id", "stage", "unit", "features", "context", "tasks", "to run", "est. s"):
            table.add_column(col, overflow="fold", justify="left" if col in ("id", "stage", "unit") else "right")
        deps = []
        for st in data["stages"]:
            if "families" not in st:
                note = {"check": "check: bqx validate", "dataset": "dataset: bqx export", "view": "view (on load)",
                        "source": "source"}.get(st["unit"], st.get("status", ""))
                table.add_row(st["id"], st["name"], note, "", "", "", "", "")
                continue
            table.add_row(st["id"], st["name"], "month" if st["unit"] == "month" else "pair x month",
                          str(st.get("features", "")), str(st.get("context", "")),
                          str(st.get("tasks", "")), str(st.get("to_run", "")), f"{st.get('seconds', 0):.1f}")
            deps.append(f"{st['name']} <- {', '.join(st.get('inputs', []))}"
                        + (f"  [{', '.join(st['families'])}]" if st["families"] != [st["name"]] else ""))
        out.print(table)
        out.print("dependencies (stage <- inputs  [families]):", markup=False)
        for line in deps:
            out.print(f"  {line}", markup=False)
        cp = data["critical_path"]
        how = "measured" if cp["measured"] else "estimated"
        out.print(f"critical path ({how}): {' -> '.join(cp['stages'])}, about {cp['seconds']:.0f} s")
        out.print(f"disk space needed: about {data['disk_bytes'] / 1e6:,.0f} MB")
