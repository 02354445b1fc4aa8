"""`bqx run`: the main job."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from bqx.store.backend import root_name
from bqx.cli.common import STATE, ConfigOpt, JsonOpt, StoreOpt, config_from, console, emit_json, info, out, split_list


def source_arg(cfg_source: str, store: Path, policy: str, tz, given: bool = True, postgres=None,
               pairs=None):
    """The engine's source: "sample", None for bars already in the store, or bars ingested from a path or database;
    when no source was given, "auto": the store's own bars if it holds any from another source, else the sample."""
    if not given:
        from bqx.engine.source import AUTO, resolve_source

        if resolve_source(store, AUTO) is None:
            info("source: the bars already in the store (the sample market is the default only for a new store)")
        return AUTO
    if cfg_source == "sample":
        return "sample"
    if cfg_source in ("none", "store", ""):
        return None
    from bqx.connect.schemes import is_database_url

    if is_database_url(cfg_source):
        from bqx.cli.cmd_ingest import ingest_database

        from bqx.bars.timezones import ZoneMap

        zones = ZoneMap.of(tz)
        ingest_database(cfg_source, store, postgres, policy=policy, tz=zones.default, pairs=pairs,
                        zones=dict(zones.pairs) or None)
        return None
    from bqx.bars.ingest import ingest

    report = ingest(cfg_source, store, policy=policy, tz=tz)
    for line in report.lines():
        info(line)
    return None


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        store: Optional[str] = StoreOpt,
        source: Optional[str] = typer.Option(
            None, "--source",
            help="'sample' (the built-in market), 'store' (bars already ingested), a path of bar files to ingest "
                 "first (strict validation), or postgresql://USER@HOST:PORT/DB. Default: the store's bars when it "
                 "holds ingested ones, else the sample."),
        pairs: Optional[list[str]] = typer.Option(None, "--pairs", help="Pairs, e.g. EURUSD,USDJPY (default: all)."),
        start: Optional[str] = typer.Option(None, "--start", help="First month YYYY-MM (sample default: 2024-07)."),
        end: Optional[str] = typer.Option(None, "--end", help="Last month YYYY-MM, included (sample default: 2024-08)."),
        stages: Optional[list[str]] = typer.Option(
            None, "--stages", help="Only these stages (names or ids, e.g. bqx,2.1.2) and what they read."),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Worker processes (default: one per core)."),
        executor: Optional[str] = typer.Option(
            None, "--executor", help="process (default: a local pool), serial (in-process), or dask."),
        scheduler: Optional[str] = typer.Option(
            None, "--scheduler", help="Dask scheduler address tcp://HOST:PORT (default: a local cluster)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show what would run; compute and write nothing."),
        force: bool = typer.Option(False, "--force", help="Recompute the selected stages even when up to date."),
        retry_failed: bool = typer.Option(False, "--retry-failed", help="Rerun only the tasks that failed last time."),
        validate: bool = typer.Option(False, "--validate", help="Run the causality validation as the last step."),
        forget_missing_bars: bool = typer.Option(False, "--forget-missing-bars", help="Drop the bars months whose files were deleted from the store (without it such a month is an error)."),
        verify: bool = typer.Option(False, "--verify", help="Re-hash every store file first and recompute the tasks whose files changed (a plain run trusts size and mtime)."),
        policy: str = typer.Option("strict", "--policy", help="Validation policy when --source is a path: strict or repair."),
        tz: Optional[list[str]] = typer.Option(
            None, "--tz", help="Time zone of naive timestamps when --source is a path or database: ZONE, or PAIR=ZONE "
                               "(repeatable; over [ingest.tz] of bqx.toml; names as in `bqx ingest --help`)."),
        config: Optional[Path] = ConfigOpt,
        json_: bool = JsonOpt,
    ) -> None:
        """Compute every stale feature task (the sample market into ./bqx-store when nothing is given).

        A rerun skips tasks whose code, parameters and inputs are unchanged; a killed run resumes.
        """
        from bqx.engine import run as engine_run
        from bqx.cli.progress import Progress

        cfg, origins = config_from(config, store=store, source=source, pairs=split_list(pairs), start=start, end=end,
                                   workers=workers, executor=executor, scheduler=scheduler)
        from bqx.bars.timezones import ZoneMap

        zones = ZoneMap.of(tz).over(ZoneMap.of(cfg.ingest.tz))
        src = source_arg(cfg.source, cfg.store, policy, zones, given="source" in origins, postgres=cfg.postgres,
                         pairs=list(cfg.pairs) if cfg.pairs else None)
        kwargs = dict(source=src, pairs=list(cfg.pairs) if cfg.pairs else None, start=cfg.start, end=cfg.end,
                      stages=split_list(stages), workers=cfg.workers, executor=cfg.executor, dry_run=dry_run,
                      force=force, retry_failed=retry_failed, params=cfg.family_params(), seed=cfg.seed,
                      task_retries=cfg.task_retries)
        if verify:
            kwargs["verify"] = True
        if forget_missing_bars:
            kwargs["forget_missing_bars"] = True
        if cfg.executor == "dask":
            kwargs["scheduler"] = cfg.scheduler
        info(f"store {root_name(cfg.store)}" + (" (dry run)" if dry_run else ""))
        if cfg.pairs and len(cfg.pairs) < 28:
            _coverage(cfg.pairs)
        with Progress(console, quiet=STATE.quiet or json_) as progress:
            result = engine_run(cfg.store, on_event=progress, **kwargs)
        for line in getattr(result, "reverified", [])[:10]:
            info(f"--verify: {line}; recomputed")
        report = None
        if validate and not dry_run and result.ok:
            from bqx.cli.cmd_validate import run_validation

            _summary(result) if not json_ else None
            report = run_validation(cfg.store, samples=cfg.validate_.samples, seed=cfg.validate_.seed, json_=json_)
        elif not json_:
            _summary(result)
        if json_:
            emit_json(result.to_dict() | ({"validation": report.to_dict()} if report is not None else {}))
        code = result.exit_code
        if report is not None and not report.passed:
            console.print(f"[bold red]error:[/] {report.summary()}")
            code = 1
        raise typer.Exit(code)


def _coverage(pairs) -> None:
    """Say once which currency indices and triangles a partial pair set leaves NULL."""
    from bqx.kernels.aligned import coverage

    cov = coverage(pairs)
    if cov["skipped_currencies"]:
        info(f"currency indices: {len(cov['currencies'])} of 8 currencies defined; NULL throughout for "
             f"{', '.join(cov['skipped_currencies'])} (each needs its 7 pairs)")
    if cov["skipped_triangles"]:
        info(f"triangles: {len(cov['triangles'])} of 56 evaluated; {len(cov['skipped_triangles'])} skipped "
             "(each needs its 3 pairs); `bqx run --json` lists them")


def _summary(result) -> None:
    if result.dry_run:
        plan = result.plan
        table = Table(title=f"dry run: {result.to_run} of {result.total} tasks would run")
        for col in ("stage", "tasks", "to run", "context"):
            table.add_column(col)
        for st in plan.get("stages", []):
            if st.get("tasks"):
                table.add_row(f"{st['id']} {st['name']}", str(st["tasks"]), str(st.get("to_run", "")),
                              str(st.get("context", "")))
        out.print(table)
        return
    if result.failed or result.blocked:
        table = Table(title=f"{len(result.failed)} failed, {len(result.blocked)} blocked")
        for col in ("stage", "pair", "month", "error"):
            table.add_column(col, overflow="fold")
        for row in (result.failed + result.blocked)[:30]:
            table.add_row(row.get("stage", ""), row.get("pair") or "", row.get("month", ""), str(row.get("error", "")))
        out.print(table)
        info("fix the cause, then rerun with --retry-failed (only the failures and what they blocked run again); "
             f"the log is {result.log_path}")
    info(f"{len(result.done)} tasks done, {result.skipped} up to date, {len(result.failed)} failed "
         f"in {result.seconds:.1f} s" + (f"; log {result.log_path}" if result.log_path else ""))
    if result.ok and result.done:
        info("next: `bqx status`, `bqx validate`, `bqx export --to DIR`")
