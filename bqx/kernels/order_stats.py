"""Trailing order statistics over the previous w values, exact and O(log n) per row.

Each value of the series gets its own slot in the series' sorted order; a Fenwick tree counts the
slots inside the sliding window, so the k-th smallest value and the count of values <= x are
tree queries. Used by derived (drv_volatility_regime) and regimes (rg_vol, rg_vol_pctile).
"""

from __future__ import annotations

from typing import Sequence

import numba as nb
import numpy as np


@nb.njit(cache=True)
def _add(tree: np.ndarray, i: int, delta: int) -> None:
    i += 1
    while i < tree.shape[0]:
        tree[i] += delta
        i += i & (-i)


@nb.njit(cache=True)
def _prefix(tree: np.ndarray, i: int) -> int:
    """Number of occupied slots < i."""
    s = 0
    while i > 0:
        s += tree[i]
        i -= i & (-i)
    return s


@nb.njit(cache=True)
def _kth(tree: np.ndarray, k: int, log: int) -> int:
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
    return pos


@nb.njit(cache=True)
def _trailing(v: np.ndarray, slot: np.ndarray, sorted_vals: np.ndarray, w: int, probs: np.ndarray, tie: float) -> np.ndarray:
    size = v.shape[0]
    k = probs.shape[0]
    out = np.full((k + 1, size), np.nan)
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
                _add(tree, slot[t - 1], 1)
        if t - w - 1 >= 0:
            if np.isnan(v[t - w - 1]):
                nan_in -= 1
            else:
                _add(tree, slot[t - w - 1], -1)
        if t < w or nan_in > 0:
            continue
        for j in range(k):
            h = (w - 1) * probs[j]
            lo = int(np.floor(h))
            frac = h - lo
            a = sorted_vals[_kth(tree, lo, log)]
            if frac > 0.0 and lo + 1 < w:
                b = sorted_vals[_kth(tree, lo + 1, log)]
                out[j, t] = a + frac * (b - a)
            else:
                out[j, t] = a
        if not np.isnan(v[t]):
            hi = np.searchsorted(sorted_vals, v[t] + tie, side="right")
            out[k, t] = _prefix(tree, hi) / w
    return out


def trailing_order_stats(v: np.ndarray, w: int, probs: Sequence[float], tie: float = 0.0) -> np.ndarray:
    """Rows: the `probs` quantiles of the previous w values P_w(t) (t excluded), then the fraction of them <= v_t
    (values within `tie` of v_t count as equal: FEATURES.md's stable comparisons).

    Quantiles interpolate linearly (numpy's default). NaN until w previous values exist and
    wherever one of them is NaN; the fraction is NaN where v_t is NaN too.
    """
    v = np.ascontiguousarray(v, dtype=np.float64)
    finite = ~np.isnan(v)
    order = np.argsort(np.where(finite, v, np.inf), kind="stable")
    slot = np.empty(v.shape[0], dtype=np.int64)
    slot[order] = np.arange(v.shape[0])
    sorted_vals = np.where(finite, v, np.inf)[order]
    return _trailing(v, slot, sorted_vals, int(w), np.asarray(probs, dtype=np.float64), float(tie))
