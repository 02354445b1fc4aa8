"""Exact Spearman IC of every feature against every target over one partition's rows, vectorised.

IC(f, y) = Pearson correlation of the average ranks of f and y, both ranked over exactly the rows
where f, y and the row mask are all present. NULL (NaN here) when fewer than `min_rows` such rows,
or when f or y is constant on them: max - min <= 1e-9 · the largest magnitude compared (the stable
comparison for ranks, FEATURES.md Numerics). Ties get average ranks (exact equality, as pandas).

How: every column is sorted once (argsort over the rows given). Targets with the same NULL pattern
form a group; within a group, features with the same NULL pattern (the warm-up rows, a missing
volume) share their rows. Per such joint pattern each target is ranked once by walking its sorted
order (O(n), no new sort), then each feature is ranked by walking its own, the walk accumulating
its dot products with all the group's target ranks at once. A feature with its own sporadic NULLs
is a pattern of its own, so it costs one walk per target more.
"""

from __future__ import annotations

import numba as nb
import numpy as np

MIN_ROWS = 100
CONSTANT_REL = 1e-9


def argsort_rows(a: np.ndarray) -> np.ndarray:
    """Per row of a (k, n), the permutation sorting it ascending (NULLs, i.e. NaN, last)."""
    return np.argsort(a, axis=1)


@nb.njit(cache=True)
def _rank_walk(x: np.ndarray, order: np.ndarray, keep: np.ndarray, count: int, ranks: np.ndarray) -> tuple[float, float, float]:
    """Centred average ranks of x over the rows where `keep` (count of them) into `ranks`; (sum of squares, min, max)."""
    centre = (count + 1) / 2.0
    ss = 0.0
    lo = np.nan
    hi = np.nan
    i = 0  # rank position among kept rows
    n = order.shape[0]
    k = 0
    while k < n:
        p = order[k]
        if not keep[p]:
            k += 1
            continue
        v = x[p]
        if i == 0:
            lo = v
        hi = v
        # the tie group: kept rows with value == v, from position k on in sorted order
        j = k + 1
        size = 1
        while j < n and (not keep[order[j]] or x[order[j]] == v):
            if keep[order[j]]:
                size += 1
            j += 1
        r = i + (size + 1) / 2.0 - centre
        for m in range(k, j):
            q = order[m]
            if keep[q]:
                ranks[q] = r
        ss += size * r * r
        i += size
        k = j
    return ss, lo, hi


@nb.njit(cache=True)
def _constant(lo: float, hi: float) -> bool:
    return hi - lo <= CONSTANT_REL * max(abs(lo), abs(hi))


@nb.njit(cache=True, parallel=True)
def _group_ic(x: np.ndarray, xorder: np.ndarray, feats: np.ndarray, keep: np.ndarray, count: int, yr: np.ndarray,
              yss: np.ndarray, yconst: np.ndarray, cols: np.ndarray, min_rows: int, ic: np.ndarray, nrows: np.ndarray) -> None:
    """Features `feats`, all present on exactly the rows `keep`: their IC against the targets `cols` ranked in `yr`."""
    g = cols.shape[0]
    n = x.shape[1]
    for a in nb.prange(feats.shape[0]):
        f = feats[a]
        for c in range(g):
            nrows[f, cols[c]] = count
        if count < min_rows:
            continue
        ranks = np.zeros(n)
        ss, lo, hi = _rank_walk(x[f], xorder[f], keep, count, ranks)
        if _constant(lo, hi) or ss <= 0.0:
            continue
        acc = np.zeros(g)
        for p in range(n):
            if keep[p]:
                r = ranks[p]
                for c in range(g):
                    acc[c] += r * yr[p, c]
        for c in range(g):
            if not yconst[c] and yss[c] > 0.0:
                ic[f, cols[c]] = min(1.0, max(-1.0, acc[c] / np.sqrt(ss * yss[c])))


def partition_ic(x: np.ndarray, y: np.ndarray, min_rows: int = MIN_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """IC (F, T; NaN = NULL) and rows used (F, T) of features x (F, n) against targets y (T, n); NaN = NULL.

    The caller passes only the rows to use (e.g. a partition's training rows). Rows are grouped
    twice: targets by their NULL pattern, then within that the features by theirs; each target is
    ranked once per distinct joint pattern, each feature once per target group.
    """
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    nf, nt, n = x.shape[0], y.shape[0], x.shape[1]
    ic = np.full((nf, nt), np.nan)
    nrows = np.zeros((nf, nt), dtype=np.int64)
    if nf == 0 or nt == 0 or n == 0:
        return ic, nrows
    xorder = argsort_rows(x)
    yorder = argsort_rows(y)
    xpresent = ~np.isnan(x)
    for members, keep in _same_rows(~np.isnan(y)):
        cols = np.asarray(members, dtype=np.int64)
        for feats, joint in _same_rows(xpresent & keep):
            count = int(joint.sum())
            yr = np.zeros((n, len(members)))
            yss = np.zeros(len(members))
            yconst = np.zeros(len(members), dtype=np.bool_)
            if count >= min_rows:
                for c, t in enumerate(members):
                    col = np.zeros(n)
                    ss, lo, hi = _rank_walk(y[t], yorder[t], joint, count, col)
                    yr[:, c] = col
                    yss[c] = ss
                    yconst[c] = _constant(lo, hi)
            _group_ic(x, xorder, np.asarray(feats, dtype=np.int64), joint, count, yr, yss, yconst, cols, min_rows, ic, nrows)
    return ic, nrows


def _same_rows(present: np.ndarray) -> list[tuple[list[int], np.ndarray]]:
    """Rows of a boolean matrix grouped by identical pattern: (row indices, the pattern), first-seen order."""
    packed = np.packbits(present, axis=1)
    groups: dict[bytes, list[int]] = {}
    for i in range(present.shape[0]):
        groups.setdefault(packed[i].tobytes(), []).append(i)
    return [(rows, present[rows[0]]) for rows in groups.values()]
