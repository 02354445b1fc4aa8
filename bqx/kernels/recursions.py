"""Numba kernels for the recursions and short windows of the technical family.

Everything here is a loop that cannot be written as a fixed window of numpy/polars operations:
TA-Lib's RSI, CCI and DI/ADX/ADXR redone operation for operation (so that their zero denominators
are seen, and the four DMI columns come from one pass), STOCHRSI's fastk from that RSI, and short
windows summed from scratch. The from-scratch sums sweep all windows one offset at a time: each
window is still summed in time order (bit-identical to a per-window loop) but the loop vectorises.
"""

from __future__ import annotations

import numba as nb
import numpy as np


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
    """TA-Lib's CCI(n) on the typical price, each window from scratch as TA-Lib does (summed in the same
    order, the windows swept together), NaN where the mean deviation <= zero_rel · tp_t."""
    size = tp.shape[0]
    out = np.full(size, np.nan)
    if size < n:
        return out
    m = _window_sums(tp, n)
    for i in range(n - 1, size):
        m[i] /= n
    d = np.zeros(size)
    k = size - n + 1
    acc, mean = d[n - 1:], m[n - 1:]
    for j in range(n):
        a = tp[j:j + k]
        for i in range(k):
            acc[i] += abs(a[i] - mean[i])
    for i in range(n - 1, size):
        md = d[i] / n
        if md > zero_rel * abs(tp[i]):
            out[i] = (tp[i] - m[i]) / (0.015 * md)
    return out


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
    if size <= n:
        return out
    ad = np.zeros(size)
    for j in range(1, size):
        ad[j] = abs(x[j] - x[j - 1])
    s = _window_sums(ad, n)
    for i in range(n, size):
        if s[i] > zero_rel * abs(x[i]):
            v = 100.0 * (x[i] - x[i - n]) / s[i]
            out[i] = min(100.0, max(-100.0, v))
    return out


@nb.njit(cache=True)
def mfi(tp: np.ndarray, vol: np.ndarray, level: np.ndarray, n: int, zero_rel: float, tie_rel: float) -> np.ndarray:
    """MFI(n) as TA-Lib defines it: 100 · Σ positive / Σ (positive + negative) money flow tp·v over the n
    flows up to t, with FEATURES.md's stable comparison (ε = tie_rel · level_t): a flow is positive only
    when tp_t > tp_(t−1) + ε, negative only when tp_t < tp_(t−1) − ε, neither otherwise (tie_rel = 0 is
    TA-Lib's exact comparison). NaN where the flow sum <= zero_rel · tp_t · Σ v (no volume, or tp flat
    over the window). Windows summed from scratch."""
    size = tp.shape[0]
    out = np.full(size, np.nan)
    if size <= n:
        return out
    pf = np.zeros(size)
    nf = np.zeros(size)
    for j in range(1, size):
        mf = tp[j] * vol[j]
        eps = tie_rel * level[j]
        if tp[j] > tp[j - 1] + eps:
            pf[j] = mf
        elif tp[j] < tp[j - 1] - eps:
            nf[j] = mf
    pos = _window_sums(pf, n)
    neg = _window_sums(nf, n)
    sv = _window_sums(vol, n)
    for i in range(n, size):
        tot = pos[i] + neg[i]
        if tot > zero_rel * abs(tp[i]) * sv[i]:
            out[i] = min(100.0, 100.0 * (pos[i] / tot))
    return out


@nb.njit(cache=True)
def _window_sums(x: np.ndarray, n: int) -> np.ndarray:
    """Σ x over the last n at rows n−1 .. (0 before), each window summed from scratch in time order
    (x_(t−n+1) first); the windows are swept together, one offset at a time, so the loop vectorises
    while every sum keeps the sequential order."""
    size = x.shape[0]
    s = np.zeros(size)
    m = size - n + 1
    acc = s[n - 1:]
    for j in range(n):
        a = x[j:j + m]  # slices with non-negative indices: the inner loop vectorises
        for i in range(m):
            acc[i] += a[i]
    return s


@nb.njit(cache=True)
def window_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Mean of the last n values, each window summed from scratch: exactly 0 on a window of zeros and
    bit-identical wherever the series starts (for short windows feeding a square root)."""
    size = x.shape[0]
    out = np.full(size, np.nan)
    if size < n:
        return out
    s = _window_sums(x, n)
    for i in range(n - 1, size):
        out[i] = s[i] / n
    return out


TA_EPSILON = 1e-14  # TA-Lib 0.6's TA_IS_ZERO: |v| < 1e-14


@nb.njit(cache=True)
def directional_move(up: float, down: float, eps: float) -> int:
    """+1 if the up move counts (+DM), −1 if the down move counts (−DM), 0 if neither: TA-Lib's rule with
    FEATURES.md's stable comparison, +DM only when up > down + ε and up > ε (−DM alike); ε = 0 is TA-Lib's."""
    if down > eps and down > up + eps:
        return -1
    if up > eps and up > down + eps:
        return 1
    return 0


@nb.njit(cache=True)
def dmi(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int, zero_rel: float, tie_rel: float):
    """TA-Lib's PLUS_DI, MINUS_DI, ADX and ADXR(n) in one pass, operation for operation as TA-Lib's ADX
    (Wilder sums of +DM, −DM and TR seeded with n−1 values from row 1; DX summed over rows n .. 2n−1
    for the first ADX), with FEATURES.md's stable comparisons (ε = tie_rel · c_t): which move counts is
    `directional_move`, and a true range ≤ ε is 0 (its prices are equal); tie_rel = 0 is TA-Lib exactly.
    NULL rules: DI NaN where the smoothed TR <= zero_rel · c_t (TA-Lib's 0 below its own epsilon kept
    otherwise); ADX NaN before the first row whose smoothed TR > zero_rel · c_t; ADXR = (ADX_t +
    ADX_(t−n+1)) / 2 where both exist."""
    size = c.shape[0]
    pdi = np.full(size, np.nan)
    mdi = np.full(size, np.nan)
    adx = np.full(size, np.nan)
    adxr = np.full(size, np.nan)
    if size <= n:
        return pdi, mdi, adx, adxr
    pdm = 0.0
    mdm = 0.0
    tr = 0.0
    sum_dx = 0.0
    prev_adx = 0.0
    started = False
    for t in range(1, size):
        eps = tie_rel * c[t]
        diff_p = h[t] - h[t - 1]
        diff_m = lo[t - 1] - lo[t]
        if t >= n:
            mdm -= mdm / n
            pdm -= pdm / n
        side = directional_move(diff_p, diff_m, eps)
        if side < 0:
            mdm += diff_m
        elif side > 0:
            pdm += diff_p
        yc = c[t - 1]
        r = h[t] - lo[t]
        r2 = abs(h[t] - yc)
        if r2 > r:
            r = r2
        r2 = abs(lo[t] - yc)
        if r2 > r:
            r = r2
        if r <= eps:
            r = 0.0
        if t < n:
            tr += r
            continue
        tr = tr - (tr / n) + r
        dx = -1.0
        if -TA_EPSILON < tr < TA_EPSILON:
            m = 0.0
            p = 0.0
        else:
            m = 100.0 * (mdm / tr)
            p = 100.0 * (pdm / tr)
            s = m + p
            if not (-TA_EPSILON < s < TA_EPSILON):
                dx = 100.0 * (abs(m - p) / s)
        if abs(tr) > zero_rel * c[t]:
            started = True
            pdi[t] = p
            mdi[t] = m
        if t < 2 * n - 1:
            if dx >= 0.0:
                sum_dx += dx
            continue
        if t == 2 * n - 1:
            if dx >= 0.0:
                sum_dx += dx
            prev_adx = sum_dx / n
        elif dx >= 0.0:
            prev_adx = ((prev_adx * (n - 1)) + dx) / n
        if started:
            adx[t] = prev_adx
            j = t - (n - 1)
            if not np.isnan(adx[j]):
                adxr[t] = (prev_adx + adx[j]) / 2.0
    return pdi, mdi, adx, adxr


@nb.njit(cache=True)
def stochrsi_k(r: np.ndarray, k: int, warmup: int, zero_abs: float) -> np.ndarray:
    """TA-Lib's STOCHRSI fastk from RSI values r (TA-Lib's STOCHF: (r − min) / ((max − min) / 100) over the
    last k), NaN before `warmup` (TA-Lib aligns fastk with fastd), where any of the k values is NaN, and
    where max − min <= zero_abs."""
    size = r.shape[0]
    out = np.full(size, np.nan)
    for i in range(max(warmup, k - 1), size):
        hi = r[i]
        lo = r[i]
        ok = not np.isnan(hi)
        for j in range(i - k + 1, i):
            v = r[j]
            if np.isnan(v):
                ok = False
                break
            if v > hi:
                hi = v
            if v < lo:
                lo = v
        if ok and hi - lo > zero_abs:
            out[i] = (r[i] - lo) / ((hi - lo) / 100.0)
    return out


@nb.njit(cache=True)
def range_vol(hl2: np.ndarray, co2: np.ndarray, n: int, k: float):
    """Means over the last n of hl2 and of 0.5 · hl2 − k · co2 (Parkinson, Garman–Klass), each window
    summed from scratch like window_mean."""
    size = hl2.shape[0]
    m1 = np.full(size, np.nan)
    m2 = np.full(size, np.nan)
    if size < n:
        return m1, m2
    g = np.empty(size)
    for i in range(size):
        g[i] = 0.5 * hl2[i] - k * co2[i]
    s1 = _window_sums(hl2, n)
    s2 = _window_sums(g, n)
    for i in range(n - 1, size):
        m1[i] = s1[i] / n
        m2[i] = s2[i] / n
    return m1, m2