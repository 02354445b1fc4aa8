"""Running families on in-memory frames: dependency order, anchors, output checks.

The engine runs the same functions on a partition plus its context; `bqx.compute` runs them on
whole series. Nothing here knows about the store.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

import polars as pl

from bqx.bar_schema import BAR_COLUMNS, source_of, split_pairs
from bqx.core.declaration import Ctx, Family, FamilyOutputError, PairInfo, check_output
from bqx.core.registry import REGISTRY

ParamsByFamily = Mapping[str, Mapping[str, Any]]


def resolve(names: Iterable[str] | None = None, *, include_views: bool = True) -> list[Family]:
    """The named families and everything they read, in dependency order (all families if None)."""
    wanted = list(names) if names is not None else [f.name for f in REGISTRY]
    order: list[Family] = []
    seen: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in seen:
            return
        if name in path:
            raise ValueError(f"families form a cycle: {' -> '.join(path + (name,))}")
        fam = REGISTRY.get(name)
        for dep in fam.inputs:
            if dep != "bars":
                visit(dep, path + (name,))
        seen.add(name)
        order.append(fam)

    for name in wanted:
        visit(name, ())
    return [f for f in order if include_views or not f.view]


def baseline_time(first_ts: datetime) -> datetime:
    """00:00 UTC on the first day of the month of `first_ts`."""
    ts = first_ts.astimezone(timezone.utc)
    return datetime(ts.year, ts.month, 1, tzinfo=timezone.utc)


def params_for(fam: Family, params: ParamsByFamily | None) -> Mapping[str, Any]:
    return fam.resolve_params((params or {}).get(fam.name))


def pair_info(pair: str, bars: pl.DataFrame, basis: str = "mid") -> PairInfo:
    """Price basis, and whether any volume is non-zero and any bid/ask is present."""
    return source_of(pair, bars, basis)  # type: ignore[arg-type]


def visible_columns(fam: Family, params: ParamsByFamily | None) -> list[str]:
    """What a family may read: `ts`, the bar columns and the columns of the families it names as inputs."""
    cols = list(BAR_COLUMNS)
    for dep in fam.inputs:
        if dep != "bars":
            d = REGISTRY.get(dep)
            cols += d.column_names(params_for(d, params))
    return cols


def _visible(fam: Family, frame: pl.DataFrame, params: ParamsByFamily | None) -> pl.DataFrame:
    """`frame` narrowed to what `fam` declares it reads (and `pair` for cross-pair frames)."""
    allowed = set(visible_columns(fam, params)) | {"pair"}
    return frame.select([c for c in frame.columns if c in allowed])


def run_pair_family(fam: Family, frame: pl.DataFrame, ctx: Ctx) -> pl.DataFrame:
    """Compute a per-pair family on `frame` (one pair, time order) and check it against its declaration."""
    out = fam.compute(frame, ctx)
    return check_output(fam, out, frame.height, ctx.params)


def run_cross_family(fam: Family, frame: pl.DataFrame, ctx: Ctx) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """Compute a cross-pair family on a long frame sorted by (pair, ts).

    Returns its declared columns aligned to the input rows, and its tables (each with `ts`).
    """
    result = fam.compute(frame, ctx)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise FamilyOutputError(f"cross-pair family {fam.name} must return (columns, tables)")
    cols, tables = result
    check_output(fam, cols, frame.height, ctx.params)
    if set(tables) != set(fam.tables):
        raise FamilyOutputError(f"family {fam.name} returned tables {sorted(tables)}, declared {sorted(fam.tables)}")
    return cols, dict(tables)


def compute_frames(
    bars_by_pair: Mapping[str, pl.DataFrame],
    families: Sequence[Family],
    *,
    params: ParamsByFamily | None = None,
    infos: Mapping[str, PairInfo] | None = None,
    baseline: datetime | None = None,
    anchors: dict[str, Any] | None = None,
) -> tuple[dict[str, pl.DataFrame], dict[str, pl.DataFrame]]:
    """Compute `families` (already in dependency order) over whole series, one frame per pair.

    Returns the per-pair wide frames (bars + every computed column) and the tables of cross-pair
    families. `anchors` (family name -> anchor, per pair for per-pair families) is filled in where
    missing, so a caller can keep them fixed across calls.
    """
    frames = {p: f for p, f in sorted(bars_by_pair.items())}
    infos = dict(infos or {p: pair_info(p, f) for p, f in frames.items()})
    nonempty = [f["ts"].min() for f in frames.values() if f.height]
    if baseline is None:
        baseline = baseline_time(min(nonempty)) if nonempty else datetime(1970, 1, 1, tzinfo=timezone.utc)
    anchors = anchors if anchors is not None else {}
    tables: dict[str, pl.DataFrame] = {}
    for fam in families:
        p = params_for(fam, params)
        if fam.cross_pair:
            long = _long({pr: _visible(fam, f, params) for pr, f in frames.items()})
            anchor = anchors.get(fam.name)
            ctx = Ctx(params=p, baseline_time=baseline, pairs=infos, anchor=anchor)
            if fam.anchor is not None and anchor is None:
                anchor = anchors[fam.name] = dict(fam.anchor(long, ctx))
                ctx = Ctx(params=p, baseline_time=baseline, pairs=infos, anchor=anchor)
            cols, tabs = run_cross_family(fam, long, ctx)
            tables.update(tabs)
            merged = pl.concat([long.select("pair"), cols], how="horizontal")
            for pair in frames:
                part = merged.filter(pl.col("pair") == pair).drop("pair")
                frames[pair] = frames[pair].hstack(part)
        else:
            per_pair = anchors.setdefault(fam.name, {}) if fam.anchor is not None else {}
            for pair, frame in frames.items():
                ctx = Ctx(params=p, baseline_time=baseline, pair=infos[pair], pairs=infos, anchor=per_pair.get(pair))
                if fam.anchor is not None and pair not in per_pair:
                    per_pair[pair] = dict(fam.anchor(frame, ctx))
                    ctx = Ctx(params=p, baseline_time=baseline, pair=infos[pair], pairs=infos, anchor=per_pair[pair])
                frames[pair] = frame.hstack(run_pair_family(fam, _visible(fam, frame, params), ctx))
    return frames, tables


def _long(frames: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    parts = [f.select(pl.lit(p).alias("pair"), pl.all()) for p, f in frames.items()]
    return pl.concat(parts, how="vertical") if parts else pl.DataFrame()


def compute(bars: Any, families: Iterable[str] | None = None, *, params: ParamsByFamily | None = None) -> pl.DataFrame:
    """Compute families (default: all) on an in-memory bar frame; returns pair, ts and their columns."""
    wanted = list(families) if families is not None else [f.name for f in REGISTRY]
    order = resolve(wanted)
    frames, _ = compute_frames(split_pairs(bars), order, params=params)
    keep = [c for f in order if f.name in wanted for c in f.column_names(params_for(f, params))]
    parts = [f.select(pl.lit(p).alias("pair"), "ts", *keep) for p, f in frames.items()]
    return pl.concat(parts) if parts else pl.DataFrame()


__all__ = ["BAR_COLUMNS", "compute", "compute_frames", "resolve", "run_pair_family", "run_cross_family"]
