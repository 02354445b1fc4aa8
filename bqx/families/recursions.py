"""Numba kernels for the recursions and order statistics of technical and regimes.

Everything here is a loop that cannot be written as a fixed window of numpy/polars operations:
TA-Lib's RSI and CCI redone operation for operation (so that their zero denominators are seen),
the Wilder sum behind DI/ADX, short windows summed from scratch.
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
