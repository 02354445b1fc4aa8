"""Exact Spearman IC of every feature against every target over one partition's rows, vectorised.

IC(f, y) = Pearson correlation of the average ranks of f and y, both ranked over exactly the rows
where f, y and the row mask are all present. NULL (NaN here) when fewer than `min_rows` such rows,
or when f or y is constant on them: max - min <= 1e-9 · the largest magnitude compared (the stable
comparison for ranks, FEATURES.md Numerics). Ties get average ranks (exact equality, as pandas).

How: every column is sorted once (argsort over the rows given). Targets with the same NULL pattern
form a group and are ranked over its rows by walking their sorted order (O(n), no new sort). A
feature without NULLs is then ranked by one walk of its own sorted order that serves every target
group at once (each row carries a bit per group), accumulating its dot products with the target
ranks on the way; no rank array is stored. Features with NULLs (warm-up rows, a missing volume)
are grouped by their joint pattern with each target group; per pattern the targets are re-ranked
once and each feature walked once. A feature with its own sporadic NULLs is a pattern of its own,
so it costs one walk per target more.
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


@nb.njit(cache=True, parallel=True)
def _complete_ic(x: np.ndarray, xorder: np.ndarray, feats: np.ndarray, bits: np.ndarray, counts: np.ndarray,
                 gstart: np.ndarray, yr: np.ndarray, yss: np.ndarray, yconst: np.ndarray, tcol: np.ndarray,
                 min_rows: int, ic: np.ndarray, nrows: np.ndarray) -> None:
    """Features without NULLs: one walk of the sorted order serves every target group at once.

    Group g (bit g of `bits[p]`: target group g is present at row p) has `counts[g]` rows and the
    targets gstart[g] .. gstart[g+1]-1 of `yr` (their centred ranks over the group's rows, 0
    elsewhere); `tcol` maps those back to target columns. A tie block of equal values gets, per
    group, the average of the ranks its kept rows occupy.
    """
    n_groups = counts.shape[0]
    n = x.shape[1]
    nt = yr.shape[1]
    for a in nb.prange(feats.shape[0]):
        f = feats[a]
        xf = x[f]
        order = xorder[f]
        full = np.uint64(0)
        for g in range(n_groups):
            full |= np.uint64(1) << np.uint64(g)
        done = np.zeros(n_groups, dtype=np.int64)  # kept rows ranked so far, per group
        centre = (counts + 1) / 2.0
        ss = np.zeros(n_groups)
        lo = np.full(n_groups, np.nan)
        hi = np.full(n_groups, np.nan)
        size = np.zeros(n_groups, dtype=np.int64)
        r = np.zeros(n_groups)
        acc = np.zeros(nt)
        k = 0
        while k < n:
            p = order[k]
            v = xf[p]
            if k + 1 == n or xf[order[k + 1]] != v:  # no tie: the common case
                b = bits[p]
                every = b == full  # the row is in every group (the common case)
                for g in range(n_groups):
                    if every or (b >> g) & 1:
                        rg = done[g] + 1 - centre[g]
                        ss[g] += rg * rg
                        if done[g] == 0:
                            lo[g] = v
                        hi[g] = v
                        done[g] += 1
                        for c in range(gstart[g], gstart[g + 1]):
                            acc[c] += rg * yr[p, c]
                k += 1
                continue
            j = k + 1
            while j < n and xf[order[j]] == v:
                j += 1
            size[:] = 0
            for m in range(k, j):
                b = bits[order[m]]
                for g in range(n_groups):
                    if (b >> g) & 1:
                        size[g] += 1
            for g in range(n_groups):
                if size[g]:
                    r[g] = done[g] + (size[g] + 1) / 2.0 - centre[g]
                    ss[g] += size[g] * r[g] * r[g]
                    if done[g] == 0:
                        lo[g] = v
                    hi[g] = v
                    done[g] += size[g]
            for m in range(k, j):
                p = order[m]
                b = bits[p]
                for g in range(n_groups):
                    if (b >> g) & 1:
                        for c in range(gstart[g], gstart[g + 1]):
                            acc[c] += r[g] * yr[p, c]
            k = j
        for g in range(n_groups):
            defined = counts[g] >= min_rows and not _constant(lo[g], hi[g]) and ss[g] > 0.0
            for c in range(gstart[g], gstart[g + 1]):
                nrows[f, tcol[c]] = counts[g]
                if defined and not yconst[c] and yss[c] > 0.0:
                    ic[f, tcol[c]] = min(1.0, max(-1.0, acc[c] / np.sqrt(ss[g] * yss[c])))


MAX_FUSED_GROUPS = 64  # target groups one walk serves (bits of a uint64)


def partition_ic(x: np.ndarray, y: np.ndarray, min_rows: int = MIN_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """IC (F, T; NaN = NULL) and rows used (F, T) of features x (F, n) against targets y (T, n); NaN = NULL.

    The caller passes only the rows to use (e.g. a partition's training rows). Targets are grouped
    by NULL pattern. A feature without NULLs is ranked for every group in one walk
    (`_complete_ic`); the others are grouped by their joint pattern with each target group, the
    targets re-ranked once per joint pattern (`_group_ic`).
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
    complete = xpresent.all(axis=1)
    groups = _same_rows(~np.isnan(y))
    for first in range(0, len(groups), MAX_FUSED_GROUPS):
        chunk = groups[first:first + MAX_FUSED_GROUPS]
        tcol = np.asarray([t for members, _ in chunk for t in members], dtype=np.int64)
        gstart = np.cumsum([0] + [len(members) for members, _ in chunk]).astype(np.int64)
        counts = np.asarray([int(keep.sum()) for _, keep in chunk], dtype=np.int64)
        bits = np.zeros(n, dtype=np.uint64)
        yr, yss, yconst = _ranked_targets(y, yorder, [(members, keep) for members, keep in chunk], min_rows)
        for g, (_, keep) in enumerate(chunk):
            bits |= keep.astype(np.uint64) << np.uint64(g)
        _complete_ic(x, xorder, np.flatnonzero(complete).astype(np.int64), bits, counts, gstart, yr, yss, yconst, tcol,
                     min_rows, ic, nrows)
    if not complete.all():
        partial = ~complete
        for members, keep in groups:
            cols = np.asarray(members, dtype=np.int64)
            for feats, joint in _same_rows(xpresent[partial] & keep):
                rows = np.flatnonzero(partial)[feats].astype(np.int64)
                yr, yss, yconst = _ranked_targets(y, yorder, [(members, joint)], min_rows)
                _group_ic(x, xorder, rows, joint, int(joint.sum()), yr, yss, yconst, cols, min_rows, ic, nrows)
    return ic, nrows


def _ranked_targets(y: np.ndarray, yorder: np.ndarray, groups: list[tuple[list[int], np.ndarray]],
                    min_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centred ranks (n, targets in group order) of each group's targets over the group's rows; sums of squares; constant flags."""
    n = y.shape[1]
    width = sum(len(m) for m, _ in groups)
    # centred average ranks are multiples of 1/2, exact in float32 below 2**22 rows (half the memory walked)
    yr = np.zeros((n, width), dtype=np.float32 if n < 2**22 else np.float64)
    yss = np.zeros(width)
    yconst = np.zeros(width, dtype=np.bool_)
    c = 0
    for members, keep in groups:
        count = int(keep.sum())
        for t in members:
            if count >= min_rows:
                col = np.zeros(n)
                ss, lo, hi = _rank_walk(y[t], yorder[t], keep, count, col)
                yr[:, c], yss[c], yconst[c] = col, ss, _constant(lo, hi)
            c += 1
    return yr, yss, yconst


def _same_rows(present: np.ndarray) -> list[tuple[list[int], np.ndarray]]:
    """Rows of a boolean matrix grouped by identical pattern: (row indices, the pattern), first-seen order."""
    packed = np.packbits(present, axis=1)
    groups: dict[bytes, list[int]] = {}
    for i in range(present.shape[0]):
        groups.setdefault(packed[i].tobytes(), []).append(i)
    return [(rows, present[rows[0]]) for rows in groups.values()]
