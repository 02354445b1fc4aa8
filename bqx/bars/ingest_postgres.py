"""Ingest bars from PostgreSQL into the store, one pair-month at a time, incrementally.

Each pair-month's row count and SQL checksum are kept in `<store>/postgres_months.json`; a re-ingest
fetches only months that are new or whose count or checksum changed, and removes months the
database no longer has. A month is written (atomically) only after all its rows are read and
validated, so a dropped connection leaves the months before it in place and the rerun resumes.
Rows go through bqx.bars.rules exactly as a file's rows do (policies, quarantine). A month read in
another zone than before (--tz) is fetched again. The FX-week check runs on the pairs read, after
the months are written: its findings are warnings under every policy.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import polars as pl

from bqx.bars import rules
from bqx.bars.alignment import RULE as MISALIGNED, check_alignment, stored_timestamps
from bqx.bars.ingest_report import IngestReport
from bqx.store.layout import read_pairs_json as read_pairs, write_pairs_json as write_pairs
from bqx.bars.readers.postgres import PgLayout, Reader, check_url
from bqx.bar_schema import BAR_COLUMNS, conform
from bqx.store.lock import store_lock
from bqx.store.backend import backend_for, is_url, root_name
from bqx.store.layout import BARS, partition_path, partition_rel, write_partition
from bqx.errors import InputError

STATE_FILE = "postgres_months.json"
#: on_month(pair, month, status, rows): status is "read", "unchanged" or "removed".
OnMonth = Callable[[str, str, str, int], None]


def read_state(root: Any) -> dict[str, Any]:
    try:
        return json.loads(backend_for(root).read_text(STATE_FILE))
    except (FileNotFoundError, NotADirectoryError):
        return {}


def _write_state(root: Any, state: dict[str, Any]) -> None:
    backend_for(root).write_text(STATE_FILE, json.dumps(state, indent=1, sort_keys=True))


def _remove_month(root: Any, pair: str, month: str) -> None:
    """A bars month dropped from the store: its directory locally, its object on object storage."""
    backend = backend_for(root)
    if backend.is_local:
        d = partition_path(root, BARS, pair, month).parent
        if d.exists():
            shutil.rmtree(d)
    else:
        backend.delete(partition_rel(BARS, pair, month))


def ingest_postgres(url: str, store: str | os.PathLike[str], layout: PgLayout | None = None, policy: str = "strict",
                    pairs: list[str] | tuple[str, ...] | None = None, run_id: str | None = None,
                    on_month: OnMonth | None = None, lock: bool = True) -> IngestReport:
    """Read, validate and write the database's bars into `<store>/bars/`; returns the report."""
    from bqx.bars.readers import _pairs_arg

    check_url(url)
    policy = rules.check_policy(policy)
    layout = (layout or PgLayout()).checked()
    root: Any = root_name(store) if is_url(store) else Path(store)  # an s3:// store stays a URL
    wanted = _pairs_arg(pairs)
    report = IngestReport(source=url, store=str(root), policy=policy)
    if lock:
        with store_lock(root, "ingest"):
            _ingest(url, root, layout, policy, wanted, run_id, on_month, report)
    else:
        _ingest(url, root, layout, policy, wanted, run_id, on_month, report)
    return report


def _ingest(url: str, root: Path, layout: PgLayout, policy: str, wanted: set[str] | None, run_id: str | None,
            on_month: OnMonth | None, report: IngestReport) -> None:
    notify = on_month or (lambda *a: None)
    quarantine: list[pl.DataFrame] = []
    state = read_state(root)
    catalog = read_pairs(root)
    touched: set[str] = set()
    read_zones: dict[str, str | None] = {}
    unchanged = 0
    try:
        with Reader(url, layout) as reader:
            tables = reader.resolve(sorted(wanted) if wanted and layout.pair_column is None else None)
            if reader.missing:
                report.notes.append(f"{len(reader.missing)} pair table(s) not found: {', '.join(reader.missing[:5])}"
                                    + (" ..." if len(reader.missing) > 5 else ""))
            for table in tables:
                months = reader.months(table)
                if wanted is not None:
                    skipped = [m for m in months if m.pair not in wanted and m.pair in _known()]
                    report.rows_skipped += sum(m.rows for m in skipped)
                    report.rows_in += sum(m.rows for m in skipped)
                    months = [m for m in months if m not in skipped]
                src_id = f"{url}/{table.label}"
                seen: dict[str, set[str]] = {}
                for info in months:
                    seen.setdefault(info.pair, set()).add(info.month)
                    entry = catalog.get(info.pair)
                    if entry is not None and entry.get("source") != src_id:
                        raise InputError(f"pair {info.pair} is in the store from {entry.get('source')}, not {src_id}",
                                         pair=info.pair, rule="pair-overlap",
                                         hint="Ingest the database into its own store (--store).")
                    pstate = state.setdefault(info.pair, {"source": src_id, "months": {}})
                    old = pstate["months"].get(info.month)
                    rel = partition_rel(BARS, info.pair, info.month)
                    zone = None if table.zoned else layout.zone_for(info.pair)  # a new zone refetches the month
                    read_zones[info.pair] = zone
                    if old and (old["rows"], old["checksum"], old.get("zone")) == (info.rows, info.checksum, zone) and \
                            (old["written"] == 0 or backend_for(root).exists(rel)):
                        notify(info.pair, info.month, "unchanged", info.rows)
                        unchanged += 1
                        continue
                    read = reader.read_month(table, info)
                    report.rows_in += read.parsed.frame.height
                    good, issues, order = rules.check_rows(read.parsed.frame, read.file, read.parsed.price_sets,
                                                           layout.pair_column is not None)
                    issues, order = read.with_raw(issues), read.with_raw(order)
                    if policy == "strict":
                        rules.raise_first(pl.concat([issues, order]), scope=f" in {read.file}")
                    if order.height:
                        report.fixes["out-of-order"] = report.fixes.get("out-of-order", 0) + order.height
                    quarantine.append(issues)
                    bars = conform(good.filter(pl.col("pair") == info.pair)).sort("ts")
                    if bars.height:
                        write_partition(root, rel, bars.select(BAR_COLUMNS))
                    else:
                        _remove_month(root, info.pair, info.month)
                    volume = read.parsed.has_volume and bool((bars["volume"] != 0.0).any())
                    bidask = bool(bars.height and bars["bid_close"].is_not_null().all() and bars["ask_close"].is_not_null().all())
                    pstate["source"] = src_id
                    pstate["basis"] = read.parsed.side
                    pstate["months"][info.month] = {
                        "rows": info.rows, "checksum": info.checksum, "zone": zone, "written": bars.height, "has_volume": volume,
                        "has_bidask": bidask,
                        "start": bars["ts"].min().isoformat() if bars.height else None,
                        "end": bars["ts"].max().isoformat() if bars.height else None}
                    _write_state(root, state)
                    touched.add(info.pair)
                    report.rows_out += bars.height
                    report.partitions += bool(bars.height)
                    notify(info.pair, info.month, "read", bars.height)
                for pair, got in seen.items():
                    gone = [m for m in state[pair]["months"] if m not in got]
                    for m in gone:
                        _remove_month(root, pair, m)
                        del state[pair]["months"][m]
                        touched.add(pair)
                        notify(pair, m, "removed", 0)
                    if gone:
                        _write_state(root, state)
                    if pair not in catalog:
                        touched.add(pair)
    finally:
        if unchanged:
            report.notes.append(f"{unchanged} pair-month(s) unchanged in the database (row count and checksum): not fetched")
        _update_catalog(root, catalog, state, touched, report)
        issues = pl.concat(quarantine) if quarantine else rules.empty_issues()
        report.rows_quarantined = int((issues["scope"] == "row").sum())
        report.quarantined_by_rule = dict(issues.group_by("rule").len().sort(["len", "rule"], descending=[True, False]).iter_rows())
        if issues.height:
            stamp = run_id or datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + f"-ingest-{os.getpid()}"
            report.quarantine_path = rules.write_store_quarantine(root, issues, stamp)
    if not any(m["written"] for p in state.values() for m in p["months"].values()):
        where = f"; see {report.quarantine_path}" if report.quarantine_path else ""
        raise InputError(f"nothing to ingest from {url}: {report.rows_in} rows read, {report.rows_quarantined} "
                         f"quarantined, {report.rows_skipped} skipped{where}", file=url, rule="empty-file")
    _alignment_warnings(root, read_zones, catalog, report)


def _alignment_warnings(root: Path, zones: dict[str, str | None], catalog: dict[str, Any], report: IngestReport) -> None:
    """The FX-week check (bqx.bars.alignment) of the pairs read, as warnings under every policy: months are
    written as they are read, so a finding cannot refuse them any more; it names the --tz of the re-ingest."""
    pairs = sorted(p for p in zones if p in catalog)
    bars = stored_timestamps(root, pairs)
    if bars is None:
        return
    checked = check_alignment(bars, zones, stored_timestamps(root, sorted(p for p in catalog if p not in zones)))
    report.alignment = checked.to_dict()
    for f in checked.findings:
        report.notes.append(f"warning: {f.message} (rule {MISALIGNED}). {f.hint.replace('Ingest', 'Re-ingest')}")


def _known() -> set[str]:
    from bqx.universe import PAIR_NAMES

    return set(PAIR_NAMES)


def _update_catalog(root: Path, catalog: dict[str, Any], state: dict[str, Any], touched: set[str],
                    report: IngestReport) -> None:
    """pairs.json entries of the pairs read, from the per-month state (what every month of the pair holds)."""
    for pair in sorted(touched):
        months = {m: v for m, v in state.get(pair, {}).get("months", {}).items() if v["written"]}
        if not months:
            catalog.pop(pair, None)
            continue
        src = state[pair]["source"]
        catalog[pair] = {
            "basis": state[pair].get("basis", "mid"), "has_volume": any(v["has_volume"] for v in months.values()),
            "has_bidask": all(v["has_bidask"] for v in months.values()), "source": src, "sources": [src],
            "rows": sum(v["written"] for v in months.values()),
            "start": min(v["start"] for v in months.values()), "end": max(v["end"] for v in months.values())}
        report.pairs[pair] = {"rows": catalog[pair]["rows"], "basis": catalog[pair]["basis"],
                              "has_volume": catalog[pair]["has_volume"], "has_bidask": catalog[pair]["has_bidask"],
                              "start": catalog[pair]["start"], "end": catalog[pair]["end"], "months": sorted(months)}
    if touched:
        write_pairs(root, catalog)
