"""Numba kernels for the recursions and order statistics of technical and regimes.

Everything here is a loop that cannot be written as a fixed window of numpy/polars operations:
TA-Lib's RSI and CCI redone operation for operation (so that their zero denominators are seen),
the Wilder sum behind DI/ADX, short windows summed from scratch and trailing order statistics over a long window (a Fenwick tree over value ranks).
"""

from __future__ import annotations

import numba as nb
import numpy as np


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
def rsi(x: np.ndarray, n: int, zero_rel: float) -> np.ndarray:
    """TA-Lib's RSI(n), operation for operation, with NaN where avg gain + avg loss <= zero_rel · x_t.

    Seed: the means of the first n gains and losses (row n); then (prev·(n−1) + gain)/n.
    """
    size = x.shape[0]
    out = np.full(size, np.nan)
    if size <= n:
        return out
    gain = 0.0
    loss = 0.0
    for i in range(1, n + 1):
        d = x[i] - x[i - 1]
        if d > 0.0:
            gain += d
        else:
            loss -= d
    gain /= n
    loss /= n
    for i in range(n, size):
        if i > n:
            d = x[i] - x[i - 1]
            gain *= n - 1
            loss *= n - 1
            if d > 0.0:
                gain += d
            else:
                loss -= d
            gain /= n
            loss /= n
        den = gain + loss
        if den > zero_rel * abs(x[i]):
            out[i] = 100.0 * (gain / den)
    return out


@nb.njit(cache=True)
def cci(tp: np.ndarray, n: int, zero_rel: float) -> np.ndarray:
    """TA-Lib's CCI(n) on the typical price, each window from scratch as TA-Lib does, NaN where the mean
    deviation <= zero_rel · tp_t."""
    size = tp.shape[0]
    out = np.full(size, np.nan)
    for i in range(n - 1, size):
        m = 0.0
        for j in range(i - n + 1, i + 1):
            m += tp[j]
        m /= n
        d = 0.0
        for j in range(i - n + 1, i + 1):
            d += abs(tp[j] - m)
        md = d / n
        if md > zero_rel * abs(tp[i]):
            out[i] = (tp[i] - m) / (0.015 * md)
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


@nb.njit(cache=True)
def window_any(flag: np.ndarray, k: int) -> np.ndarray:
    """True where any of the last k flags (those that exist) is true."""
    size = flag.shape[0]
    out = np.zeros(size, dtype=np.bool_)
    last = -k - 1
    for i in range(size):
        if flag[i]:
            last = i
        out[i] = i - last < k
    return out


@nb.njit(cache=True)
def cmo(x: np.ndarray, n: int, zero_rel: float) -> np.ndarray:
    """Chande's CMO: 100 · (x_t − x_(t−n)) / Σ|Δx| over the n changes up to t (Σ up − Σ down telescopes);
    each window summed from scratch; NaN where Σ|Δx| <= zero_rel · x_t."""
    size = x.shape[0]
    out = np.full(size, np.nan)
    for i in range(n, size):
        s = 0.0
        for j in range(i - n + 1, i + 1):
            s += abs(x[j] - x[j - 1])
        if s > zero_rel * abs(x[i]):
            v = 100.0 * (x[i] - x[i - n]) / s
            out[i] = min(100.0, max(-100.0, v))
    return out


@nb.njit(cache=True)
def mfi(tp: np.ndarray, vol: np.ndarray, n: int, zero_rel: float) -> np.ndarray:
    """MFI(n) as TA-Lib defines it: 100 · Σ positive / Σ (positive + negative) money flow tp·v over the n
    flows up to t (a flow is positive when tp rises, negative when it falls); NaN where the flow sum
    <= zero_rel · tp_t · Σ v (no volume, or tp flat over the window)."""
    size = tp.shape[0]
    out = np.full(size, np.nan)
    pf = np.zeros(size)
    nf = np.zeros(size)
    for j in range(1, size):
        mf = tp[j] * vol[j]
        if tp[j] > tp[j - 1]:
            pf[j] = mf
        elif tp[j] < tp[j - 1]:
            nf[j] = mf
    for i in range(n, size):
        pos = 0.0
        neg = 0.0
        sv = 0.0
        for j in range(i - n + 1, i + 1):
            pos += pf[j]
            neg += nf[j]
            sv += vol[j]
        tot = pos + neg
        if tot > zero_rel * abs(tp[i]) * sv:
            out[i] = min(100.0, 100.0 * (pos / tot))
    return out


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
