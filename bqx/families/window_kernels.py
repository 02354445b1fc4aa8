"""More window kernels: trailing order statistics of the previous n values, drift-free rolling correlation.

Order statistics use a Fenwick tree over the ranks of the whole input (O(log n) per row, exact:
the result is an element of the window or a linear interpolation of two, whatever the partition).
Rolling co-moments are re-anchored every w rows like `kernels.py`.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from bqx.families.kernels import EPS_ABS_STD, EPS_REL_STD


@nb.njit(cache=True)
def _kth(tree, log, k):  # pragma: no cover - compiled
    """Index (0-based rank) of the k-th smallest (0-based) element counted in the Fenwick tree."""
    pos = 0
    step = log
    while step > 0:
        nxt = pos + step
        if nxt < tree.shape[0] and tree[nxt] <= k:
            pos = nxt
            k -= tree[nxt]
        step >>= 1
    return pos  # tree is 1-based: rank pos (0-based) is the answer


@nb.njit(cache=True)
def _trailing_quantiles(v, rank, sorted_vals, window, probs):  # pragma: no cover - compiled
    n = v.shape[0]
    m = sorted_vals.shape[0]
    tree = np.zeros(m + 1, np.int64)
    log = 1
    while log * 2 <= m:
        log *= 2
    out = np.full((probs.shape[0], n), np.nan)
    nan_in = 0
    for t in range(n):
        if t >= window and nan_in == 0:
            for j in range(probs.shape[0]):
                h = (window - 1) * probs[j]
                lo = int(np.floor(h))
                frac = h - lo
                a = sorted_vals[_kth(tree, log, lo)]
                if frac > 0.0 and lo + 1 < window:
                    b = sorted_vals[_kth(tree, log, lo + 1)]
                    out[j, t] = a + frac * (b - a)
                else:
                    out[j, t] = a
        # slide: add v[t], drop v[t - window]
        if np.isnan(v[t]):
            nan_in += 1
        else:
            r = rank[t] + 1
            while r <= m:
                tree[r] += 1
                r += r & (-r)
        if t - window >= 0:
            old = t - window
            if np.isnan(v[old]):
                nan_in -= 1
            else:
                r = rank[old] + 1
                while r <= m:
                    tree[r] -= 1
                    r += r & (-r)
    return out


def trailing_quantiles(v: np.ndarray, window: int, probs: tuple[float, ...]) -> np.ndarray:
    """(len(probs), n): linear-interpolated quantiles of the previous `window` values (t excluded).

    NaN until `window` previous values exist and wherever one of them is NaN.
    """
    v = np.ascontiguousarray(v, dtype=np.float64)
    ok = ~np.isnan(v)
    order = np.argsort(np.where(ok, v, np.inf), kind="stable")[: int(ok.sum())]
    rank = np.full(v.shape[0], -1, dtype=np.int64)
    rank[order] = np.arange(order.shape[0])
    return _trailing_quantiles(v, rank, v[order], int(window), np.asarray(probs, dtype=np.float64))


@nb.njit(cache=True)
def _rolling_comoments(a, b, w):  # pragma: no cover - compiled
    """Rows: cov, var a, var b, mean |a|, mean |b| over the last w pairs (ddof 0), sums re-anchored every w rows."""
    n = a.shape[0]
    out = np.full((5, n), np.nan)
    if n < w:
        return out
    sa = sb = saa = sbb = sab = aa = ab = 0.0
    ka = kb = 0.0
    bad = 0
    for i in range(w - 1, n):
        if (i - (w - 1)) % w == 0:
            ka = 0.0
            kb = 0.0
            for j in range(i - w + 1, i + 1):
                if not (np.isnan(a[j]) or np.isnan(b[j])):
                    ka = a[j]
                    kb = b[j]
                    break
            sa = sb = saa = sbb = sab = aa = ab = 0.0
            bad = 0
            for j in range(i - w + 1, i + 1):
                x = a[j]
                y = b[j]
                if np.isnan(x) or np.isnan(y):
                    bad += 1
                else:
                    dx = x - ka
                    dy = y - kb
                    sa += dx
                    sb += dy
                    saa += dx * dx
                    sbb += dy * dy
                    sab += dx * dy
                    aa += abs(x)
                    ab += abs(y)
        else:
            x = a[i]
            y = b[i]
            if np.isnan(x) or np.isnan(y):
                bad += 1
            else:
                dx = x - ka
                dy = y - kb
                sa += dx
                sb += dy
                saa += dx * dx
                sbb += dy * dy
                sab += dx * dy
                aa += abs(x)
                ab += abs(y)
            x = a[i - w]
            y = b[i - w]
            if np.isnan(x) or np.isnan(y):
                bad -= 1
            else:
                dx = x - ka
                dy = y - kb
                sa -= dx
                sb -= dy
                saa -= dx * dx
                sbb -= dy * dy
                sab -= dx * dy
                aa -= abs(x)
                ab -= abs(y)
        if bad > 0:
            continue
        ma = sa / w
        mb = sb / w
        out[0, i] = sab / w - ma * mb
        out[1, i] = max(saa / w - ma * ma, 0.0)
        out[2, i] = max(sbb / w - mb * mb, 0.0)
        out[3, i] = aa / w
        out[4, i] = ab / w
    return out


def rolling_corr(a: np.ndarray, b: np.ndarray, w: int, *, dimensionless: bool = False,
                 scale: np.ndarray | None = None) -> np.ndarray:
    """Pearson correlation of the last w pairs (a_k, b_k); NaN where either std is zero.

    A std is zero when ≤ 1e-9 · the window's mean |values| (or · `scale`, a per-row magnitude, when
    given), and for dimensionless values also when ≤ 1e-12.
    """
    m = _rolling_comoments(np.ascontiguousarray(a, dtype=np.float64), np.ascontiguousarray(b, dtype=np.float64), int(w))
    sa, sb = np.sqrt(m[1]), np.sqrt(m[2])
    ref_a = m[3] if scale is None else scale
    ref_b = m[4] if scale is None else scale
    zero = (sa <= EPS_REL_STD * ref_a) | (sb <= EPS_REL_STD * ref_b)
    if dimensionless:
        zero |= (sa <= EPS_ABS_STD) | (sb <= EPS_ABS_STD)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = m[0] / (sa * sb)
    return np.where(zero | np.isnan(r), np.nan, np.clip(r, -1.0, 1.0))


def rolling_autocorr(z: np.ndarray, n: int, *, dimensionless: bool = False, scale: np.ndarray | None = None) -> np.ndarray:
    """Lag-1 autocorrelation over the last n values: Pearson correlation of the n−1 pairs (z_(k−1), z_k)."""
    z = np.asarray(z, dtype=np.float64)
    prev = np.full_like(z, np.nan)
    prev[1:] = z[:-1]
    return rolling_corr(prev, z, n - 1, dimensionless=dimensionless, scale=scale)
