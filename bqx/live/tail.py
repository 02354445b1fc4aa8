"""One pair's cached tail: per column the last rows it must keep, as float64 numpy buffers (NULL is NaN here).

Stored values never contain NaN (FEATURES.md Numerics: undefined is NULL), so NaN in a buffer means
NULL and turns back into NULL when a frame is built. The last row can be dropped again (rollback).
Each column's polars Series is built once per change (a minute's families read the same columns;
their frames are slices of it), and dropped when the column changes.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
import polars as pl

from bqx.bar_schema import TS_DTYPE

SLACK = 1024  # rows appended between two compactions


class Ring:
    """The last `depth` values of one column (at least; up to depth + SLACK before it compacts)."""

    __slots__ = ("arr", "end", "depth")

    def __init__(self, depth: int, dtype: type = np.float64, values: np.ndarray | None = None):
        self.depth = max(1, depth)
        self.arr = np.empty(self.depth + SLACK, dtype=dtype)
        self.end = 0
        if values is not None and len(values):
            v = values[-self.depth:]
            self.arr[: len(v)] = v
            self.end = len(v)

    def append(self, value: float | int) -> None:
        if self.end == len(self.arr):
            self.arr[: self.depth] = self.arr[self.end - self.depth: self.end]
            self.end = self.depth
        self.arr[self.end] = value
        self.end += 1

    def pop(self) -> None:
        self.end -= 1

    def set_last(self, value: float) -> None:
        self.arr[self.end - 1] = value

    def last(self, n: int) -> np.ndarray:
        return self.arr[max(0, self.end - n): self.end]

    @property
    def nbytes(self) -> int:
        return self.arr.nbytes


class PairTail:
    """ts (microseconds since the epoch) and every cached column of one pair, one row per bar."""

    def __init__(self, pair: str, depth: Mapping[str, int], frame: pl.DataFrame | None = None):
        self.pair = pair
        rows = max(depth.values())
        self.rows = 0  # bars seen (stored tail + live), for the warm-up of a young pair
        ts = None
        if frame is not None and frame.height:
            ts = frame["ts"].dt.cast_time_unit("us").dt.epoch("us").to_numpy()
            self.rows = frame.height
        self.ts = Ring(rows, np.int64, ts)
        self.cols: dict[str, Ring] = {}
        self._series: dict[str, pl.Series] = {}  # name -> the column as a Series, until it changes
        for name, d in depth.items():
            values = None
            if frame is not None and name in frame.columns and frame.height:
                values = frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy()
            elif frame is not None and frame.height:
                values = np.full(frame.height, np.nan)
            self.cols[name] = Ring(d, np.float64, values)

    def reshape(self, depth: Mapping[str, int]) -> None:
        """Keep `depth[name]` rows of each column (fewer columns, shallower buffers); ts keeps the deepest."""
        rows = max(depth.values())
        self.ts = Ring(rows, np.int64, self.ts.last(rows))
        self.cols = {name: Ring(d, np.float64, self.cols[name].last(d)) for name, d in depth.items()}
        self._series = {}

    @property
    def last_ts(self) -> int | None:
        return int(self.ts.arr[self.ts.end - 1]) if self.ts.end else None

    def append(self, ts_us: int, values: Mapping[str, float]) -> None:
        """A new row: the given values, NaN (NULL) in every other column until it is computed."""
        self.ts.append(ts_us)
        for name, ring in self.cols.items():
            ring.append(values.get(name, np.nan))
        self.rows += 1
        self._series = {}

    def pop(self) -> None:
        self.ts.pop()
        for ring in self.cols.values():
            ring.pop()
        self.rows -= 1
        self._series = {}

    def set_last(self, values: Mapping[str, float]) -> None:
        for name, v in values.items():
            ring = self.cols.get(name)
            if ring is not None:
                ring.set_last(np.nan if v is None else v)
                self._series.pop(name, None)

    def last_values(self, names: Iterable[str]) -> dict[str, float | None]:
        out = {}
        for n in names:
            v = self.cols[n].arr[self.cols[n].end - 1] if self.cols[n].end else np.nan
            out[n] = None if np.isnan(v) else float(v)
        return out

    def last_array(self, names: Sequence[str]) -> np.ndarray:
        """The last row's values of `names` (NaN for NULL)."""
        cols = self.cols
        return np.fromiter((cols[n].arr[cols[n].end - 1] if cols[n].end else np.nan for n in names), np.float64,
                           len(names))

    def start_of(self, n: int) -> int:
        """ts of the first of the last `n` rows."""
        return int(self.ts.last(n)[0])

    def count_since(self, ts_us: int) -> int:
        """How many of the cached rows have ts >= ts_us."""
        t = self.ts.last(self.ts.end)
        return int(len(t) - np.searchsorted(t, ts_us, side="left"))

    def frame(self, columns: Sequence[str], n: int) -> pl.DataFrame:
        """The last `n` rows (fewer at a pair's data start) of `ts` and `columns`, NaN as NULL."""
        n = min(n, self.ts.end)
        series = [self._column("ts").tail(n)]
        for name in columns:
            if name == "ts":
                continue
            s = self._column(name)
            if s.len() < n:
                raise RuntimeError(f"live cache of {self.pair}: column {name} keeps {s.len()} rows, {n} needed")
            series.append(s.tail(n))
        return pl.DataFrame(series)

    def _column(self, name: str) -> pl.Series:
        s = self._series.get(name)
        if s is None:
            if name == "ts":
                s = pl.Series("ts", self.ts.last(self.ts.end)).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
                s = s.cast(TS_DTYPE)
            else:
                ring = self.cols[name]
                s = pl.Series(name, ring.last(ring.end), dtype=pl.Float64, nan_to_null=True)
            self._series[name] = s
        return s

    @property
    def nbytes(self) -> int:
        return self.ts.nbytes + sum(r.nbytes for r in self.cols.values())
