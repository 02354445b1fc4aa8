"""What an export reads from a store: pairs, months, the selected columns, one pair-month at a time.

Stored columns and views come from the engine's `load` (views computed with their context
rows); this module decides which families and columns are exported and checks that every
selected stage has every (pair, month) partition, so a missing partition is an error rather
than a column of NULLs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from bqx.engine.manifest import stored_params
from bqx.store.layout import BARS, bars_partitions, partition_path
from bqx.errors import UsageError
from bqx.core.registry import REGISTRY
from bqx.core.runner import params_for

TARGETS = "targets"


@dataclass(frozen=True)
class Selection:
    """The families, columns and partitions of one export."""

    store: Path
    pairs: tuple[str, ...]
    months: Mapping[str, tuple[str, ...]]  # pair -> months with bars
    families: tuple[str, ...]  # exported families, registry order, targets last
    features: tuple[str, ...]  # feature columns (views included), in family order
    targets: tuple[str, ...]
    params: Mapping[str, Mapping[str, Any]]
    catalog: tuple[dict[str, Any], ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.features + self.targets


def select(store: str | os.PathLike[str], pairs: Sequence[str] | None = None,
           families: Sequence[str] | None = None) -> Selection:
    """Resolve pairs, months and columns; refuse unknown or missing families and incomplete stages."""
    from bqx.catalog import catalog

    root = Path(store)
    if not (root / BARS).is_dir():
        raise UsageError(f"{root} is not a bqx store (no bars/ directory)",
                         hint="Run `bqx run --store DIR` first, or pass the right --store.")
    files = bars_partitions(root)
    by_pair: dict[str, list[str]] = {}
    for p, m in files:
        by_pair.setdefault(p, []).append(m)
    if pairs:
        missing = [p for p in pairs if p not in by_pair]
        if missing:
            raise UsageError(f"pairs {missing} have no bars in store {root}; it has {' '.join(sorted(by_pair)) or 'none'}")
        by_pair = {p: by_pair[p] for p in pairs}
    if not by_pair:
        raise UsageError(f"store {root} has no bars", hint="Run `bqx run` first.")
    params = stored_params(root)

    def available(name: str) -> bool:
        fam = REGISTRY.get(name)
        if fam.view:
            return all(available(i) for i in fam.inputs if i != "bars")
        return (root / fam.stage).is_dir()

    if families:
        names = list(dict.fromkeys(families))
        for name in names:
            REGISTRY.get(name)  # unknown names raise with suggestions
        absent = [n for n in names if not available(n)]
        if absent:
            raise UsageError(f"families {absent} are not in store {root}",
                             hint="Compute them first: bqx run --stages " + ",".join(REGISTRY.get(n).stage for n in absent))
    else:
        names = [f.name for f in REGISTRY if available(f.name)]
    if not available(TARGETS):
        raise UsageError(f"store {root} has no targets; an export needs them",
                         hint="Run `bqx run --stages targets` (or a full `bqx run`) first.")
    names = [n for n in names if n != TARGETS]
    stages = sorted({REGISTRY.get(s).stage for n in names + [TARGETS] for s in _stored_inputs(n)})
    absent_parts = [(s, p, m) for s in stages for p, ms in by_pair.items() for m in ms
                    if not partition_path(root, s, p, m).is_file()]
    if absent_parts:
        s, p, m = absent_parts[0]
        raise UsageError(f"store {root} is incomplete: {len(absent_parts)} partitions are missing, e.g. stage {s} "
                         f"pair {p} month {m}", hint="Run `bqx run` (or `bqx run --retry-failed`) first.")
    features = tuple(c for n in names for c in REGISTRY.get(n).column_names(params_for(REGISTRY.get(n), params)))
    tfam = REGISTRY.get(TARGETS)
    targets = tuple(tfam.column_names(params_for(tfam, params)))
    rows = tuple(catalog(names + [TARGETS], params))
    return Selection(root, tuple(sorted(by_pair)), {p: tuple(ms) for p, ms in sorted(by_pair.items())},
                     tuple(names + [TARGETS]), features, targets, params, rows)


def _stored_inputs(name: str) -> list[str]:
    """The stored family itself, or for a view the stored families it reads."""
    fam = REGISTRY.get(name)
    if not fam.view:
        return [name]
    return [s for i in fam.inputs if i != "bars" for s in _stored_inputs(i)]


def pair_ts(sel: Selection, pair: str) -> np.ndarray:
    """Sorted bar timestamps of one pair (int64 microseconds, UTC), from the bars dataset."""
    parts = [pl.read_parquet(partition_path(sel.store, BARS, pair, m), columns=["ts"]) for m in sel.months[pair]]
    ts = pl.concat(parts)["ts"].sort() if parts else pl.Series("ts", [], dtype=pl.Datetime("us", "UTC"))
    return ts.dt.cast_time_unit("us").cast(pl.Int64).to_numpy()


def read_month(sel: Selection, pair: str, month: str) -> pl.DataFrame:
    """ts and every selected column of one pair-month, float64 as stored, views computed."""
    from bqx.engine.load import load

    frame = load(sel.store, pairs=[pair], start=month, end=month, columns=list(sel.columns)).collect()
    return frame.drop("pair").sort("ts")
