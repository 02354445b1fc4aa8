"""The export's "Fitting" and "Splits" checks (PIPELINE.md §6), run on an export as written.

- export.complete: the completion marker is present and belongs to the metadata.
- export.files: the feature files are exactly those listed, with their digests, rows and schema.
- rows.counts: rows per split and pair equal the metadata's counts.
- splits.chronological: every pair's rows respect the one set of boundaries (train < train_end <=
  validation < validation_end <= test) and sit in their month's directory, in time order.
- splits.disjoint: each bar appears at most once.
- splits.purged / splits.embargoed: around each boundary, counted on the pair's bars in the store,
  at least `purge` bars separate the last kept row before it from the boundary (and purge covers
  the largest target horizon, so no kept row's target window reaches it), and at least `embargo`
  bars are dropped after it. Without the store, the recorded exclusions are checked instead.
- scaler.columns: exactly the exported columns of the scaled kinds are fitted or listed as empty
  (no training value: no entry), none twice.
- columns.census: the empty and constant columns of metadata/columns.json are those of the files
  (recomputed from the rows when the files are read), no dropped column is in a file, and each
  dropped column has no value in the store for any exported pair (footers; when the store is there).
- scaler.reproducible: mean and std recomputed from the exported training rows alone equal the
  scaler (or, for a normalized export, the training rows have mean 0 and std 1).
- folds.*: for an export with --cv, bqx.export.folds_check (columns, purge by span, embargo, paths).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from bqx.export.columns import CONSTANT, EMPTY, ColumnCensus, FileStats
from bqx.export.folds import CV_COLUMNS
from bqx.export.layout import CATALOG_JSON, COLUMNS_JSON, EXPORT_JSON, FILES_JSON, MARKER, SCALER_JSON
from bqx.export.scaler import Moments, Scaler
from bqx.export.splits import SPLITS, SplitPlan, _to_us
from bqx.export.writer import Destination, S3Options, open_destination
from bqx.store.layout import store_root

MAX_FAILURES = 5


@dataclass
class CheckResult:
    """One check: passed True/False, or None when it could not run (skipped, with the reason)."""

    name: str
    passed: bool | None
    detail: str
    failures: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_export(path_or_url: str, *, store: str | Path | None = None, s3: S3Options | None = None) -> list[CheckResult]:
    """Every export check on the export at `path_or_url` (the store defaults to the one recorded in the metadata)."""
    return run_checks(open_destination(path_or_url, s3), store=store, require_complete=True)


def run_checks(dest: Destination, *, store: str | Path | None = None, require_complete: bool = True,
               written: Mapping[str, Mapping[str, Any]] | None = None) -> list[CheckResult]:
    """The checks; `written` (the exporter's own summaries of the files it just wrote, path ->
    rows, moments, maxabs) replaces reading those files whole: each is then checked by its size,
    footer and `ts` column, and the scaler against the moments of the values as they were written."""
    if not dest.exists(EXPORT_JSON):
        return [CheckResult("export.complete", False, f"{dest.url} has no {EXPORT_JSON}: not a finished bqx export")]
    meta = json.loads(dest.read_bytes(EXPORT_JSON))
    files = json.loads(dest.read_bytes(FILES_JSON))
    catalog = json.loads(dest.read_bytes(CATALOG_JSON))
    scaler = Scaler.from_dict(json.loads(dest.read_bytes(SCALER_JSON)))
    plan = SplitPlan.from_dict(meta["split"])
    out: list[CheckResult] = []
    if require_complete:
        out.append(_complete(dest, meta))
    store_path = store_root(store if store is not None else meta["store"])  # a Path, or a store's URL
    store_ts = _StoreTs(store_path) if _reachable(store_path) else None
    walk = _Walk(dest, meta, files, plan, scaler, written)
    out += walk.run()
    out += _purge_embargo(meta, plan, walk.kept, store_ts, store_path)
    out.append(_scaler_columns(meta, catalog, scaler))
    out.append(_census(dest, meta, walk.census, store_path if store_ts is not None else None))
    if meta.get("folds"):
        from bqx.export.folds_check import check_folds

        out += check_folds(dest, meta, files, catalog, _result)
    return out


def _complete(dest: Destination, meta: dict[str, Any]) -> CheckResult:
    if not dest.exists(MARKER):
        return CheckResult("export.complete", False, f"{MARKER} is missing: the export was interrupted or failed")
    marker = json.loads(dest.read_bytes(MARKER))
    ok = marker.get("export_id") == meta.get("export_id")
    return CheckResult("export.complete", ok, "completion marker present" if ok else
                       f"the marker belongs to export {marker.get('export_id')}, the metadata to {meta.get('export_id')}")


class _Walk:
    """One pass over every feature file: files, counts, chronology, uniqueness, scaler moments."""

    def __init__(self, dest: Destination, meta: dict[str, Any], files: list[dict[str, Any]], plan: SplitPlan,
                 scaler: Scaler, written: Mapping[str, Mapping[str, Any]] | None = None):
        self.dest, self.meta, self.files, self.plan, self.scaler = dest, meta, files, plan, scaler
        self.written = written or {}
        self.kept: dict[str, np.ndarray] = {}  # pair -> sorted exported ts (µs)
        self.census = ColumnCensus(tuple(c for c in meta["columns"] if c != "ts"))

    def run(self) -> list[CheckResult]:
        listed = {f["path"]: f for f in self.files}
        present = set(self.dest.list_files("features/"))
        file_fail = [f"unlisted file {p}" for p in sorted(present - set(listed))]
        file_fail += [f"missing file {p}" for p in sorted(set(listed) - present)]
        counts: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
        chrono_fail: list[str] = []
        cols = self.meta["columns"]
        ftype = "float" if self.meta["precision"] == "float32" else "double"
        fit_cols = sorted({c for p in ([None] if self.scaler.scope == "global" else self.scaler.pairs)
                           for c, s in self.scaler.for_pair(p).items() if s.mean is not None})
        moments: dict[str, Moments] = {}
        maxabs: dict[str, np.ndarray] = {}
        by_pair: dict[str, list[np.ndarray]] = {}
        bounds = {"train": (None, self.plan.train_end), "validation": (self.plan.train_end, self.plan.validation_end),
                  "test": (self.plan.validation_end, None)}
        for rel in sorted(set(listed) & present):
            entry = listed[rel]
            summary = self.written.get(rel)
            if summary is None:
                data = self.dest.read_bytes(rel)
                if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                    file_fail.append(f"{rel}: digest differs from {FILES_JSON}")
                table = pq.read_table(io.BytesIO(data))
                schema, n_rows = table.schema, table.num_rows
            else:
                size, schema, n_rows, table = _footer_and_ts(self.dest, rel)
                if size != entry["bytes"]:
                    file_fail.append(f"{rel}: {size} bytes, listed {entry['bytes']}")
                if n_rows != summary["rows"]:
                    file_fail.append(f"{rel}: {n_rows} rows, {summary['rows']} written")
            names = schema.names
            if names != cols:
                file_fail.append(f"{rel}: columns differ from the metadata (pair/year_month must only be in the path)")
            bad = [f.name for f in schema if f.name != "ts" and f.name not in CV_COLUMNS and str(f.type) != ftype]
            if bad:
                file_fail.append(f"{rel}: columns {bad[:3]} are not {ftype}")
            frame = pl.from_arrow(table)
            if n_rows != entry["rows"] or frame.height != n_rows:
                file_fail.append(f"{rel}: {frame.height} rows, listed {entry['rows']}")
            split, pair, month = entry["split"], entry["pair"], entry["month"]
            if names == cols:
                stats = summary.get("stats") if summary is not None else FileStats.of(frame, self.census.columns)
                if stats is not None:
                    self.census.add(pair, split, stats)
            counts[split][pair] = counts[split].get(pair, 0) + frame.height
            ts = frame["ts"].dt.cast_time_unit("us").cast(pl.Int64).to_numpy()
            by_pair.setdefault(pair, []).append(ts)
            chrono_fail += self._chronology(rel, frame, ts, bounds[split], month)
            if split == "train" and fit_cols:
                key = pair if self.scaler.scope == "per-pair" else "global"
                m = moments.setdefault(key, Moments(fit_cols))
                if summary is None:
                    m.update(frame)
                    mx = frame.select([pl.col(c).cast(pl.Float64).abs().max().fill_null(0.0) for c in fit_cols]).row(0)
                elif "moments" not in summary:
                    file_fail.append(f"{rel}: no moments were taken of this training file as it was written")
                    continue
                else:
                    m.merge(summary["moments"].subset(fit_cols))
                    mx = [summary["maxabs"][c] for c in fit_cols]
                maxabs[key] = np.maximum(maxabs.get(key, np.zeros(len(fit_cols))), np.asarray(mx, dtype=np.float64))
        out = [_result("export.files", file_fail, f"{len(listed)} files, digests, rows and schema as listed")]
        expected = {s: {p: n for p, n in v.items() if n} for s, v in self.meta["rows"].items()}
        count_fail = [f"{s}/{p}: {counts[s].get(p, 0)} rows, metadata says {n}"
                      for s in SPLITS for p, n in expected.get(s, {}).items() if counts[s].get(p, 0) != n]
        count_fail += [f"{s}/{p}: {n} rows not in the metadata" for s in SPLITS for p, n in counts[s].items()
                       if p not in expected.get(s, {})]
        out.append(_result("rows.counts", count_fail, "rows per split and pair match the metadata"))
        out.append(_result("splits.chronological", chrono_fail,
                           f"one boundary for all pairs ({', '.join(f'{k}={v.isoformat()}' for k, v in self.plan.boundaries.items())}); "
                           "every row in its split's interval and its month, in time order"))
        dup_fail = []
        for pair, parts in sorted(by_pair.items()):
            allts = np.sort(np.concatenate(parts))
            dups = int((np.diff(allts) == 0).sum())
            if dups:
                dup_fail.append(f"{pair}: {dups} bars appear more than once")
            self.kept[pair] = allts
        out.append(_result("splits.disjoint", dup_fail, "each bar appears at most once"))
        out.append(self._reproducible(fit_cols, moments, maxabs))
        return out

    def _chronology(self, rel: str, frame: pl.DataFrame, ts: np.ndarray, bound: tuple[Any, Any], month: str) -> list[str]:
        fails = []
        lo, hi = bound
        if len(ts) and np.any(np.diff(ts) <= 0):
            fails.append(f"{rel}: rows not in strictly increasing time order")
        if lo is not None and len(ts) and ts.min() < _to_us(lo):
            fails.append(f"{rel}: a row at {frame['ts'].min()} is before the split's start {lo.isoformat()}")
        if hi is not None and len(ts) and ts.max() >= _to_us(hi):
            fails.append(f"{rel}: a row at {frame['ts'].max()} is at or after the split's end {hi.isoformat()}")
        months = frame.select(pl.col("ts").dt.strftime("%Y-%m").unique())["ts"].to_list()
        if months and months != [month]:
            fails.append(f"{rel}: rows of months {months} in year_month={month}")
        return fails

    def _reproducible(self, cols: list[str], moments: dict[str, Moments], maxabs: dict[str, np.ndarray]) -> CheckResult:
        """Recomputed moments equal the scaler within the rounding of the written precision."""
        eps = np.finfo(np.float32 if self.meta["precision"] == "float32" else np.float64).eps
        normalized = bool(self.meta.get("normalize"))
        fails = []
        for key, m in sorted(moments.items()):
            params = self.scaler.for_pair(None if key == "global" else key)
            std = m.std()
            for i, c in enumerate(cols):
                p = params.get(c)
                if p is None or p.mean is None:
                    continue
                tol = 2.0 * eps * maxabs[key][i] + 1e-12 * (abs(p.mean) + (p.std or 0.0))
                if normalized:
                    want_mean, want_std = 0.0, (p.std or 0.0) / p.scale
                    tol += 1e-9 * (1.0 + abs(p.mean) / p.scale)
                else:
                    want_mean, want_std = p.mean, p.std or 0.0
                if int(m.n[i]) != p.n or abs(m.mean[i] - want_mean) > tol or abs(std[i] - want_std) > tol:
                    fails.append(f"{key} {c}: recomputed n={int(m.n[i])} mean={m.mean[i]:.12g} std={std[i]:.12g}, "
                                 f"expected n={p.n} mean={want_mean:.12g} std={want_std:.12g} (tolerance {tol:.3g})")
        missing = [k for k in (self.scaler.pairs if self.scaler.scope == "per-pair" else ["global"])
                   if k not in moments and any(s.n for s in self.scaler.for_pair(None if k == "global" else k).values())]
        fails += [f"{k}: scaler fitted on rows, but the export has no training rows" for k in missing]
        what = "mean 0 and std 1 on training rows" if normalized else "mean and std recomputed from training rows alone"
        return _result("scaler.reproducible", fails, f"{len(cols)} columns: {what}")


def _purge_embargo(meta: dict[str, Any], plan: SplitPlan, kept: dict[str, np.ndarray], store_ts: "_StoreTs | None",
                   store_path: Path | str) -> list[CheckResult]:
    horizon = int(meta["split"].get("target_horizon", 0))
    purge_fail, emb_fail = [], []
    if plan.purge < horizon:
        purge_fail.append(f"purge {plan.purge} bars is shorter than the largest target horizon {horizon}")
    how = "counted on the store's bars"
    for pair in meta["pairs"]:
        ts = kept.get(pair, np.zeros(0, dtype=np.int64))
        bars = store_ts.get(pair) if store_ts is not None else None
        for name, b in plan.boundaries.items():
            bu = _to_us(b)
            before, after = ts[ts < bu], ts[ts >= bu]
            if bars is not None:
                i = int(np.searchsorted(bars, bu, side="left"))
                last = int(np.searchsorted(bars, before[-1], side="right")) if len(before) else 0
                first = int(np.searchsorted(bars, after[0], side="left")) if len(after) else len(bars)
                if len(before) and i - last < plan.purge:
                    purge_fail.append(f"{pair} {name}: {i - last} bars between the last kept row and the boundary, "
                                      f"purge is {plan.purge}")
                if len(after) and first - i < plan.embargo:
                    emb_fail.append(f"{pair} {name}: {first - i} bars dropped after the boundary, embargo is {plan.embargo}")
            else:
                for ex in plan.exclusions.get(pair, ()):
                    if ex.boundary != name:
                        continue
                    if ex.purge_rows and np.any((ts >= _to_us(ex.purge_first)) & (ts <= _to_us(ex.purge_last))):
                        purge_fail.append(f"{pair} {name}: a kept row lies in the purged interval")
                    if ex.embargo_rows and np.any((ts >= _to_us(ex.embargo_first)) & (ts <= _to_us(ex.embargo_last))):
                        emb_fail.append(f"{pair} {name}: a kept row lies in the embargoed interval")
        if store_ts is None:
            how = f"store {store_path} not available: checked against the recorded exclusions"
    return [
        _result("splits.purged", purge_fail, f"at least {plan.purge} bars (>= target horizon {horizon}) before each "
                                             f"boundary are in no split ({how})"),
        _result("splits.embargoed", emb_fail, f"at least {plan.embargo} bars after each boundary are in no split ({how})"),
    ]


def _scaler_columns(meta: dict[str, Any], catalog: list[dict[str, Any]], scaler: Scaler) -> CheckResult:
    targets = set(meta["targets"])
    exported = set(meta["columns"])
    scale_targets = bool(meta["scaler"].get("scale_targets"))
    want = {r["name"] for r in catalog if r["kind"] in scaler.kinds and (scale_targets or r["name"] not in targets)
            and r["name"] in exported}
    groups = {"all": scaler.columns} if scaler.scope == "global" else scaler.pairs
    fails = []
    for g, cols in groups.items():
        have, empty = set(cols), set(scaler.empty.get(g, ()))
        if have & empty:
            fails.append(f"{g}: {sorted(have & empty)[:5]} both fitted and listed as empty")
        if have | empty != want:
            fails.append(f"{g}: fitted {sorted((have | empty) - want)[:5]} not exported columns of kinds "
                         f"{list(scaler.kinds)}; missing {sorted(want - have - empty)[:5]}")
    fitted = set(scaler.fitted_columns())
    n_fit = len(want & fitted)
    return _result("scaler.columns", fails, f"{len(want)} exported columns of kinds {', '.join(scaler.kinds)}: "
                                            f"{n_fit} fitted, {len(want) - n_fit} without training values (no entry)"
                                            + ("" if scale_targets else "; targets unscaled"))


def _census(dest: Destination, meta: dict[str, Any], census: ColumnCensus, store: Path | str | None) -> CheckResult:
    """metadata/columns.json against the files' own counts; dropped columns absent and empty in the store."""
    if not dest.exists(COLUMNS_JSON):
        return CheckResult("columns.census", None, f"{COLUMNS_JSON} is missing (an export written before the census)")
    doc = json.loads(dest.read_bytes(COLUMNS_JSON))
    listed = doc.get("columns", {})
    fails = []
    for state in (EMPTY, CONSTANT):
        found = census.where(state)
        said = {c: v[state] for c, v in listed.items() if state in v}
        for c in sorted(set(found) | set(said)):
            if found.get(c) != said.get(c):
                fails.append(f"{c}: {state} in {found.get(c) or 'no'} pair/split of the files, "
                             f"{COLUMNS_JSON} says {said.get(c) or 'none'}")
    dropped = list(doc.get("dropped", []))
    fails += [f"dropped column {c} is in the files" for c in dropped if c in meta["columns"]]
    how = "not checked against the store (not available)"
    if dropped and store is not None:
        from bqx.engine.plan import stage_specs
        from bqx.export.columns import empty_in_store

        owner = {c: name for name, spec in stage_specs(meta.get("params") or None).items() for c in spec.columns}
        by_stage: dict[str, list[str]] = {}
        for c in dropped:
            if c in owner:
                by_stage.setdefault(owner[c], []).append(c)
            else:
                fails.append(f"dropped column {c} is not a stored column")
        still = set(empty_in_store(store, meta["pairs"], meta["months"], by_stage))
        fails += [f"dropped column {c} has values in the store" for c in dropped if c in owner and c not in still]
        how = "empty in the store for every pair"
    n_e, n_c = len(census.where(EMPTY)), len(census.where(CONSTANT))
    return _result("columns.census", fails, f"{n_e} columns empty and {n_c} constant for some pair or split, as listed; "
                                            f"{len(dropped)} dropped" + (f" ({how})" if dropped else ""))


def _reachable(store: Path | str) -> bool:
    """Whether the store's bars can be read here (a store on another machine's disk, or on object storage
    without credentials here, is not: its checks fall back to the export's records)."""
    from bqx.store.layout import has_bars

    try:
        return has_bars(store)
    except Exception:  # noqa: BLE001 - unreachable (no bucket, no credentials, no network): not available
        return False


class _StoreTs:
    """Each pair's bar timestamps from the store's bars dataset, read on demand."""

    def __init__(self, root: Path | str):
        from bqx.store.layout import bars_stats

        self.root = root
        self.files = {k: v[0] for k, v in bars_stats(root).items()}

    def get(self, pair: str) -> np.ndarray | None:
        from bqx.store.layout import read_partition

        rels = [f for (p, _), f in sorted(self.files.items()) if p == pair]
        if not rels:
            return None
        ts = pl.concat([read_partition(self.root, f, ["ts"]) for f in rels])["ts"].sort()
        return ts.dt.cast_time_unit("us").cast(pl.Int64).to_numpy()


def _footer_and_ts(dest: Destination, rel: str) -> tuple[int, Any, int, Any]:
    """(size in bytes, schema, rows, the `ts` column as a table) of a Parquet file, reading nothing else."""
    fs, root = dest.arrow()
    with fs.open_input_file(f"{root}/{rel}") as fh:
        pf = pq.ParquetFile(fh)
        return fh.size(), pf.schema_arrow, pf.metadata.num_rows, pf.read(columns=["ts"])


def _result(name: str, fails: list[str], ok_detail: str) -> CheckResult:
    if fails:
        return CheckResult(name, False, f"{len(fails)} problems, first: {fails[0]}", fails[:MAX_FAILURES])
    return CheckResult(name, True, ok_detail)
