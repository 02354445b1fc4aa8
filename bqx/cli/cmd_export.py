"""`bqx export`: the training-ready dataset (train/validation/test Parquet, scaler, metadata)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from bqx.cli.common import ConfigOpt, JsonOpt, StoreOpt, config_from, emit_json, info, out, split_list
from bqx.errors import UsageError


def _fractions(text: str | None) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        parts = tuple(float(x) for x in text.replace(" ", "").split(","))
    except ValueError:
        raise UsageError(f"--split {text!r} is not three comma-separated fractions", hint="e.g. --split 0.8,0.1,0.1") from None
    if len(parts) != 3:
        raise UsageError(f"--split needs three fractions (train, validation, test), got {len(parts)}")
    return parts  # type: ignore[return-value]


def _targets(targets: list[str] | None, labels_only: bool) -> list[str] | None:
    chosen = split_list(targets)
    if labels_only:
        if chosen:
            raise UsageError("--labels-only and --targets select the targets twice; give one of them")
        return ["labels"]
    return chosen or None


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export_cmd(
        to: str = typer.Option(..., "--to", help="Destination: a local directory, s3://BUCKET/PREFIX, or postgresql://USER@HOST:PORT/DB[?table=SCHEMA.PREFIX] (docs/POSTGRESQL.md)."),
        store: Optional[str] = StoreOpt,
        config: Optional[Path] = ConfigOpt,
        split: Optional[str] = typer.Option(None, "--split", help="Train,validation,test fractions of the common date range by time (default 0.8,0.1,0.1)."),
        train_end: Optional[str] = typer.Option(None, "--train-end", help="First timestamp after training (ISO, UTC); replaces --split."),
        val_end: Optional[str] = typer.Option(None, "--val-end", help="First timestamp of the test split (ISO, UTC); with --train-end."),
        purge: Optional[int] = typer.Option(None, "--purge", min=0, help="Bars dropped before each boundary (default: the largest target horizon, 75)."),
        embargo: Optional[int] = typer.Option(None, "--embargo", min=0, help="Bars dropped after each boundary (default 1440)."),
        scaler: Optional[str] = typer.Option(None, "--scaler", help="global (default, across pairs) or per-pair."),
        normalize: bool = typer.Option(False, "--normalize", help="Write values transformed by the scaler instead of raw ones."),
        precision: Optional[str] = typer.Option(None, "--precision", help="float32 (default) or float64."),
        scale_targets: bool = typer.Option(False, "--scale-targets", help="Fit (and with --normalize transform) the targets too."),
        scale_kinds: Optional[str] = typer.Option(None, "--scale-kinds", help="Column kinds to scale (default continuous,level; also binary, categorical, ordinal, count, cyclic)."),
        pairs: Optional[list[str]] = typer.Option(None, "--pairs", help="Only these pairs (repeat or comma-separate)."),
        families: Optional[list[str]] = typer.Option(None, "--families", help="Only these feature families (targets are always exported)."),
        drop_empty: bool = typer.Option(True, "--drop-empty/--keep-empty", help="Leave out feature columns with no value for any exported pair (default), or keep them as all-NULL columns. Either way empty and constant columns are listed per pair and split in metadata/columns.json."),
        cv: Optional[str] = typer.Option(None, "--cv", help="Folds over the pool before the test boundary: walk-forward:K or cpcv:N,k (cv_group, cv_reach, cv_embargo columns, metadata/folds.json, scalers/cv/; docs/TRAINING.md)."),
        targets: Optional[list[str]] = typer.Option(None, "--targets", help="Only these targets and labels: targets, labels, a column or a label horizon such as lbl_tb_h30 (repeat or comma-separate; default all)."),
        labels_only: bool = typer.Option(False, "--labels-only", help="Export the triple-barrier labels (with their spans and weights) and no fixed-horizon targets: folds then purge by t1."),
        no_validate: bool = typer.Option(False, "--no-validate", help="Export even without a passing validation (recorded in the metadata)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace a finished export in the destination (only the files it recorded are removed)."),
        s3_endpoint: Optional[str] = typer.Option(None, "--s3-endpoint", help="S3 endpoint URL (default: AWS_ENDPOINT_URL)."),
        s3_region: Optional[str] = typer.Option(None, "--s3-region", help="S3 region (default: AWS_REGION or us-east-1)."),
        json_: bool = JsonOpt,
        report: Optional[Path] = typer.Option(None, "--report", help="Also write the result as JSON to this file."),
    ) -> None:
        """Write train/validation/test Parquet (hive partitioned), a scaler fitted on training rows, and metadata."""
        from bqx.export import S3Options, export
        from bqx.export.scaler import SCALED_KINDS
        from bqx.core.declaration import KINDS

        kinds = tuple(split_list([scale_kinds]) or SCALED_KINDS) if scale_kinds else SCALED_KINDS
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            raise UsageError(f"--scale-kinds: unknown kinds {bad}; kinds are {', '.join(KINDS)}")

        export_flags = {"split": _fractions(split), "purge": purge, "embargo": embargo, "precision": precision,
                        "scaler": scaler}
        flags = {
            "store": store,
            "pairs": split_list(pairs),
            "export": {k: v for k, v in export_flags.items() if v is not None} or None,
        }
        cfg, _ = config_from(config, **flags)
        cfg.family_params()  # imports plugin families so their columns are known
        ec = cfg.export
        result = export(
            cfg.store, to, pairs=list(cfg.pairs) if cfg.pairs else None, families=split_list(families),
            split=ec.split, train_end=train_end, val_end=val_end, purge=ec.purge, embargo=ec.embargo,
            scaler=ec.scaler, normalize=normalize, precision=ec.precision, scale_targets=scale_targets,
            scale_kinds=kinds, no_validate=no_validate, s3=S3Options(endpoint=s3_endpoint, region=s3_region),
            progress=None if json_ else info, drop_empty=drop_empty, cv=cv, targets=_targets(targets, labels_only),
            overwrite=overwrite,
        )
        data = result.to_dict()
        if report is not None:
            report.write_text(json.dumps(data, indent=2, default=str))
        if json_:
            emit_json(data)
            return
        table = Table(title=f"export {result.export_id} -> {result.destination}")
        table.add_column("split")
        table.add_column("pairs", justify="right")
        table.add_column("rows", justify="right")
        for name, by_pair in result.rows.items():
            table.add_row(name, str(len(by_pair)), f"{sum(by_pair.values()):,}")
        out.print(table)
        out.print(f"boundaries: {', '.join(f'{k} {v}' for k, v in result.boundaries.items())}; "
                  f"{result.files} files in {result.seconds:.1f} s")
        for line in column_summary(result):
            out.print(line, markup=False)
        if not result.validated:
            out.print("[yellow]exported without a passing validation (--no-validate, recorded in metadata)[/]")
        for c in result.checks:
            mark = {True: "ok", False: "FAILED", None: "skipped"}[c["passed"]]
            out.print(f"  {c['name']}: {mark} — {c['detail']}", markup=False)


def _names(cols: list[str], n: int = 6) -> str:
    return ", ".join(cols[:n]) + (f", ... (+{len(cols) - n})" if len(cols) > n else "")


def column_summary(result) -> list[str]:
    """The summary's column lines; every number from `result.column_counts` (bqx.export.columns.summary_counts)."""
    c = result.column_counts
    if not c:  # a sink that takes no census (PostgreSQL)
        return [f"columns: {result.columns} exported, {result.scaled} fitted by the scaler"]
    lines = [f"columns: {c['exported']} exported of {c['selected']} selected ({c['dropped']} dropped: no value for any pair); "
             f"{c['scaled_kinds']} of scaled kinds = {c['fitted']} fitted + {c['no_training_values']} without training "
             f"values; {c['not_scaled']} not scaled"]
    if result.dropped:
        lines.append(f"  dropped (all NULL in the store for every pair): {_names(result.dropped)}")
    if c["empty_somewhere"]:
        lines.append(f"  empty: {c['empty_somewhere']} columns have no value for some pair or split, "
                     f"{c['empty_everywhere']} for all: {_names(result.empty_everywhere)}"
                     if result.empty_everywhere else
                     f"  empty: {c['empty_somewhere']} columns have no value for some pair or split, none for all")
    if c["constant_somewhere"]:
        lines.append(f"  constant: {c['constant_somewhere']} columns hold one value for some pair or split "
                     f"({c['constant_everywhere']} for all)")
    if c["empty_somewhere"] or c["constant_somewhere"]:
        lines.append("  per pair and split: metadata/columns.json")
    return lines
