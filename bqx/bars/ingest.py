"""Ingest a source into a store's `bars/` dataset: validated, partitioned by pair and month, written atomically.

Layout: `<store>/bars/pair=<PAIR>/year_month=<YYYY-MM>/data.parquet` (ts + bar columns; zstd, no
dictionary, ~100k-row groups) and `<store>/pairs.json` ({pair: {basis, has_volume, has_bidask,
source, ...}}). Rejected rows go to `<store>/quarantine/<run>.parquet`. The store is locked while written.

Ingesting a pair again from the same source replaces it. A pair from another source is added when its
time range does not overlap the stored one (same basis required); overlapping rows are a pair-overlap
error (strict) or are quarantined, the stored bars kept (repair).

Before anything is written, every pair's weekends are checked against the FX week (bqx.bars.alignment),
with the pairs already in the store: a pair or a set of files in a wrong time zone is a misaligned-time
error (strict) naming its offset and the --tz that fixes it, or a warning (repair).
"""

from __future__ import annotations

import os
import shutil
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from bqx.bars import rules
from bqx.bars.alignment import RULE as MISALIGNED, check_alignment, stored_timestamps
from bqx.bars.ingest_report import IngestReport
from bqx.bars.readers import ReadResult, Zones, read_source
from bqx.bars.timezones import ZoneMap
from bqx.connect.sources import IngestOptions
from bqx.bar_schema import BAR_COLUMNS
from bqx.store.backend import backend_for, is_url, root_name
from bqx.store.layout import BARS, partition_rel, read_pairs_json, read_partition, write_pairs_json
from bqx.store.lock import store_lock
from bqx.errors import InputError, UsageError



def ingest(source: str | os.PathLike[str], store: str | os.PathLike[str], fmt: str | None = None, policy: str = "strict",
           tz: Zones = None, pairs: list[str] | tuple[str, ...] | None = None,
           column_map: dict[str, str] | None = None, run_id: str | None = None) -> IngestReport:
    """Read, validate and write `source` into `<store>/bars/`; returns the report (strict raises InputError).

    `tz` is a zone or per-pair zones (bqx.bars.timezones.ZoneMap, {PAIR: ZONE, "default": ZONE} or
    ["ZONE", "PAIR=ZONE"]). The source is the one registered for the target's scheme
    (bqx.connect.sources): files, or a `postgresql://` URL that reads the database
    (bqx.bars.ingest_postgres; default table layout m1_{pair}).
    """
    from bqx.connect.sources import open_source

    options = IngestOptions(fmt=fmt, policy=policy, tz=ZoneMap.of(tz), pairs=pairs, column_map=column_map, run_id=run_id)
    return open_source(source).ingest(store, options)


def ingest_files(source: str | os.PathLike[str], store: str | os.PathLike[str], options: IngestOptions) -> IngestReport:
    """The "file" source's ingest: bar files read by bqx.bars.readers, validated, written by pair and month."""
    fmt, policy, pairs, column_map, run_id = options.fmt, options.policy, options.pairs, options.column_map, options.run_id
    zones = ZoneMap.of(options.tz)
    root: Any = root_name(store) if is_url(store) else Path(store)  # an s3:// store stays a URL
    result = read_source(source, fmt=fmt, tz=zones, column_map=column_map, pairs=pairs, policy=policy, keep_origin=True)
    src_id = str(Path(source).resolve())
    report = IngestReport(source=src_id, store=str(root), policy=policy, rows_in=result.rows_in,
                          rows_skipped=result.rows_skipped, rows_merged=result.rows_merged, fixes=result.fixes, files=result.files,
                          rejected_files=result.rejected_files, ignored_files=result.ignored_files,
                          skipped_files=result.skipped_files, notes=result.notes)
    quarantine = [result.quarantine]
    with store_lock(root, "ingest") if options.lock else nullcontext():
        catalog = read_pairs(root)
        sample = sorted(p for p, e in catalog.items() if e.get("source") == "sample")
        if sample:
            raise UsageError(
                f"store {root} holds the sample market's bars ({len(sample)} pair(s), e.g. {sample[0]}); "
                f"bars from {src_id} would mix with them",
                hint="Ingest into a new --store (each store holds one kind of data: the sample market or yours).")
        _check_alignment(root, result, catalog, policy, report)
        written = 0
        for (p,), frame in result.bars.partition_by("pair", as_dict=True, maintain_order=True).items():
            src = result.sources[p]
            frame = frame.drop("pair")
            entry = catalog.get(p)
            replace = entry is None or entry.get("sources", [entry.get("source")]) == [src_id]
            if not replace:
                frame, overlap = _against_store(p, frame, entry, src.basis, result.origin, policy)
                quarantine.append(overlap)
                if frame.height == 0:
                    continue
            months = _write_pair(root, p, frame, replace)
            written += frame.height
            report.partitions += len(months)
            start, end = frame["ts"].min(), frame["ts"].max()
            if replace:
                catalog[p] = {"basis": src.basis, "has_volume": src.has_volume, "has_bidask": src.has_bidask,
                              "source": src_id, "sources": [src_id], "rows": frame.height,
                              "start": start.isoformat(), "end": end.isoformat()}
            else:
                catalog[p] = {**entry, "has_volume": entry["has_volume"] and src.has_volume,
                              "has_bidask": entry["has_bidask"] and src.has_bidask, "source": src_id,
                              "sources": [*entry.get("sources", [entry["source"]]), src_id],
                              "rows": entry.get("rows", 0) + frame.height,
                              "start": min(entry["start"], start.isoformat()), "end": max(entry["end"], end.isoformat())}
            report.pairs[p] = {"rows": frame.height, "basis": src.basis, "has_volume": src.has_volume,
                               "has_bidask": src.has_bidask, "start": start.isoformat(), "end": end.isoformat(),
                               "months": months}
        if report.pairs:
            write_pairs(root, catalog)
        issues = pl.concat(quarantine)
        report.rows_out = written
        report.rows_quarantined = int((issues["scope"] == "row").sum())
        report.quarantined_by_rule = dict(issues.group_by("rule").len().sort(["len", "rule"], descending=[True, False]).iter_rows())
        if issues.height:
            stamp = run_id or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + f"-ingest-{os.getpid()}"
            report.quarantine_path = rules.write_store_quarantine(root, issues, stamp)
    if report.rows_out == 0:
        where = f"; see {report.quarantine_path}" if report.quarantine_path else ""
        raise InputError(f"nothing to ingest from {source}: {report.rows_in} rows read, {report.rows_quarantined} "
                         f"quarantined, {report.rows_skipped} skipped, {len(report.rejected_files)} files rejected"
                         + (f", {len(report.skipped_files)} files of other pairs not read" if report.skipped_files else "")
                         + where,
                         file=str(source), rule="empty-file")
    return report


def _check_alignment(root: Path, result: ReadResult, catalog: dict[str, dict[str, Any]], policy: str,
                     report: IngestReport) -> None:
    """The FX-week check of the pairs read and of the store's other pairs: strict raises, repair warns."""
    if result.bars.height == 0:
        return
    new = set(result.bars["pair"].unique())
    stored = stored_timestamps(root, sorted(p for p in catalog if p not in new))
    checked = check_alignment(result.bars.select("pair", "ts"), result.zones, stored)
    report.alignment = checked.to_dict()
    unchecked = [p for p, a in checked.pairs.items() if a.origin == "ingest" and not a.checked]
    if unchecked:
        span = result.bars.group_by("pair").agg((pl.col("ts").max() - pl.col("ts").min()).alias("span"))
        long = sorted(span.filter((pl.col("span") >= pl.duration(days=8)) & pl.col("pair").is_in(unchecked))["pair"])
        if long:
            report.notes.append(f"time zone not checked for {', '.join(long)}: no weekend gap of 36-60 h as long as the "
                                "FX weekend in their bars")
    if not checked.findings:
        return
    first = checked.findings[0]
    more = checked.findings[1:]
    if policy == "strict":
        also = f" (and {len(more)} more: {', '.join(p for f in more for p in f.pairs)})" if more else ""
        raise InputError(first.message + also, pair=first.pairs[0], rule=MISALIGNED,
                         hint=first.hint + " Or ingest with --policy repair to store the bars as read, with a warning.")
    for f in checked.findings:
        report.notes.append(f"warning: {f.message} (rule {MISALIGNED}). {f.hint}")


def _against_store(p: str, frame: pl.DataFrame, entry: dict[str, Any], basis: str, origin: pl.DataFrame | None,
                   policy: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows of a pair already stored from another source: same basis required, overlapping time range rejected."""
    if entry["basis"] != basis:
        raise InputError(f"pair {p} is in the store with basis {entry['basis']} (from {entry['source']}); this source "
                         f"gives {basis}", pair=p, rule="basis-mismatch",
                         hint="Ingest into another store, or remove the pair's bars from this one first.")
    start, end = datetime.fromisoformat(entry["start"]), datetime.fromisoformat(entry["end"])
    inside = pl.col("ts").is_between(pl.lit(start).cast(pl.Datetime("us", "UTC")), pl.lit(end).cast(pl.Datetime("us", "UTC")))
    bad = frame.filter(inside)
    if bad.height == 0:
        return frame, rules.empty_issues()
    assert origin is not None
    located = bad.select("ts").join(origin.filter(pl.col("pair") == p), on="ts", how="left").sort("line")
    issues = located.select(
        pl.col("file"), pl.col("line"), pl.lit(p).alias("pair"), pl.lit("ts").alias("column"),
        pl.col("ts").cast(pl.String).alias("value"), pl.lit("pair-overlap").alias("rule"), pl.col("raw"),
        pl.lit(f"{rules.RULES['pair-overlap']} (the store has {p} from {entry['source']}, {entry['start']} to {entry['end']})").alias("detail"),
        pl.lit("row").alias("scope"),
    )
    if policy == "strict":
        rules.raise_first(issues, scope=f" for {p}")
    return frame.filter(~inside), issues


def _write_pair(root: Any, pair: str, frame: pl.DataFrame, replace: bool) -> list[str]:
    """Write one pair's bars by month; `replace` removes months the new bars do not have, else months merge.

    Every file goes through the store's backend (one atomic write each; a local directory or an s3:// store)."""
    backend = backend_for(root)
    have = {rel.split("/")[2][len("year_month="):]: rel for rel in backend.stats(f"{BARS}/pair={pair}")
            if rel.endswith("/data.parquet") and rel.split("/")[2].startswith("year_month=")}
    frame = frame.with_columns(pl.col("ts").dt.strftime("%Y-%m").alias("_ym"))
    months = []
    for (ym,), part in sorted(frame.partition_by("_ym", as_dict=True).items()):
        rel = partition_rel(BARS, pair, ym)
        part = part.select(BAR_COLUMNS)
        if not replace and ym in have:
            part = pl.concat([read_partition(root, rel).select(BAR_COLUMNS), part]).sort("ts")
        backend.write_parquet(rel, part.sort("ts"))
        months.append(ym)
    if replace:
        pair_dir = None if not backend.is_local else backend.local_path(f"{BARS}/pair={pair}")
        if pair_dir is not None and pair_dir.exists():
            for d in pair_dir.iterdir():
                if d.is_dir() and d.name.startswith("year_month=") and d.name.split("=", 1)[1] not in months:
                    shutil.rmtree(d)
        elif pair_dir is None:
            for ym, rel in have.items():
                if ym not in months:
                    backend.delete(rel)
    return months


def read_pairs(store: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The store's per-pair source catalog (`pairs.json` at the store root), empty when there is none."""
    return read_pairs_json(store)


def write_pairs(store: Path, catalog: dict[str, dict[str, Any]]) -> None:
    write_pairs_json(store, catalog)


