"""The export (stage 2.7): splits, scaler and metadata written to a local directory or an s3:// prefix.

Order of writes, so that a reader can always tell a finished export from an unfinished one:
the completion marker `metadata/COMPLETE.json` is removed first; the feature files, the scaler
and the metadata are written (each file atomically); files a previous export recorded writing
that this one did not write again are removed (never any other file: bqx.export.target); the
split and scaler checks run; the marker is written last.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

import polars as pl

from bqx.errors import TaskError, UsageError
from bqx.export import source
from bqx.export.checks import run_checks
from bqx.export.columns import ColumnCensus, FileStats, summary_counts
from bqx.export.outcome import ExportResult, IncompleteExportError
from bqx.export.options import ExportOptions
from bqx.export.preamble import prepare_export
from bqx.export.layout import (CATALOG_JSON, CHECKS_JSON, COLUMNS_JSON, EXPORT_JSON, FILES_JSON, FORMAT, FORMAT_VERSION, MARKER,
                               SCALER_JSON, VALIDATION_JSON)
from bqx.export.scaler import GLOBAL, SCALED_KINDS, Moments, Scaler, ScalerFit, written_summary
from bqx.export.folds import CV_COLUMNS
from bqx.export.splits import SPLITS, SplitPlan
from bqx.export.target import EXTRA_FILES, ExportTargetError, TargetGuard, claims_of, cv_claims, remove_stale, still_mine
from bqx.export.writer import Destination, S3Options, open_destination, parquet_bytes


def export(
    store: Any,
    to: str,
    *,
    pairs: Sequence[str] | None = None,
    families: Sequence[str] | None = None,
    split: Sequence[float] = (0.8, 0.1, 0.1),
    train_end: str | datetime | None = None,
    val_end: str | datetime | None = None,
    purge: int | None = None,
    embargo: int = 1440,
    scaler: str = GLOBAL,
    normalize: bool = False,
    precision: str = "float32",
    scale_kinds: Sequence[str] = SCALED_KINDS,
    scale_targets: bool = False,
    no_validate: bool = False,
    s3: S3Options | None = None,
    progress: Callable[[str], None] | None = None,
    workers: int | None = None,
    drop_empty: bool = True,
    cv: str | None = None,
    targets: Sequence[str] | None = None,
    overwrite: bool = False,
) -> ExportResult:
    """Export a store's features, views and targets as train/validation/test Parquet with a scaler.

    `split` fractions cut the pairs' common date range by time unless `train_end` (and
    `val_end`) are given; `purge` defaults to the largest target horizon; `scaler` is "global"
    or "per-pair"; `precision` "float32" (default) or "float64". Refuses a store whose latest
    validation did not pass unless `no_validate`. `workers` threads (default 2, at most the
    cores) read, encode and write pairs side by side. `drop_empty` leaves out the feature columns
    the store has no value of for any exported pair (bqx.export.columns); every other empty or
    constant column is kept and listed in metadata/columns.json.
    `cv`: "walk-forward:K" or "cpcv:N,k" adds folds over the pool (bqx.export.folds); `targets`: which
    targets and labels to export (bqx.export.spans.pick_targets).
    A target holding a finished export is
    refused unless `overwrite`; files no export recorded are never deleted (bqx.export.target).
    The sink is the one registered for the target's scheme (bqx.connect.sinks): a local directory,
    s3:// or postgresql://.
    """
    from bqx.connect.sinks import open_sink
    from bqx.store.lock import read_lock

    options = ExportOptions(pairs=pairs, families=families, split=split, train_end=train_end, val_end=val_end,
                            purge=purge, embargo=embargo, scaler=scaler, normalize=normalize, precision=precision,
                            scale_kinds=scale_kinds, scale_targets=scale_targets, no_validate=no_validate, s3=s3,
                            progress=progress, workers=workers, drop_empty=drop_empty, cv=cv, targets=targets,
                            overwrite=overwrite)
    sink = open_sink(to, options)
    sink.check(options)
    with read_lock(store, "export"):
        return sink.export(store, options)


def write_dataset(store: Any, to: str, opts: ExportOptions, guard: TargetGuard) -> ExportResult:
    """The Parquet export to a local directory or an s3:// prefix (bqx.export.dataset_sink), under `guard`."""
    t0 = time.perf_counter()
    say = opts.say
    embargo, normalize, precision, drop_empty = opts.embargo, opts.normalize, opts.precision, opts.drop_empty
    scale_targets, no_validate, s3, workers, cv = opts.scale_targets, opts.no_validate, opts.s3, opts.workers, opts.cv
    pre = prepare_export(store, opts)
    sel, plan, purge, fit = pre.sel, pre.plan, pre.purge, pre.fit
    cvc = _cv_columns(cv, pre, normalize, embargo) if cv else None
    passed, report, why = pre.passed, pre.report, pre.why

    dest = open_destination(to, s3)
    claims = claims_of(sel.months, SPLITS) + (cv_claims(len(cvc.fp.splits)) if cvc is not None else [])
    deletable = guard.prepare(dest, claims)
    dtype = pre.dtype
    fitted: Scaler | None = None
    if normalize:
        say("fitting the scaler on training rows")
        fitted = _fit_pass(sel, plan, fit, workers)
    check_cols = _check_columns(fitted or fit, sel)
    blocks = _stream(sel, plan, dest, fit, fitted, dtype, check_cols, workers, say, cvc)
    written = [w for blk in blocks for w in blk.written]
    rows: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    for w in written:
        rows[w["split"]][w["pair"]] = rows[w["split"]].get(w["pair"], 0) + w["rows"]
    if fitted is None:
        for blk in blocks:  # merged in (pair, month) order, whatever order the threads finished in
            fit.merge(blk.pair, blk.moments)
    fitted = fitted or fit.result(sel.pairs)
    census = ColumnCensus(sel.columns, pre.dropped, drop_empty)
    for blk in blocks:
        for name, st in blk.stats.items():
            census.add(blk.pair, name, st)
    counts = summary_counts(census, fitted, pre.scaled)
    scaler_doc = fitted.to_dict() | {"scale_targets": scale_targets, "normalized_output": normalize}
    dest.write_bytes(SCALER_JSON, _json(scaler_doc))

    meta = _metadata(sel, plan, rows, written, fitted, report, passed, no_validate, dest,
                     precision=precision, normalize=normalize, scale_targets=scale_targets, horizon=pre.horizon)
    meta["column_report"] = {"path": COLUMNS_JSON, "counts": counts, "dropped": list(pre.dropped),
                             "empty_everywhere": census.everywhere("empty")}
    cv_files: list[str] = []
    if cvc is not None:
        cv_files = _cv_finish(cvc, blocks, fitted, sel, dest, meta, say)
        meta[EXTRA_FILES] = sorted(cv_files)  # what bqx.export.target may delete or replace next time
    meta_files = {
        EXPORT_JSON: meta,
        COLUMNS_JSON: census.to_dict() | {"counts": counts},
        CATALOG_JSON: [dict(r, scaled=r["name"] in pre.scaled, dropped=r["name"] in pre.dropped) for r in sel.catalog],
        VALIDATION_JSON: {"required": not no_validate, "no_validate": no_validate, "passed": passed,
                          "status": why, "report": report},
        FILES_JSON: written,
    }
    for rel, doc in meta_files.items():
        dest.write_bytes(rel, _json(doc))
    keep = {w["path"] for w in written} | set(meta_files) | {SCALER_JSON, CHECKS_JSON} | set(cv_files)
    stale = remove_stale(dest, deletable, keep)
    if stale:
        say(f"removed {stale} files of the previous export")

    say("checking splits and scaler")
    summaries = {w["path"]: blk.checks[w["path"]] for blk in blocks for w in blk.written}
    checks = [c.to_dict() for c in run_checks(dest, store=sel.store, require_complete=False, written=summaries)]
    dest.write_bytes(CHECKS_JSON, _json(checks))
    failed = [c for c in checks if c["passed"] is False]
    if failed:
        raise TaskError(f"export checks failed: {', '.join(c['name'] + ': ' + c['detail'] for c in failed)}; "
                        f"the export at {dest.url} is left without its completion marker.")
    if not still_mine(dest):
        raise ExportTargetError(f"another export took over {dest.url} while this one wrote; this one is left "
                                "without its completion marker", hint="Run the export again when the other one is done.")
    _write_marker(dest, meta)
    return ExportResult(
        destination=dest.url, export_id=meta["export_id"], rows=rows, files=len(written),
        boundaries={k: v.isoformat() for k, v in plan.boundaries.items()}, columns=counts["exported"],
        scaled=counts["fitted"], constant=fitted.report()["constant"], validated=not no_validate, checks=checks,
        seconds=time.perf_counter() - t0, column_counts=counts, dropped=list(pre.dropped),
        empty_everywhere=census.everywhere("empty"),
    )


@dataclass
class _Block:
    """What one pair-month wrote: file entries, its training moments and the check summaries."""

    pair: str
    month: str
    written: list[dict[str, Any]]
    moments: Moments | None
    checks: dict[str, dict[str, Any]]
    stats: dict[str, FileStats] | None = None  # split -> the written file's per-column counts, min and max
    cells: list[Any] | None = None  # --cv: (cv cell, rows, moments) of the pool rows


def _splits(plan: SplitPlan, pair: str, frame: pl.DataFrame, wanted: Sequence[str] = SPLITS) -> dict[str, pl.DataFrame]:
    """{split: rows} of one pair-month, purged and embargoed rows removed, empty splits left out."""
    frame = frame.with_columns(plan.label(pair, frame["ts"]).alias("_split"))
    parts = {s: frame.filter(pl.col("_split") == s).drop("_split") for s in wanted}
    return {s: f for s, f in parts.items() if f.height}


def _n_workers(workers: int | None) -> int:
    return max(1, workers if workers else min(2, os.cpu_count() or 1))


def _by_pair(sel: source.Selection, workers: int | None, job: Callable[[str], list[_Block]]) -> list[_Block]:
    """`job(pair)` for every pair on a thread pool (polars, Parquet, hashing and I/O release the GIL)."""
    n = _n_workers(workers)
    if n == 1 or len(sel.pairs) < 2:
        results = [job(p) for p in sel.pairs]
    else:
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="bqx-export") as pool:
            results = list(pool.map(job, sel.pairs))
    return [blk for per_pair in results for blk in per_pair]


def _fit_pass(sel: source.Selection, plan: SplitPlan, fit: ScalerFit, workers: int | None) -> Scaler:
    """The scaler from the training rows (for a normalized export, which needs it before writing)."""

    scaled = set(fit.columns)  # read only the scaled columns, of the months before the boundary
    narrow = replace(sel, features=tuple(c for c in sel.features if c in scaled),
                     targets=tuple(c for c in sel.targets if c in scaled))

    def job(pair: str) -> list[_Block]:
        out = []
        stream = source.PairStream(narrow, pair)
        for month in sel.months[pair]:
            if month_start_of(month) >= plan.train_end:
                break
            frame = stream.month(month)
            train = _splits(plan, pair, frame, ("train",)).get("train")
            if train is not None:
                out.append(_Block(pair, month, [], fit.moments_of(train), {}, {}))
        return out

    for blk in _by_pair(sel, workers, job):
        fit.merge(blk.pair, blk.moments)
    return fit.result(sel.pairs)


def _check_columns(scaler: Scaler | ScalerFit, sel: source.Selection) -> list[str]:
    """The columns whose moments the scaler.reproducible check recomputes from the written rows."""
    if isinstance(scaler, ScalerFit):
        return sorted(scaler.columns)
    return sorted({c for p in ([None] if scaler.scope == GLOBAL else sel.pairs)
                   for c, s in scaler.for_pair(p).items() if s.mean is not None})


def _stream(sel: source.Selection, plan: SplitPlan, dest: Destination, fit: ScalerFit, fitted: Scaler | None,
            dtype: Any, check_cols: list[str], workers: int | None, say: Callable[[str], None],
            cvc: Any = None) -> list[_Block]:
    """Read each pair-month once, split it, and write each split's file once; pairs run side by side."""
    lock = threading.Lock()

    def job(pair: str) -> list[_Block]:
        out = []
        for month, frame in source.PairStream(sel, pair).months():
            if cvc is not None:
                frame = cvc.add(pair, frame, (plan.label(pair, frame["ts"]) == "train").fill_null(False).to_numpy())
            parts = _splits(plan, pair, frame)
            written, checks, moments, stats, cells = [], {}, None, {}, None
            for name, part in parts.items():
                if fitted is None and name == "train":
                    cells = cvc.cells(part) if cvc is not None else None
                    moments = fit.moments_of(part) if cells is None else cvc.merged(cells)
                data_frame = fitted.transform(part, pair) if fitted is not None else part
                extra = list(CV_COLUMNS) if cvc is not None else []
                data_frame = data_frame.select("ts", *sel.columns, *extra).cast({c: dtype for c in sel.columns})
                rel = f"features/{name}/pair={pair}/year_month={month}/data.parquet"
                data = parquet_bytes(data_frame.to_arrow())
                dest.write_bytes(rel, data)
                written.append({"path": rel, "split": name, "pair": pair, "month": month, "rows": data_frame.height,
                                "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
                stats[name] = FileStats.of(data_frame, sel.columns)
                checks[rel] = written_summary(data_frame, check_cols if name == "train" else []) | {"stats": stats[name]}
            out.append(_Block(pair, month, written, moments, checks, stats, cells))
            if parts:
                with lock:
                    say(f"{pair} {month}: " + ", ".join(f"{k} {v.height}" for k, v in parts.items()))
        return out

    return _by_pair(sel, workers, job)


def _cv_columns(cv: str, pre: Any, normalize: bool, embargo: int) -> Any:
    """The fold plan and per-row column builder of a `--cv` export (refused with --normalize)."""
    from bqx.export.cv_export import CvColumns
    from bqx.export.folds import parse_cv, plan_folds

    spec = parse_cv(cv)
    if normalize:
        raise UsageError("--normalize cannot be combined with --cv: one scaler would have seen every split's test groups",
                         hint="Export raw values; the per-split scalers are in scalers/cv/.")
    t0 = time.perf_counter()
    fp = plan_folds(spec, pre.plan, pre.ts_by_pair, embargo)
    cvc = CvColumns(fp, pre.sel.targets, {r["name"]: r["lookahead"] for r in pre.sel.catalog}, pre.ts_by_pair, pre.scaled)
    cvc.seconds += time.perf_counter() - t0
    return cvc


def _cv_finish(cvc: Any, blocks: Sequence[_Block], fitted: Scaler, sel: source.Selection, dest: Destination,
               meta: dict[str, Any], say: Callable[[str], None]) -> list[str]:
    """folds.json and the per-split scalers; the metadata names the cv columns. Returns the files written."""
    from bqx.export.cv_export import finish
    from bqx.export.folds import FOLDS_JSON

    say(f"writing folds ({cvc.fp.spec.text}: {len(cvc.fp.splits)} splits) and their scalers")
    cells: dict[str, list[Any]] = {p: [] for p in sel.pairs}
    for blk in blocks:
        cells[blk.pair] += blk.cells or []
    files: list[str] = []

    def write(rel: str, doc: Any) -> None:  # compact JSON: hundreds of per-split scalers with an indent take seconds
        dest.write_bytes(rel, (json.dumps(doc, default=str, allow_nan=False) + "\n").encode())
        files.append(rel)

    doc = finish(cvc, cells, fitted.scope, fitted.kinds, sel.pairs, write)
    meta["columns"] = [*meta["columns"], *CV_COLUMNS]
    meta["folds"] = {"path": FOLDS_JSON, "cv": cvc.fp.spec.text, "splits": len(cvc.fp.splits),
                     "cost_seconds": doc["cost_seconds"]}
    return files


def month_start_of(month: str) -> datetime:
    return datetime(int(month[:4]), int(month[5:7]), 1, tzinfo=timezone.utc)


def _write_marker(dest: Destination, meta: Mapping[str, Any]) -> None:
    """The completion marker, written last."""
    dest.write_bytes(MARKER, _json({"export_id": meta["export_id"], "completed_at": _now(),
                                    "metadata_sha256": hashlib.sha256(_json(meta)).hexdigest()}))


def _metadata(sel: source.Selection, plan: SplitPlan, rows: Mapping[str, Mapping[str, int]],
              written: Sequence[Mapping[str, Any]], fitted: Scaler, report: Any, passed: bool, no_validate: bool,
              dest: Destination, *, precision: str, normalize: bool, scale_targets: bool, horizon: int) -> dict[str, Any]:
    from bqx.engine.fingerprint import code_digest, digest
    from bqx.store.backend import root_name
    from bqx.store.state import open_state

    state = sel.state or open_state(sel.store)  # the state the selection was made from
    tasks = {f"{s}/{p}/{m}": r.fingerprint for (s, p, m), r in state.tasks.items() if (p is None or p in sel.pairs)}
    anchors = {f"{f}/{p}": v for (f, p), v in state.anchors.items() if not p or p in sel.pairs}
    bars = {f"{p}/{m}": d[0] for (p, m), d in state.bars.items() if p in sel.pairs}
    baseline = state.baseline_iso
    excl = {p: {e.boundary: {"purged": e.purge_rows, "embargoed": e.embargo_rows} for e in exs}
            for p, exs in plan.exclusions.items()}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "export_id": uuid.uuid4().hex,
        "created_at": _now(),
        "bqx_version": _version(),
        "store": root_name(sel.store),  # an absolute path, or the store's URL
        "destination": dest.url,
        "layout": "features/{split}/pair={PAIR}/year_month={YYYY-MM}/data.parquet (hive); pair and month only in the path",
        "pairs": list(sel.pairs),
        "months": {p: list(ms) for p, ms in sel.months.items()},
        "families": list(sel.families),
        "columns": ["ts", *sel.columns],
        "features": list(sel.features),
        "targets": list(sel.targets),
        "precision": precision,
        "normalize": normalize,
        "scaler": {"path": SCALER_JSON, "scope": fitted.scope, "kinds": list(fitted.kinds),
                   "scale_targets": scale_targets},
        "split": plan.to_dict() | {"target_horizon": horizon},
        "rows": {s: dict(sorted(v.items())) for s, v in rows.items()},
        "dropped": excl,
        "baseline_time": baseline,
        "baselines": anchors,
        "validation": {"no_validate": no_validate, "passed": passed, "path": VALIDATION_JSON,
                       "validated_at": (report or {}).get("started_at")},
        "params": sel.params,
        "fingerprints": {
            "store_tasks": digest(tasks),
            "bars": digest(bars),
            "params": digest(sel.params),
            "code": code_digest(["bqx.export.exporter"]),
            "files": digest(sorted((w["path"], w["sha256"]) for w in written)),
        },
        "files": {"path": FILES_JSON, "count": len(written)},
        "complete_marker": MARKER,
    }


def read_export_metadata(path_or_url: str, s3: S3Options | None = None) -> dict[str, Any]:
    """The metadata of a finished export (export.json plus catalog, scaler, validation and files).

    Raises IncompleteExportError when the completion marker is missing or belongs to another export.
    """
    dest = open_destination(path_or_url, s3)
    if not dest.exists(MARKER):
        what = "an interrupted or failed export, or one still being written" if dest.exists(EXPORT_JSON) or \
            dest.list_files("features/") else "no bqx export at all"
        raise IncompleteExportError(f"export at {dest.url} is incomplete: {MARKER} is missing ({what}).",
                                    hint="Run `bqx export` to that destination again.")
    marker = json.loads(dest.read_bytes(MARKER))
    raw = dest.read_bytes(EXPORT_JSON)
    meta = json.loads(raw)
    if marker.get("export_id") != meta.get("export_id") or marker.get("metadata_sha256") != hashlib.sha256(raw).hexdigest():
        raise IncompleteExportError(f"export at {dest.url} is inconsistent: its completion marker (export "
                                    f"{marker.get('export_id')}) does not match {EXPORT_JSON} (export {meta.get('export_id')}).",
                                    hint="Run `bqx export` to that destination again.")
    meta["catalog"] = json.loads(dest.read_bytes(CATALOG_JSON))
    meta["scaler_params"] = json.loads(dest.read_bytes(SCALER_JSON))
    meta["validation_report"] = json.loads(dest.read_bytes(VALIDATION_JSON))
    meta["file_list"] = json.loads(dest.read_bytes(FILES_JSON))
    meta["column_census"] = json.loads(dest.read_bytes(COLUMNS_JSON)) if dest.exists(COLUMNS_JSON) else None
    meta["checks"] = json.loads(dest.read_bytes(CHECKS_JSON)) if dest.exists(CHECKS_JSON) else []
    meta["completed_at"] = marker.get("completed_at")
    return meta


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bqx")
    except PackageNotFoundError:
        return "unknown"


def _json(doc: Any) -> bytes:
    return (json.dumps(doc, indent=1, default=str, allow_nan=False) + "\n").encode()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
