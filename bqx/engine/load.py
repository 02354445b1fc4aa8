"""`load`: stored features joined per (pair, ts), plus views computed with their context, as a LazyFrame."""

from __future__ import annotations

import difflib
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from bqx.bar_schema import BAR_COLUMNS
from bqx.store.manifest import stored_params
from bqx.engine.partitions import parse_month
from bqx.engine.plan import stage_specs
from bqx.store.backend import backend_for, is_url, polars_storage_options, root_name
from bqx.store.layout import BARS, bars_partitions, partition_path, partition_rel, read_partition
from bqx.errors import UsageError
from bqx.core.declaration import Ctx, PairInfo
from bqx.core.registry import REGISTRY
from bqx.core.runner import params_for, run_pair_family


def load(
    store: str | os.PathLike[str],
    pairs: Sequence[str] | None = None,
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    columns: Sequence[str] | None = None,
) -> pl.LazyFrame:
    """A LazyFrame of `pair`, `ts` and the stored feature columns (and views) of the store.

    `start`/`end`: months "YYYY-MM" (inclusive) or ISO timestamps (ts >= start, ts <= end).
    `columns`: feature (or bar) columns to keep; default every stored and view column. Views
    (lags) are computed from the stored columns they read, with the rows before `start` as context.
    """
    root: Any = root_name(store) if is_url(store) else Path(store)  # an s3:// store is read where it is
    _LISTINGS.pop(str(root), None)
    params = _params(root)
    specs = stage_specs(params)
    views = [f for f in REGISTRY if f.view]
    files = bars_partitions(root)
    m0 = parse_month(start) if start is not None else None
    m1 = parse_month(end) if end is not None else None
    t0 = _ts(start)
    t1 = _ts(end)
    sel = sorted(k for k in files if (pairs is None or k[0] in pairs) and (m0 is None or k[1] >= m0)
                 and (m1 is None or k[1] <= m1))
    owner: dict[str, tuple[str, str]] = {}  # column -> (kind, stage or family)
    for name, spec in specs.items():
        for c in spec.columns:
            owner[c] = ("stage", name)
    for fam in views:
        for c in fam.column_names(params_for(fam, params)):
            owner[c] = ("view", fam.name)
    wanted = list(columns) if columns is not None else [c for c in owner if _stored_or_view(root, owner[c], specs)]
    bar_cols = [c for c in wanted if c in BAR_COLUMNS and c != "ts"]
    unknown = [c for c in wanted if c not in owner and c not in BAR_COLUMNS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(owner), n=3)
        raise UsageError(f"unknown columns {unknown}" + (f"; did you mean {', '.join(close)}?" if close else ""))
    spine = _scan(root, BARS, sel, ["ts", *bar_cols])
    if spine is None:
        return pl.LazyFrame(schema={"pair": pl.String, "ts": pl.Datetime("us", "UTC")})
    out = spine
    for name in specs:
        cols = [c for c in wanted if owner.get(c) == ("stage", name)]
        if not cols:
            continue
        part = _scan(root, name, [k for k in sel if _exists(root, partition_rel(name, *k))], ["ts", *cols])
        if part is None:
            out = out.with_columns([pl.lit(None, pl.Float64).alias(c) for c in cols])
        else:
            out = out.join(part, on=["pair", "ts"], how="left", maintain_order="left")
    for fam in views:
        cols = [c for c in wanted if owner.get(c) == ("view", fam.name)]
        if cols:
            frame = _view(root, fam, params_for(fam, params), specs, files, sel, cols)
            out = out.join(frame.lazy(), on=["pair", "ts"], how="left", maintain_order="left")
    if t0 is not None:
        out = out.filter(pl.col("ts") >= t0)
    if t1 is not None:
        out = out.filter(pl.col("ts") <= t1)
    return out.select("pair", "ts", *[c for c in wanted if c != "ts"])


def _params(root: Path) -> dict[str, Any] | None:
    return stored_params(root) or None



def _ts(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    text = str(value)
    if len(text) == 7:
        return None
    from datetime import timezone

    ts = datetime.fromisoformat(text)
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def _stored_or_view(root: Path, owner: tuple[str, str], specs: Mapping[str, Any]) -> bool:
    if owner[0] == "view":
        fam = REGISTRY.get(owner[1])
        return all(_stored_or_view(root, ("stage", REGISTRY.get(i).stage), specs) for i in fam.inputs if i != "bars")
    if is_url(root):
        return any(rel.startswith(f"{owner[1]}/") for rel in _listing(root))
    return (root / owner[1]).is_dir()


_LISTINGS: dict[str, frozenset[str]] = {}


def _listing(root: Any) -> frozenset[str]:
    """An object store's files, from one listing per `load` call (`load` clears it when it starts)."""
    key = str(root)
    if key not in _LISTINGS:
        _LISTINGS[key] = frozenset(backend_for(root).stats())
    return _LISTINGS[key]


def _exists(root: Any, rel: str) -> bool:
    return rel in _listing(root) if is_url(root) else (Path(root) / rel).is_file()


def _scan_file(root: Any, stage: str, pair: str, month: str, options: dict[str, str] | None) -> pl.LazyFrame:
    """A lazy scan of one store file, in place: a local file, or the object through polars' S3 reader."""
    path = partition_path(root, stage, pair, month)
    if options is not None:
        return pl.scan_parquet(str(path), storage_options=options)
    return pl.scan_parquet(path)


def _rows(root: Any, stage: str, pair: str, month: str) -> int:
    return backend_for(root).parquet_metadata(partition_rel(stage, pair, month)).num_rows


def _scan(root: Path, stage: str, keys: Sequence[tuple[str, str]], cols: Sequence[str]) -> pl.LazyFrame | None:
    options = polars_storage_options() if is_url(root) else None
    parts = [_scan_file(root, stage, p, m, options).select(pl.lit(p, pl.String).alias("pair"), *cols)
             for p, m in keys]
    return pl.concat(parts, how="vertical") if parts else None


def _view(root: Path, fam: Any, params: Mapping[str, Any], specs: Mapping[str, Any], files: Mapping[tuple[str, str], Path],
          sel: Sequence[tuple[str, str]], cols: Sequence[str]) -> pl.DataFrame:
    """Compute a view per pair over the selected months plus the previous rows it needs as context."""
    context = fam.context(params)
    from bqx.engine.source import baseline_of

    baseline = baseline_of(root) or datetime.fromisoformat("1970-01-01T00:00:00+00:00")
    inputs = [REGISTRY.get(i).stage for i in fam.inputs if i != "bars"]
    frames = []
    by_pair: dict[str, list[str]] = {}
    for p, m in sel:
        by_pair.setdefault(p, []).append(m)
    for pair, months in by_pair.items():
        every = sorted(m for q, m in files if q == pair)
        first = every.index(months[0])
        before, n = [], 0
        while n < context and first - len(before) - 1 >= 0:
            prev = every[first - len(before) - 1]
            before.insert(0, prev)
            n += _rows(root, BARS, pair, prev)
        use = before + months
        frame = pl.concat([read_partition(root, partition_rel(BARS, pair, m)) for m in use])
        for stage in inputs:
            up = pl.concat([read_partition(root, partition_rel(stage, pair, m)) for m in use
                            if _exists(root, partition_rel(stage, pair, m))])
            frame = frame.join(up, on="ts", how="left", maintain_order="left")
        ctx = Ctx(params=params, baseline_time=baseline, pair=PairInfo(pair))
        out = run_pair_family(fam, frame, ctx)
        keep = frame.height - sum(_rows(root, BARS, pair, m) for m in months)
        frames.append(pl.concat([frame.select("ts"), out], how="horizontal").slice(keep)
                      .select(pl.lit(pair, pl.String).alias("pair"), "ts", *cols))
    return pl.concat(frames) if frames else pl.DataFrame(schema={"pair": pl.String, "ts": pl.Datetime("us", "UTC"),
                                                                  **{c: pl.Float64 for c in cols}})
