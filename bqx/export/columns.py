"""Empty and constant columns of an export: found per pair and split, listed, optionally dropped.

Two cheap sources, no second read of the data:

- Before writing, `empty_in_store` reads only the Parquet footers of the selected stored stages
  (the writer's per-row-group null counts) and names the columns that have no value in any
  partition of any exported pair. Those are the columns `--drop-empty` (the default) leaves out,
  so every file of one export keeps one schema. A view's columns (computed at export, no
  footer) are never dropped; they are still listed when empty.
- While writing, `FileStats.of` takes each written file's per-column count of values (the null
  counts Arrow keeps with every column, no pass), minimum and maximum (one vectorised select over
  the frame already in memory, in its written dtype); `ColumnCensus` merges them per pair and split
  and says, per column, where it is empty (no value) or constant (all its values equal).

The census is written to metadata/columns.json; its counts are the ones the CLI summary prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import polars as pl

from bqx.export.splits import SPLITS

EMPTY = "empty"
CONSTANT = "constant"
RULE = ("empty: no non-NULL value in the pair's rows of the split; constant: at least one value, all values equal "
        "(as written, after the cast to the export's precision). A column is dropped (--drop-empty, the default) only "
        "when the store has no value of it for any exported pair; views are never dropped.")


@dataclass
class FileStats:
    """Rows, and per column the count of values, the minimum and the maximum, of one written frame."""

    rows: int
    n: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def of(cls, frame: pl.DataFrame, columns: Sequence[str]) -> "FileStats":
        k = len(columns)
        if not k or frame.height == 0:
            return cls(frame.height, np.zeros(k), np.full(k, np.inf), np.full(k, -np.inf))
        x = frame.select(columns)
        n = np.asarray([x.height - s.null_count() for s in x.iter_columns()], dtype=np.float64)
        row = x.select(pl.all().min().name.prefix("lo_"), pl.all().max().name.prefix("hi_")).row(0)
        lo = np.asarray([np.inf if v is None else float(v) for v in row[:k]], dtype=np.float64)
        hi = np.asarray([-np.inf if v is None else float(v) for v in row[k:]], dtype=np.float64)
        return cls(frame.height, n, lo, hi)

    def merge(self, other: "FileStats") -> None:
        self.rows += other.rows
        self.n = self.n + other.n
        self.lo = np.minimum(self.lo, other.lo)
        self.hi = np.maximum(self.hi, other.hi)


@dataclass
class ColumnCensus:
    """Per (pair, split) merged FileStats of the exported columns, and what they say."""

    columns: tuple[str, ...]
    dropped: tuple[str, ...] = ()
    drop_empty: bool = True
    stats: dict[tuple[str, str], FileStats] = field(default_factory=dict)

    def add(self, pair: str, split: str, s: FileStats) -> None:
        """Fold one written file in; call in a fixed order (the exporter merges in pair-month order)."""
        key = (pair, split)
        if key in self.stats:
            self.stats[key].merge(s)
        else:
            self.stats[key] = FileStats(s.rows, s.n.copy(), s.lo.copy(), s.hi.copy())

    def where(self, state: str) -> dict[str, dict[str, list[str]]]:
        """{column: {split: [pairs]}} where the column is `state` (EMPTY or CONSTANT) in the pair's rows of the split."""
        out: dict[str, dict[str, list[str]]] = {}
        for (pair, split), s in sorted(self.stats.items()):
            if not s.rows:
                continue
            hit = (s.n == 0) if state == EMPTY else ((s.n > 0) & (s.lo == s.hi))
            for i in np.flatnonzero(hit):
                out.setdefault(self.columns[i], {}).setdefault(split, []).append(pair)
        return {c: {sp: v[sp] for sp in SPLITS if sp in v} for c, v in sorted(out.items())}

    def everywhere(self, state: str) -> list[str]:
        """The columns that are `state` in every (pair, split) with rows."""
        groups = [k for k, s in self.stats.items() if s.rows]
        n = len(groups)
        return sorted(c for c, by in self.where(state).items() if n and sum(len(p) for p in by.values()) == n)

    def counts(self) -> dict[str, int]:
        """The numbers of the summary, all from this census."""
        empty, constant = self.where(EMPTY), self.where(CONSTANT)
        return {"exported": len(self.columns), "dropped": len(self.dropped), "empty_somewhere": len(empty),
                "empty_everywhere": len(self.everywhere(EMPTY)), "constant_somewhere": len(constant),
                "constant_everywhere": len(self.everywhere(CONSTANT))}

    def to_dict(self) -> dict[str, Any]:
        empty, constant = self.where(EMPTY), self.where(CONSTANT)
        return {
            "rule": RULE,
            "drop_empty": self.drop_empty,
            "counts": self.counts(),
            "dropped": list(self.dropped),
            "empty_everywhere": self.everywhere(EMPTY),
            "constant_everywhere": self.everywhere(CONSTANT),
            "columns": {c: {k: v for k, v in ((EMPTY, empty.get(c)), (CONSTANT, constant.get(c))) if v}
                        for c in sorted(set(empty) | set(constant))},
            "by_pair": {p: {sp: {EMPTY: int((s.n == 0).sum()), CONSTANT: int(((s.n > 0) & (s.lo == s.hi)).sum()),
                                 "rows": s.rows}
                            for (pp, sp), s in sorted(self.stats.items()) if pp == p and s.rows}
                        for p in sorted({p for p, _ in self.stats})},
        }


def empty_in_store(store: Any, pairs: Iterable[str], months: Mapping[str, Sequence[str]],
                   stage_columns: Mapping[str, Sequence[str]]) -> list[str]:
    """The stored columns with no non-NULL value in any partition of `pairs`, read from Parquet footers only.

    `stage_columns` maps a stage to its selected stored columns. A column whose footer has no
    null count (statistics missing) counts as having values, so it is never dropped on a guess.
    """
    import pyarrow.parquet as pq

    from bqx.store.backend import backend_for
    from bqx.store.layout import partition_rel

    backend = backend_for(store)  # footers only: ranged reads on object storage

    empty: list[str] = []
    for stage, cols in stage_columns.items():
        left = set(cols)
        for pair in pairs:
            for month in months[pair]:
                if not left:
                    break
                md = backend.parquet_metadata(partition_rel(stage, pair, month))
                names = md.schema.to_arrow_schema().names
                for j, name in enumerate(names):
                    if name not in left:
                        continue
                    for g in range(md.num_row_groups):
                        cc = md.row_group(g).column(j)
                        st = cc.statistics
                        if st is None or not st.has_null_count or st.null_count < md.row_group(g).num_rows:
                            left.discard(name)
                            break
        empty += [c for c in cols if c in left]
    return empty


def summary_counts(census: ColumnCensus, scaler: Any, scaled: Sequence[str]) -> dict[str, int]:
    """Every column number an export reports (CLI summary, ExportResult, metadata), from one census and one scaler.

    exported = scaled_kinds + not_scaled; scaled_kinds = fitted + no_training_values; selected = exported + dropped.
    """
    fitted = set(scaler.fitted_columns())
    scaled_kinds = [c for c in scaled if c in set(census.columns)]
    c = census.counts()
    return {"selected": c["exported"] + c["dropped"], **c, "scaled_kinds": len(scaled_kinds),
            "fitted": sum(1 for x in scaled_kinds if x in fitted),
            "no_training_values": sum(1 for x in scaled_kinds if x not in fitted),
            "not_scaled": c["exported"] - len(scaled_kinds)}
