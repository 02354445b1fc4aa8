"""Numba kernels for the recursions and order statistics of technical and regimes.

Everything here is a loop that cannot be written as a fixed window of numpy/polars operations:
TA-Lib's Wilder smoothing (to find its zero denominators), a rolling mean absolute deviation and
trailing order statistics over a long window (a Fenwick tree over value ranks).
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True)
def wilder_mean(v: np.ndarray, n: int, first: int) -> np.ndarray:
    """TA-Lib's Wilder average: mean of v[first .. first+n−1] at row first+n−1, then (prev·(n−1) + v_t)/n."""
    size = v.shape[0]
    out = np.full(size, np.nan)
    start = first + n - 1
    if start >= size:
        return out
    s = 0.0
    for i in range(first, start + 1):
        s += v[i]
    s /= n
    out[start] = s
    for i in range(start + 1, size):
        s = (s * (n - 1) + v[i]) / n
        out[i] = s
    return out


@nb.njit(cache=True)
def wilder_sum(v: np.ndarray, n: int, first: int) -> np.ndarray:
    """TA-Lib's smoothed sum (the TR and DM sums of DI/ADX): Σ v[first .. first+n−2], then prev − prev/n + v_t."""
    size = v.shape[0]
    out = np.full(size, np.nan)
    start = first + n - 1
    if start >= size:
        return out
    s = 0.0
    for i in range(first, start):
        s += v[i]
    for i in range(start, size):
        s = s - s / n + v[i]
        out[i] = s
    return out


@nb.njit(cache=True)
def rolling_mean_abs_dev(x: np.ndarray, n: int) -> np.ndarray:
    """Mean of |x − mean| over the last n values, each window computed from scratch (as TA-Lib's CCI does)."""
    size = x.shape[0]
    out = np.full(size, np.nan)
    for i in range(n - 1, size):
        m = 0.0
        for j in range(i - n + 1, i + 1):
            m += x[j]
        m /= n
        d = 0.0
        for j in range(i - n + 1, i + 1):
            d += abs(x[j] - m)
        out[i] = d / n
    return out


@nb.njit(cache=True)
def _fenwick_add(tree: np.ndarray, i: int, delta: int) -> None:
    i += 1
    while i < tree.shape[0]:
        tree[i] += delta
        i += i & (-i)


@nb.njit(cache=True)
def _fenwick_prefix(tree: np.ndarray, i: int) -> int:
    """Number of occupied slots < i."""
    s = 0
    while i > 0:
        s += tree[i]
        i -= i & (-i)
    return s


@nb.njit(cache=True)
def _fenwick_kth(tree: np.ndarray, k: int, log: int) -> int:
    """Slot of the k-th (0-based) occupied slot."""
    pos = 0
    rem = k + 1
    step = log
    while step > 0:
        nxt = pos + step
        if nxt < tree.shape[0] and tree[nxt] < rem:
            pos = nxt
            rem -= tree[nxt]
        step >>= 1
    return pos  # 0-based slot (tree index pos + 1)


@nb.njit(cache=True)
def _trailing_order_stats(v: np.ndarray, slot: np.ndarray, sorted_vals: np.ndarray, w: int,
                          q_lo: float, q_hi: float) -> np.ndarray:
    size = v.shape[0]
    out = np.full((3, size), np.nan)
    tree = np.zeros(size + 1, dtype=np.int64)
    log = 1
    while log * 2 <= size:
        log *= 2
    nan_in = 0
    for t in range(size):
        # window = v[t-w .. t-1]: add v[t-1], drop v[t-w-1]
        if t >= 1:
            if np.isnan(v[t - 1]):
                nan_in += 1
            else:
                _fenwick_add(tree, slot[t - 1], 1)
        if t - w - 1 >= 0:
            if np.isnan(v[t - w - 1]):
                nan_in -= 1
            else:
                _fenwick_add(tree, slot[t - w - 1], -1)
        if t < w or nan_in > 0 or np.isnan(v[t]):
            continue
        for j in range(2):
            h = (w - 1) * (q_lo if j == 0 else q_hi)
            lo = int(np.floor(h))
            frac = h - lo
            a = sorted_vals[_fenwick_kth(tree, lo, log)]
            if frac > 0.0 and lo + 1 < w:
                b = sorted_vals[_fenwick_kth(tree, lo + 1, log)]
                out[j, t] = a + frac * (b - a)
            else:
                out[j, t] = a
        # count of window values <= v[t]: slots whose value <= v[t] are those < upper bound
        hi = np.searchsorted(sorted_vals, v[t], side="right")
        out[2, t] = _fenwick_prefix(tree, hi) / w
    return out


def trailing_order_stats(v: np.ndarray, w: int, q_lo: float, q_hi: float) -> np.ndarray:
    """Rows (q_lo quantile, q_hi quantile, fraction <= v_t) of the previous w values P_w(t).

    Quantiles interpolate linearly (numpy's default); NaN where P_w(t) is incomplete or holds NaN.
    Each value gets its own slot in the sorted order of the series (a Fenwick tree counts the slots
    inside the window), so every query is O(log n) and the values are exact order statistics.
    """
    v = np.ascontiguousarray(v, dtype=np.float64)
    finite = ~np.isnan(v)
    order = np.argsort(np.where(finite, v, np.inf), kind="stable")
    slot = np.empty(v.shape[0], dtype=np.int64)
    slot[order] = np.arange(v.shape[0])
    sorted_vals = np.where(finite, v, np.inf)[order]
    return _trailing_order_stats(v, slot, sorted_vals, int(w), float(q_lo), float(q_hi))


def window_any(flag: np.ndarray, k: int) -> np.ndarray:
    """True where any of the last k flags is true (exact integer counts); NaN-free boolean output."""
    f = np.asarray(flag, dtype=bool)
    cs = np.concatenate(([0], np.cumsum(f, dtype=np.int64)))
    idx = np.arange(f.shape[0])
    lo = np.maximum(idx + 1 - k, 0)
    return (cs[idx + 1] - cs[lo]) > 0


@nb.njit(cache=True)
def window_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Mean of the last n values, each window summed from scratch: exactly 0 on a window of zeros and
    bit-identical wherever the series starts (for short windows feeding a square root)."""
    size = x.shape[0]
    out = np.full(size, np.nan)
    for i in range(n - 1, size):
        s = 0.0
        for j in range(i - n + 1, i + 1):
            s += x[j]
        out[i] = s / n
    return out
