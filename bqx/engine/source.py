"""Bars into the store, the store's baseline time, pair infos and the anchors fixed once per store.

The sample market's pairs are recorded in `pairs.json` (source, basis, volume and bid/ask) before
their bars files are written, so a run killed while it writes them leaves files the rerun knows
as the sample's: it writes the missing ones (before, the files written so far looked like bars
of an unknown source, and the rerun computed those pairs only).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl
import pyarrow.parquet as pq

from bqx.store.manifest import Manifest
from bqx.engine.partitions import add_months, month_span, month_start
from bqx.engine.plan import BarsInventory, StageSpec
from bqx.bar_schema import split_pairs
from bqx.store.backend import backend_for
from bqx.store.layout import (BARS, bars_partitions, bars_stats, digest, partition_path, partition_rel, read_pairs_json,
                              read_partition, write_bars, write_pairs_json)
from bqx.errors import InputError, TaskError, UsageError
from bqx.core.declaration import Ctx
from bqx.store.state import fields_of, info_of, open_state, pair_infos as state_pair_infos
from bqx.universe import PAIR_NAMES

SAMPLE_START = "2024-07"
AUTO = "auto"  # the sample market for a new or sample store, else the bars already in the store


def foreign_pairs(root: str | os.PathLike[str]) -> dict[str, str]:
    """Pairs whose stored bars do not come from the sample market -> their source."""
    info = read_pairs_json(root)
    have = sorted({p for p, _ in bars_partitions(root)})
    return {p: str(info.get(p, {}).get("source", "unknown")) for p in have if info.get(p, {}).get("source") != "sample"}


def refuse_mixing(root: str | os.PathLike[str]) -> None:
    """The sample market is refused into a store that holds bars from another source."""
    foreign = foreign_pairs(root)
    if foreign:
        first = next(iter(foreign))
        raise UsageError(
            f"store {root} holds bars of {len(foreign)} pair(s) from another source ({first} from {foreign[first]}); "
            "the sample market's bars would mix with them",
            hint=f"Run `bqx run --store {root}` without --source (or with --source store) to compute from the bars "
                 "in the store, or pass another --store for the sample market.")


def resolve_source(root: str | os.PathLike[str], source: Any) -> Any:
    """`AUTO` becomes "sample" for a store with no bars or only sample bars, else None (the store's bars)."""
    from bqx.store.backend import is_url

    if is_url(root):  # a missing bucket or a wrong endpoint: one clear line before anything is read
        getattr(backend_for(root), "check_bucket", lambda: None)()
    if isinstance(source, str) and source == AUTO:
        return None if foreign_pairs(root) else "sample"
    return source


def baseline_of(store: str | os.PathLike[str]) -> datetime | None:
    """The store's baseline time, once a run has fixed it (for ingest: bars older than it are refused)."""
    return open_state(store).baseline


def check_not_before_baseline(store: str | os.PathLike[str], first_ts: datetime, what: str = "bars") -> None:
    """Refuse bars older than the store's baseline time (a level anchored on a later price would leak it)."""
    base = baseline_of(store)
    if base is not None and first_ts < base:
        raise InputError(
            f"{what} start at {first_ts.isoformat()}, before this store's baseline time {base.isoformat()}; "
            "bars older than the baseline cannot be added (levels anchored on a later price would leak it)",
            hint="Build a new store (--store) that starts at the earliest month.",
        )


def write_source(root: Path, man: Manifest, opts: Any) -> int:
    """The run's bars into the store (whose lock the run holds) as `opts` (bqx.engine.options.RunOptions) say: the
    sample market's missing months, a frame's bars, or what the bar source (bqx.connect.sources) writes; returns
    how many it wrote (0: nothing new)."""
    source, pairs, start, end = opts.source, opts.pairs, opts.start, opts.end
    if source is None:
        return 0
    if opts.sample:
        start = start or SAMPLE_START
        end = end or add_months(start, 1)
        names = pairs or list(PAIR_NAMES)
        check_not_before_baseline(root, month_start(start), "sample bars")
        refuse_mixing(root)
        have = bars_partitions(root)
        months = month_span(start, end)
        if all((p, m) in have for p in names for m in months):
            return 0
        return _write_sample(root, names, months, have, opts.seed)
    if isinstance(source, pl.DataFrame):
        return write_frame(root, source, "frame")
    return source.write_into(root, pairs=pairs, start=start, end=end)


def write_frame(root: Path, frame: pl.DataFrame, label: str) -> int:
    """Bars with a `pair` column into the store as they are (none older than the baseline); returns the files written."""
    if "pair" not in frame.columns:
        raise InputError("source bars need a `pair` column")
    if frame.height:
        first = frame["ts"].min()
        if isinstance(first, datetime) and first.tzinfo is None:
            first = first.replace(tzinfo=timezone.utc)
        check_not_before_baseline(root, first)
    return len(write_bars(root, frame, source=label))


def _write_sample(root: Path, names: Sequence[str], months: Sequence[str], have: Mapping[tuple[str, str], Path],
                  seed: int) -> int:
    """The sample market's missing bars files, one month at a time (each is generated on its own: memory stays
    flat), each month's pairs recorded in `pairs.json` before their files are written."""
    from bqx.bars.sample import sample_market

    written = 0
    for month in months:
        if all((p, month) in have for p in names):
            continue
        bars = sample_market(pairs=names, start=month, months=1, seed=seed)
        _declare_pairs(root, split_pairs(bars), source="sample", only_missing=True)
        written += len(write_bars(root, bars, source="sample", only_missing=True))
    return written


def _declare_pairs(root: Path, per_pair: Mapping[str, pl.DataFrame], *, source: str,
                   only_missing: bool = False) -> None:
    """Record in `pairs.json`, before their bars are written, the entries `write_bars` gives these pairs' bars."""
    info = read_pairs_json(root)
    for pair, frame in per_pair.items():
        old = info.get(pair, {})
        has_volume = bool(frame.height and (frame["volume"].fill_null(0.0) != 0.0).any())
        has_bidask = bool(frame.height and frame["bid_close"].is_not_null().any()
                          and frame["ask_close"].is_not_null().any())
        info[pair] = {
            "basis": "mid",
            "has_volume": has_volume or bool(old.get("has_volume", False) and only_missing),
            "has_bidask": has_bidask or bool(old.get("has_bidask", False) and only_missing),
            "source": source,
        }
    write_pairs_json(root, info)


def inventory(root: Path, man: Manifest, *, forget_missing: bool = False) -> BarsInventory:
    """The store's bars months with their digests and rows; a month the manifest records but the disk lacks is
    refused (StoreIntegrityError, exit 1) unless `forget_missing` drops it on purpose."""
    files = bars_stats(root)  # one listing: (pair, month) -> (rel, size, stamp)
    known = man.bars()
    gone = sorted(k for k in known if k not in files)
    if gone and not forget_missing:
        from bqx.store.checksum import StoreIntegrityError

        shown = ", ".join(str(partition_path(root, BARS, p, m)) for p, m in gone[:3])
        raise StoreIntegrityError(
            f"{len(gone)} bars month(s) the manifest records are missing on disk: {shown}"
            + (f" and {len(gone) - 3} more" if len(gone) > 3 else ""),
            hint="Restore the file(s) or re-ingest those months (bqx ingest ... --pairs PAIR); to drop them from the "
                 "store on purpose, run `bqx run --forget-missing-bars`.")
    rows: dict[tuple[str, str], int] = {}
    digests: dict[tuple[str, str], str] = {}
    for key, (rel, size, stamp) in files.items():
        cached = known.get(key)
        if cached and (cached[2], cached[3]) == (size, stamp):
            digests[key], rows[key] = cached[0], cached[1]
            continue
        digests[key], rows[key] = digest_and_rows(root, rel)
        man.set_bars(*key, digests[key], rows[key], size, stamp)
    man.drop_bars(gone)
    return BarsInventory({k: v for k, v in rows.items() if v > 0}, digests)


def digest_and_rows(root: str | os.PathLike[str], rel: str) -> tuple[str, int]:
    """A bars file's SHA-256 and row count (on object storage from one read of the object)."""
    b = backend_for(root)
    if b.is_local:
        return digest(root, rel), b.parquet_metadata(rel).num_rows
    import hashlib
    import io

    data = b.read_bytes(rel)
    return hashlib.sha256(data).hexdigest(), pq.read_metadata(io.BytesIO(data)).num_rows


def fix_baseline(man: Manifest, inv: BarsInventory) -> datetime:
    earliest = min(m for _, m in inv.rows)
    stored = man.get_meta("baseline_time")
    if stored is None:
        base = month_start(earliest)
        man.set_meta("baseline_time", base.isoformat())
        return base
    base = datetime.fromisoformat(stored)
    old = sorted(k for k in inv.rows if month_start(k[1]) < base)
    if old:
        raise InputError(
            f"bars of {old[0][0]} {old[0][1]} ({len(old)} partitions) are older than this store's baseline time "
            f"{base.isoformat()}; bars older than the baseline cannot be added (levels anchored on a later price "
            "would leak it)",
            hint="Remove them, or build a new store (--store) that starts at the earliest month.",
        )
    return base


def pair_infos(root: Path, inv: BarsInventory,
               catalog: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Each inventory pair's PairInfo (bqx.store.state's one rule) as the plain fields task specs carry.

    `catalog`: pairs.json as already read (a StoreState's), else it is read here."""
    catalog = read_pairs_json(root) if catalog is None else catalog
    infos = state_pair_infos(root, inv.months_by_pair, catalog)
    return {p: fields_of(i) for p, i in infos.items()}


def ensure_anchors(root: Path, man: Manifest, specs: Mapping[str, StageSpec], planned: Sequence[str],
                    inv: BarsInventory, baseline: datetime, infos: Mapping[str, Any]) -> dict[tuple[str, str], Any]:
    """Anchors fixed once per store (per pair for per-pair families) from the bars at/after the baseline."""
    anchors = man.anchors()
    pinfo = {p: info_of(p, i) for p, i in infos.items()}
    for name in planned:
        spec = specs[name]
        for fam in spec.families:
            if fam.anchor is None:
                continue
            p = spec.params[fam.name]
            try:
                if fam.cross_pair:
                    if (fam.name, "") not in anchors:
                        first = min(m for _, m in inv.rows)
                        pairs = inv.pairs_in(first)
                        long = pl.concat([read_partition(root, partition_rel(BARS, q, first))
                                          .select(pl.lit(q).alias("pair"), pl.all()) for q in pairs]).sort("pair", "ts")
                        ctx = Ctx(params=p, baseline_time=baseline, pairs=pinfo)
                        anchors[(fam.name, "")] = dict(fam.anchor(long, ctx))
                        man.set_anchor(fam.name, None, anchors[(fam.name, "")])
                    continue
                for pair, months in inv.months_by_pair.items():
                    if (fam.name, pair) in anchors:
                        continue
                    frame = read_partition(root, partition_rel(BARS, pair, months[0])).sort("ts")
                    ctx = Ctx(params=p, baseline_time=baseline, pair=pinfo[pair], pairs=pinfo)
                    anchors[(fam.name, pair)] = dict(fam.anchor(frame, ctx))
                    man.set_anchor(fam.name, pair, anchors[(fam.name, pair)])
            except Exception as exc:  # noqa: BLE001 - reported with the family, stops the run
                raise TaskError(f"family {fam.name}: computing its anchor failed: {type(exc).__name__}: {exc}") from exc
    return anchors


def select_months(inv: BarsInventory, start: str | None, end: str | None) -> list[str]:
    months = sorted({m for _, m in inv.rows})
    return [m for m in months if (start is None or m >= start) and (end is None or m <= end)]
