"""Seeded, stratified choice of the partitions and bar timestamps that the data checks recompute.

Partitions per family: a few (pair, month) of its stored ones, the first on a JPY pair, spread over
pairs, with the first and last month of the data among them; a month task's partition is a month.
Timestamps per partition, in this order until N are taken: the month's first bar, its last bar
(the last bar of the data when the partition holds it), the first bar after the longest gap,
random bars, the first bar after a short gap (a missing minute), more random bars.
"""

from __future__ import annotations

import zlib
from datetime import datetime

import numpy as np
import polars as pl

from bqx.universe import pair as pair_of

DEFAULT_SAMPLES = 6  # timestamps per checked partition
DEFAULT_PARTITIONS = 3  # (pair, month) partitions per per-pair family
DEFAULT_MONTH_TASKS = 1  # months per cross-pair family (each a recompute over every pair)
DEFAULT_BOUNDARY_MONTHS = 1
DEFAULT_BOUNDARY_PAIRS = 2


def rng_for(seed: int, *keys: str) -> np.random.Generator:
    """A generator that depends only on the seed and the keys (stable across runs and processes)."""
    return np.random.default_rng([seed, *(zlib.crc32(k.encode()) for k in keys)])


def is_jpy(name: str) -> bool:
    p = pair_of(name)
    return "JPY" in (p.base, p.quote)


def order_pairs(pairs: list[str], rng: np.random.Generator) -> list[str]:
    """The pairs in a seeded random order with a JPY pair first (when there is one)."""
    shuffled = [pairs[i] for i in rng.permutation(len(pairs))]
    jpy = [p for p in shuffled if is_jpy(p)]
    return ([jpy[0]] if jpy else []) + [p for p in shuffled if not jpy or p != jpy[0]]


def choose_partitions(done: list[tuple[str | None, str]], k: int, rng: np.random.Generator) -> list[tuple[str | None, str]]:
    """Up to k distinct partitions, stratified: distinct pairs (a JPY pair first), first and last months covered."""
    if not done or k <= 0:
        return []
    months = sorted({m for _, m in done})
    pairs = sorted({p for p, _ in done if p is not None})
    if not pairs:  # month tasks: the last month first (it holds the end of the data), then the first, then random
        order = [months[-1], months[0]] + [months[i] for i in rng.permutation(len(months))]
        return [(None, m) for m in dict.fromkeys(order)][:k]
    have = set(done)
    month_order = [months[-1], months[0]] + [months[i] for i in rng.permutation(len(months))]
    month_order = list(dict.fromkeys(month_order))
    chosen: list[tuple[str | None, str]] = []
    for i, p in enumerate(order_pairs(pairs, rng)):
        if len(chosen) >= k:
            break
        for j in range(len(month_order)):
            m = month_order[(i + j) % len(month_order)]
            if (p, m) in have:
                chosen.append((p, m))
                break
    return chosen


def choose_timestamps(ts: pl.Series, n: int, rng: np.random.Generator, data_end: datetime | None = None) -> list[tuple[datetime, str]]:
    """Up to n distinct bar timestamps of `ts` (sorted, the partition's bars) with the stratum each stands for."""
    if ts.len() == 0 or n <= 0:
        return []
    values = ts.to_list()
    picks: list[tuple[int, str]] = [(0, "first bar of month"), (len(values) - 1, "last bar of month")]
    if data_end is not None and values[-1] == data_end:
        picks[1] = (len(values) - 1, "last bar of the data")
    if len(values) > 1:
        gaps = ts.diff().dt.total_seconds().to_numpy()[1:]
        after = np.arange(1, len(values))
        if gaps.size and gaps.max() > 60:
            picks.append((int(after[int(np.argmax(gaps))]), "after the longest gap"))
        short = after[(gaps > 60) & (gaps <= 600)]
        n_random = max(0, n - len(picks) - (1 if short.size else 0))
        for i in rng.choice(len(values), size=min(n_random, len(values)), replace=False):
            picks.append((int(i), "random bar"))
        if short.size:
            picks.append((int(short[rng.integers(short.size)]), "after a short gap"))
        for i in rng.choice(len(values), size=min(n, len(values)), replace=False):
            picks.append((int(i), "random bar"))
    out: dict[int, str] = {}
    for i, why in picks:
        if i not in out:
            out[i] = why
        if len(out) >= n:
            break
    return sorted(((values[i], why) for i, why in out.items()), key=lambda x: x[0])
