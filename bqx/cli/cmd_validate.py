"""`bqx validate`: the causality validation of a store (stage 2.6)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import typer

from bqx.store.backend import backend_for
from bqx.cli.common import STATE, ConfigOpt, JsonOpt, StoreOpt, config_from, console, emit_json, info, out, split_list
from bqx.errors import TaskError, UsageError


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate_cmd(
        store: Optional[str] = StoreOpt,
        config: Optional[Path] = ConfigOpt,
        families: Optional[list[str]] = typer.Option(None, "--families", "-f",
                                                     help="Only these families (repeat or comma-separate)."),
        samples: Optional[int] = typer.Option(None, "--samples", "-n", min=0,
                                              help="Timestamps per checked partition (default 6)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the sampled partitions, timestamps and perturbations."),
        partitions: Optional[int] = typer.Option(None, "--partitions", min=0,
                                                 help="(pair, month) partitions per per-pair family (default 3)."),
        cuts: Optional[int] = typer.Option(None, "--cuts", min=0,
                                           help="Sweep cut points per checked partition and at least per family "
                                                "(default 500; 0 turns the sweep off). See docs/VALIDATION.md for "
                                                "the detection probability."),
        json_: bool = JsonOpt,
        report: Optional[Path] = typer.Option(None, "--report", help="Also write the JSON report to FILE."),
        export: Optional[str] = typer.Option(
            None, "--export",
            help="Instead, check an export (path or s3:// URL): complete, splits chronological with one boundary, "
                 "purged and embargoed, scaler reproducible from training rows only."),
    ) -> None:
        """Check that no feature uses the future: static declarations, truncation, perturbation, sweep, month boundaries.

        Exits 0 when every family passes, 1 when a check fails. With --export, checks an export's splits and scaler.
        """
        if export is not None:
            _check_export(export, store, json_, report)
            return
        cfg, root = _store(config, store)
        save = _writable(root)
        if not save and report is None:
            raise UsageError(f"store {root} is read-only, so the report cannot be saved in it",
                             hint="Add --report FILE to write it elsewhere.")
        result = run_validation(root, families=split_list(families), samples=samples or cfg.validate_.samples,
                                seed=seed if seed else cfg.validate_.seed, partitions=partitions, json_=json_,
                                cuts=cuts, save=save)
        if report is not None:
            from bqx.validate.report import write_report

            write_report(report, result)
            info(f"report written to {report}")
        if json_:
            emit_json(result.to_dict())
        if not result.passed:
            raise TaskError(result.summary())


def _check_export(url: str, store: Optional[str], json_: bool, report: Optional[Path]) -> None:
    """`bqx validate --export`: the Fitting and Splits checks of PIPELINE.md §6 on an export."""
    import json

    from rich.table import Table

    from bqx.io import atomic_write_text
    from bqx.export.checks import check_export

    results = check_export(url, store=store)
    data = {"export": url, "passed": all(r.passed is not False for r in results), "checks": [r.to_dict() for r in results]}
    if report is not None:
        atomic_write_text(report, json.dumps(data, indent=2, default=str))
    if json_:
        emit_json(data)
    else:
        table = Table(title=f"export checks: {url}")
        for col in ("check", "result", "detail"):
            table.add_column(col, overflow="fold")
        for r in results:
            verdict = {True: "[green]pass[/]", False: "[bold red]FAIL[/]", None: "[dim]skipped[/]"}[r.passed]
            table.add_row(r.name, verdict, r.detail + ("; " + "; ".join(r.failures) if r.failures else ""))
        out.print(table)
    if not data["passed"]:
        failed = [r.name for r in results if r.passed is False]
        raise TaskError(f"export {url} fails {len(failed)} check(s): {', '.join(failed)}")


def run_validation(root: Path | str, *, families=None, samples=None, seed=0, partitions=None, json_=False, cuts=None,
                   save=True):
    """Validate with progress lines, print the table and the verdict (unless JSON); returns the report."""
    from bqx.validate import validate
    from bqx.validate.report import LATEST, PARTIAL, VALIDATION_DIR

    if not STATE.verbose:
        logging.getLogger("bqx").setLevel(logging.ERROR)
    say = (lambda s: None) if (json_ or STATE.quiet) else (lambda s: console.print(f"[dim]{s}[/]"))
    result = validate(root, families, samples, seed, partitions=partitions, progress=say, cuts=cuts, save=save)
    if not json_:
        out.print(result.table())
        if save:  # a validation of some families goes to partial.json, never replacing the latest complete one
            name = LATEST if result.complete else PARTIAL
            info(f"report saved to {backend_for(root).join(f'{VALIDATION_DIR}/{name}')}"
                 + ("" if result.complete else f" (only some families: {LATEST} keeps the latest complete one)"))
        if result.passed:
            out.print(f"[green]{result.summary()}[/]")
    return result


def _writable(root: Path | str) -> bool:
    """Whether the store can take the validation report (false on a read-only mount or without permission;
    a store on object storage: true, a refused PUT is reported when the report is saved)."""
    import os
    import tempfile

    from bqx.store.backend import is_url
    from bqx.validate.report import VALIDATION_DIR

    if is_url(root):
        return True
    folder = root / VALIDATION_DIR
    try:
        folder.mkdir(exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return not os.path.isdir(root)


def _store(config: Path | None, store: str | None) -> tuple[Any, Path | str]:
    from bqx.store.backend import store_exists
    from bqx.store.layout import store_root

    cfg, _ = config_from(config, store=store)
    root = store_root(cfg.store)  # a Path, or the URL of a store on object storage
    if not store_exists(root):
        raise UsageError(f"store {root} does not exist", hint="Run `bqx run --store DIR` first, or pass --store.")
    return cfg, root
