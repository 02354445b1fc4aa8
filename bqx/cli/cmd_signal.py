"""`bqx signal`: which features carry information (Spearman IC per pair and month on training rows)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from bqx.cli.common import ConfigOpt, JsonOpt, StoreOpt, config_from, emit_json, info, out, split_list

BY = ("mean_ic", "t_stat", "ir")


def register(app: typer.Typer) -> None:
    @app.command("signal")
    def signal_cmd(
        store: Optional[str] = StoreOpt,
        config: Optional[Path] = ConfigOpt,
        pairs: Optional[list[str]] = typer.Option(None, "--pairs", help="Only these pairs (repeat or comma-separate)."),
        start: Optional[str] = typer.Option(None, "--start", help="First month YYYY-MM (default: the first)."),
        end: Optional[str] = typer.Option(None, "--end", help="Last month YYYY-MM, included (default: the last)."),
        families: Optional[list[str]] = typer.Option(None, "--families", help="Only these feature families (targets are always all)."),
        split: str = typer.Option("train", "--split", help="train (the export's training rows, purged; default) or all."),
        top: int = typer.Option(20, "--top", min=1, help="Print the N strongest (feature, target) rows."),
        by: str = typer.Option("mean_ic", "--by", help="Rank by |mean_ic| (default), |t_stat| or |ir|."),
        workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Worker processes (default: one per core)."),
        importance: bool = typer.Option(False, "--importance", help="Also permutation importance of correlated-feature clusters under purged walk-forward folds (LightGBM)."),
        sample: int = typer.Option(100_000, "--sample", min=1000, help="Rows sampled for --importance."),
        folds: int = typer.Option(4, "--folds", min=2, help="Walk-forward test groups for --importance."),
        target: Optional[str] = typer.Option(None, "--target", help="Target for --importance (default: the longest fixed horizon)."),
        json_: bool = JsonOpt,
    ) -> None:
        """Write <store>/signal/ic.parquet (feature, target, pair, month, ic, n) and its summaries; print the strongest features."""
        from bqx.errors import UsageError
        from bqx.signal import compute_signal
        from bqx.signal.summary import strongest

        if by not in BY:
            raise UsageError(f"--by must be one of {', '.join(BY)}, got {by!r}")
        flags = {"store": store, "pairs": split_list(pairs), "start": start, "end": end}
        cfg, _ = config_from(config, **flags)
        cfg.family_params()  # imports plugin families so their columns are known
        ec = cfg.export
        if importance:
            from bqx.signal.importance import lightgbm

            lightgbm()  # a missing library fails before the IC pass
        t0 = time.perf_counter()

        def progress(done: int, total: int, pair: str) -> None:
            if json_:
                return
            spent = time.perf_counter() - t0
            eta = spent / done * (total - done)
            info(f"[{done}/{total}] {pair} done, {spent:.0f} s elapsed, ETA {eta:.0f} s")

        result = compute_signal(cfg.store, pairs=list(cfg.pairs) if cfg.pairs else None, families=split_list(families),
                                start=cfg.start, end=cfg.end, split=split, fractions=ec.split, purge=ec.purge,
                                embargo=ec.embargo, workers=workers or cfg.workers,
                                sample_rows=sample if importance else 0, progress=progress)
        data: dict[str, Any] = result.to_dict(top)
        data["top"] = strongest(result.features, top, by).to_dicts()
        imp = None
        if importance:
            from bqx.signal.importance import permutation_importance

            if not json_:
                info(f"permutation importance on a sample of {sample:,} rows, {folds} walk-forward folds")
            imp = permutation_importance(result, folds=folds, target=target, workers=workers or cfg.workers)
            data["importance"] = imp.to_dict()
        if json_:
            emit_json(data)
            return
        _print(result, strongest(result.features, top, by), by)
        if imp is not None:
            _print_importance(imp, top)


def _fmt(v: Any, spec: str = ".4f") -> str:
    return "" if v is None else format(v, spec)


def _print(result: Any, rows: Any, by: str) -> None:
    cells = result.cells
    table = Table(title=f"strongest features by |{by}| ({result.split} rows; {cells.height:,} cells, "
                        f"{cells['ic'].null_count():,} NULL)")
    table.add_column("feature", no_wrap=True)
    table.add_column("target", no_wrap=True)
    for col in ("mean IC", "std", "IR", "sign", "t", "cells"):
        table.add_column(col, justify="right")
    for r in rows.iter_rows(named=True):
        table.add_row(r["feature"], r["target"], _fmt(r["mean_ic"]), _fmt(r["std_ic"]), _fmt(r["ir"], ".2f"),
                      _fmt(r["sign_share"], ".2f"), _fmt(r["t_stat"], ".1f"), str(r["cells"]))
    out.print(table)
    out.print("IC = Spearman per (pair, month); std over cells (ddof 1); IR = mean/std; sign = share of cells with the "
              "mean's sign; t over months (pairs averaged per month first)")
    t = result.timings
    out.print(f"{result.partitions} partitions, {result.rows:,} training rows, {len(result.targets)} targets, "
              f"{result.features['feature'].n_unique()} features in {result.seconds:.1f} s with {result.workers} worker(s) "
              f"(CPU s: read {t['read']:.1f}, rows {t['rows']:.1f}, IC {t['ic']:.1f}); wrote {result.directory}/")
    if result.boundaries:
        out.print("training rows: ts < " + result.boundaries["train_end"] + ", purged and embargoed as the export")


def _print_importance(imp: Any, top: int) -> None:
    table = Table(title=f"permutation importance by cluster (target {imp.target}; {imp.rows:,} sampled rows, "
                        f"{imp.folds} folds, {imp.clusters} clusters of |rho| > {imp.threshold})")
    for col, just in (("cluster", "right"), ("features", "left"), ("importance", "right"), ("std", "right")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in imp.table.head(top).iter_rows(named=True):
        names = r["features"]
        shown = ", ".join(names[:4]) + (f" (+{len(names) - 4})" if len(names) > 4 else "")
        table.add_row(str(r["cluster"]), shown, _fmt(r["importance"], ".5f"), _fmt(r["std"], ".5f"))
    out.print(table)
    out.print(f"base score ({imp.metric}, out of fold): {imp.base_score:.5f}; {imp.note}")
