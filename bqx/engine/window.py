"""A task's window: which months and which rows of each pair one task reads (PIPELINE.md §4).

One rule, written once, for everything that computes a family over a span and must agree with
the store: the engine's worker (that writes it), the validator (that recomputes it, cut and
perturbed) and a live session (that extends it one bar at a time).

- A per-pair task of the span [start, end) reads its pair's bars of the span, `context` rows
  before it and `lookahead` rows after it.
- A cross-pair (month) task reads one time range for every pair: from the earliest, over the
  pairs, of each pair's `context`-th row before `start`, to the latest, over the pairs, of each
  pair's `lookahead`-th row after the span's last bar. Every pair has all its rows in that range,
  so the pairs' rows line up in time whatever their gaps, first or last bars.

`task_months` is the same rule on months and row counts (what the planner knows before reading a
bar); `task_rows` on the timestamps themselves; `task_spans` turns rows into (month, first, stop)
slices of the month files, and `task_frames` applies the rule to frames already in memory.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Mapping, Sequence

import numpy as np
import polars as pl

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
Bounds = dict[str, tuple[int, int]]  # pair -> [first row, stop row) of its concatenated timestamps


def epoch_us(t: datetime | int) -> int:
    """Microseconds since the epoch of an aware datetime (an int is taken as microseconds already)."""
    if isinstance(t, (int, np.integer)):
        return int(t)
    return (t - _EPOCH) // timedelta(microseconds=1)


def _us(ts: np.ndarray | pl.Series) -> np.ndarray:
    if isinstance(ts, pl.Series):
        return ts.dt.epoch("us").to_numpy() if ts.dtype != pl.Int64 else ts.to_numpy()
    return np.asarray(ts, dtype=np.int64)


def task_rows(ts: Mapping[str, np.ndarray | pl.Series], start: datetime | int, end: datetime | int, *,
              context: int, lookahead: int, month_task: bool) -> Bounds:
    """Per pair, the rows [lo, hi) of its sorted timestamps `ts` that the task of [start, end) reads."""
    t_start, t_end = epoch_us(start), epoch_us(end)
    arrays = {p: _us(t) for p, t in ts.items()}
    bounds: Bounds = {}
    for pair, t in arrays.items():
        i0 = int(np.searchsorted(t, t_start, side="left"))
        i1 = int(np.searchsorted(t, t_end, side="left"))
        bounds[pair] = (max(0, i0 - context), min(t.size, i1 + lookahead))
    if not month_task:
        return bounds
    nonempty = {p: b for p, b in bounds.items() if b[1] > b[0]}
    if not nonempty:
        return {p: (0, t.size) for p, t in arrays.items()}
    t0 = min(int(arrays[p][lo]) for p, (lo, _) in nonempty.items())
    t1 = max(int(arrays[p][hi - 1]) for p, (_, hi) in nonempty.items())
    return {p: (int(np.searchsorted(t, t0, side="left")), int(np.searchsorted(t, t1, side="right")))
            for p, t in arrays.items()}


def task_spans(parts: Mapping[str, Sequence[tuple[str, np.ndarray | pl.Series]]], start: datetime, end: datetime, *,
               context: int, lookahead: int, month_task: bool) -> dict[str, list[tuple[str, int, int]]]:
    """Per pair, the (month, first row, stop row) slices of its month files that the task reads.

    `parts`: per pair, its months read in order with each month's sorted timestamps. A pair keeps at
    least an empty slice of its last month, so it is never absent from the task.
    """
    ts = {p: (np.concatenate([_us(t) for _, t in ms]) if ms else np.empty(0, np.int64)) for p, ms in parts.items()}
    bounds = task_rows(ts, start, end, context=context, lookahead=lookahead, month_task=month_task)
    out: dict[str, list[tuple[str, int, int]]] = {}
    for pair, (lo, hi) in bounds.items():
        spans, offset = [], 0
        months = parts[pair]
        for month, t in months:
            n = len(t)
            a, b = max(lo - offset, 0), min(hi - offset, n)
            if b > a or (not spans and month == months[-1][0]):
                spans.append((month, a, max(a, b)))
            offset += n
        out[pair] = spans
    return out


def task_frames(frames: Mapping[str, pl.DataFrame], start: datetime | int, end: datetime | int, *, context: int,
                lookahead: int, month_task: bool) -> dict[str, pl.DataFrame]:
    """`frames` (per pair, sorted by ts) cut to the task's window; pairs left without a row are dropped."""
    bounds = task_rows({p: f["ts"] for p, f in frames.items()}, start, end, context=context, lookahead=lookahead,
                       month_task=month_task)
    return {p: frames[p].slice(lo, hi - lo) for p, (lo, hi) in bounds.items() if hi > lo}


def task_months(months_by_pair: Mapping[str, Sequence[str]], rows: Mapping[tuple[str, str], int], pair: str | None,
                month: str, *, context: int, lookahead: int, month_task: bool) -> dict[str, tuple[str, ...]]:
    """Per pair, the months the task of (pair, month) reads: enough whole months for its context and
    lookahead rows; a month task reads, for every pair with bars in `month`, the months between the
    earliest and the latest any pair needs (the rows of `task_rows` lie in them)."""
    if not month_task:
        assert pair is not None, "a per-pair task needs its pair"
        return {pair: _months_around(months_by_pair[pair], rows, pair, month, context, lookahead)}
    pairs = sorted(p for p, ms in months_by_pair.items() if month in ms)
    windows = [_months_around(months_by_pair[p], rows, p, month, context, lookahead) for p in pairs]
    lo = min((w[0] for w in windows), default=month)
    hi = max((w[-1] for w in windows), default=month)
    return {p: tuple(m for m in months_by_pair[p] if lo <= m <= hi) for p in pairs}


def _months_around(months: Sequence[str], rows: Mapping[tuple[str, str], int], pair: str, month: str, before: int,
                   after: int) -> tuple[str, ...]:
    months = list(months)
    i = months.index(month)
    lo, n = i, 0
    while before > 0 and n < before and lo > 0:
        lo -= 1
        n += rows[(pair, months[lo])]
    hi, n = i, 0
    while after > 0 and n < after and hi < len(months) - 1:
        hi += 1
        n += rows[(pair, months[hi])]
    return tuple(months[lo: hi + 1])
