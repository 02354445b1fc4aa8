"""Which of its visible columns a family really reads, found by running it without them.

A family may read `ts`, the bar columns and every column of its input families; most read a few.
Handing it only those makes each minute's frames small and the cache shallow. A column set is
dropped only when the family's whole output stays identical without it (bisection over the
columns); a last run with the kept columns alone must reproduce the output exactly, else the
family keeps every visible column.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import polars as pl

Compute = Callable[[pl.DataFrame], Any]


def read_columns(compute: Compute, frame: pl.DataFrame, keep: Sequence[str] = ("ts", "pair")) -> tuple[str, ...]:
    """The columns of `frame` that `compute` reads (those in `keep` always stay)."""
    ref = compute(frame)
    fixed = [c for c in frame.columns if c in keep]
    candidates = [c for c in frame.columns if c not in keep]

    def same(drop: Sequence[str]) -> bool:
        try:
            return _equal(compute(frame.drop(drop)), ref)
        except Exception:  # noqa: BLE001 - a missing column the family needs raises; that is the answer
            return False

    needed: list[str] = []

    def bisect(cols: list[str]) -> None:
        if not cols or same(cols):
            return
        if len(cols) == 1:
            needed.append(cols[0])
            return
        mid = len(cols) // 2
        bisect(cols[:mid])
        bisect(cols[mid:])

    bisect(candidates)
    kept = [c for c in frame.columns if c in fixed or c in needed]
    if not same([c for c in frame.columns if c not in kept]):
        return tuple(frame.columns)
    return tuple(kept)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, pl.DataFrame) and isinstance(b, pl.DataFrame):
        return a.columns == b.columns and a.equals(b, null_equal=True)
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
        return all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return False
