"""Numba kernels of the technical family: TA-Lib's ATR, MAX/MIN, STOCH and LINEARREG_SLOPE redone (faster,
and sharing their building blocks), and the volatility columns finished in one loop (no numpy
temporaries). Same operations, in the same order, as TA-Lib up to 0.7 and as the numpy expressions they
replace, so the values are bit-identical to those; TA-Lib 0.8 (pinned) fuses some of its multiply-adds and
slides running sums, so it differs from them in the last bits (docs/DEPENDENCIES.md; tests/families/test_technical.py
compares both)."""

from __future__ import annotations

import numba as nb
import numpy as np
import talib

from bqx.kernels.recursions import _window_sums, directional_move


@nb.njit(cache=True, error_model="numpy")
def atr(tr: np.ndarray, n: int) -> np.ndarray:
    """TA-Lib's ATR(n) from TA-Lib's TRANGE (NaN on row 0): the mean of tr[1 .. n] at row n, then
    (prev · (n − 1) + tr_t) / n."""
    size = tr.shape[0]
    out = np.full(size, np.nan)
    if size <= n:
        return out
    s = 0.0
    for i in range(1, n + 1):
        s += tr[i]
    prev = s / n
    out[n] = prev
    for i in range(n + 1, size):
        prev *= n - 1
        prev += tr[i]
        prev /= n
        out[i] = prev
    return out


@nb.njit(cache=True, error_model="numpy")
def volatility(x, atr10, atr14, atr100, park, gk, ema20, hh20, ll20, e10, mx14, e1, e2, ln2, eps):
    """The volatility columns after ti_atr_14 and ti_trange (FEATURES.md technical) from their TA-Lib
    building blocks, in the family's column order, except that the last is the ratio ti_mass_25 sums. Separate arrays, not
    one block: a block this large would be mapped fresh on every call."""
    size = x.shape[0]
    natr = np.empty(size)
    ratio = np.empty(size)
    parkinson = np.empty(size)
    gk_out = np.empty(size)
    kc_up = np.empty(size)
    kc_lo = np.empty(size)
    kc_pos = np.empty(size)
    dc_hi = np.empty(size)
    dc_lo = np.empty(size)
    dc_pos = np.empty(size)
    chaikin = np.empty(size)
    ulcer = np.empty(size)
    mass_ratio = np.empty(size)
    nan = np.nan
    d2 = np.empty(size)
    for t in range(size):
        xt = x[t]
        natr[t] = (atr14[t] / xt) * 100.0
        ratio[t] = nan if abs(atr100[t]) <= eps * xt else atr14[t] / atr100[t]
        parkinson[t] = np.sqrt(park[t] / (4.0 * ln2))
        gk_out[t] = nan if gk[t] < 0.0 else np.sqrt(gk[t])
        upper = ema20[t] + 2.0 * atr10[t]
        lower = ema20[t] - 2.0 * atr10[t]
        kc_up[t] = (upper - xt) / xt
        kc_lo[t] = (xt - lower) / xt
        kc_pos[t] = nan if abs(atr10[t]) <= eps * xt else (xt - lower) / (upper - lower)
        hh = hh20[t]
        ll = ll20[t]
        dc_hi[t] = (hh - xt) / xt
        dc_lo[t] = (xt - ll) / xt
        dc_pos[t] = nan if abs(hh - ll) <= eps * xt else (xt - ll) / (hh - ll)
        if t >= 10 and not abs(e10[t - 10]) <= eps * x[t - 10]:
            chaikin[t] = 100.0 * (e10[t] / e10[t - 10] - 1.0)
        else:
            chaikin[t] = nan
        d = 100.0 * (xt - mx14[t]) / mx14[t]
        d2[t] = d * d
        mass_ratio[t] = nan if abs(e2[t]) <= eps * xt else e1[t] / e2[t]
    if size >= 14:
        s = _window_sums(d2, 14)
        for t in range(size):
            ulcer[t] = nan if t < 13 else np.sqrt(s[t] / 14)
    else:
        ulcer[:] = nan
    return (natr, ratio, parkinson, gk_out, kc_up,
            kc_lo, kc_pos, dc_hi, dc_lo, dc_pos, chaikin, ulcer, mass_ratio)


def window_max(a: np.ndarray, w: int) -> np.ndarray:
    """TA-Lib's MAX(a, w) (TA-Lib itself if a has NaN, whose handling there is TA-Lib's own)."""
    out, has_nan = _rolling_max(a, w, 1.0)
    return talib.MAX(a, w) if has_nan else out


def window_min(a: np.ndarray, w: int) -> np.ndarray:
    """TA-Lib's MIN(a, w) (TA-Lib itself if a has NaN)."""
    out, has_nan = _rolling_max(a, w, -1.0)
    return talib.MIN(a, w) if has_nan else out


@nb.njit(cache=True)
def _rolling_max(a: np.ndarray, w: int, sign: float):
    """sign · max over the last w of sign · a, NaN before row w − 1, and whether a has NaN (then the
    values are not to be used). Van Herk / Gil–Werman: running maxima from each w-block's start and to
    its end give every window's maximum in two lookups. Max is exact, so this equals TA-Lib's MAX/MIN."""
    size = a.shape[0]
    out = np.full(size, np.nan)
    if size < w:
        return out, False
    has_nan = False
    g = np.empty(size)
    h = np.empty(size)
    for b0 in range(0, size, w):
        b1 = min(b0 + w, size)
        m = sign * a[b0]
        has_nan |= m != m
        g[b0] = m
        for i in range(b0 + 1, b1):
            v = sign * a[i]
            has_nan |= v != v
            if v > m:
                m = v
            g[i] = m
        m = sign * a[b1 - 1]
        h[b1 - 1] = m
        for i in range(b1 - 2, b0 - 1, -1):
            v = sign * a[i]
            if v > m:
                m = v
            h[i] = m
    for i in range(w - 1, size):
        u = h[i - w + 1]
        out[i] = sign * (u if u > g[i] else g[i])
    return out, has_nan


@nb.njit(cache=True)
def linreg_slope(x: np.ndarray, n: int) -> np.ndarray:
    """TA-Lib's LINEARREG_SLOPE(n): Σy and Σ i·y (i = n−1 for the oldest value .. 0 for x_t) summed from
    the oldest value as TA-Lib does, the windows swept together; (n·Σxy − Σx·Σy) / (Σx² − n·Σx²)."""
    size = x.shape[0]
    out = np.full(size, np.nan)
    if size < n:
        return out
    sum_x = n * (n - 1) * 0.5
    sum_x_sqr = float(n * (n - 1) * (2 * n - 1) // 6)
    divisor = sum_x * sum_x - n * sum_x_sqr
    m = size - n + 1
    sy = np.zeros(m)
    sxy = np.zeros(m)
    for j in range(n):
        a = x[j:j + m]
        k = float(n - 1 - j)
        for i in range(m):
            v = a[i]
            sy[i] += v
            sxy[i] += k * v
    for i in range(m):
        out[i + n - 1] = (n * sxy[i] - sum_x * sy[i]) / divisor
    return out


@nb.njit(cache=True, error_model="numpy")
def _sma_running(a: np.ndarray, start: int, n: int) -> np.ndarray:
    """TA-Lib's SMA(n) of a[start:] with its running total (add the new value, output, drop the oldest)."""
    size = a.shape[0]
    out = np.full(size, np.nan)
    total = 0.0
    for i in range(start, min(start + n - 1, size)):
        total += a[i]
    for i in range(start + n - 1, size):
        total += a[i]
        out[i] = total / n
        total -= a[i - n + 1]
    return out


@nb.njit(cache=True, error_model="numpy")
def stoch(hh: np.ndarray, ll: np.ndarray, x: np.ndarray, n: int, k: int, d: int):
    """TA-Lib's STOCH(n, k, SMA, d, SMA) from hh = MAX(high, n), ll = MIN(low, n): fast %K =
    (x − ll) / ((hh − ll) / 100) (0 where hh = ll), slow %K its SMA(k), slow %D the SMA(d) of slow %K;
    both NaN before row n − 1 + k − 1 + d − 1 as TA-Lib aligns them."""
    size = x.shape[0]
    fastk = np.full(size, np.nan)
    for i in range(n - 1, size):
        diff = (hh[i] - ll[i]) / 100.0
        fastk[i] = (x[i] - ll[i]) / diff if diff != 0.0 else 0.0
    slowk = _sma_running(fastk, n - 1, k)
    slowd = _sma_running(slowk, n + k - 2, d)
    first = min(n + k + d - 3, size)
    slowk[:first] = np.nan
    return slowk, slowd



@nb.njit(cache=True)
def sar(h: np.ndarray, lo: np.ndarray, x: np.ndarray, acc: float, maximum: float, tie_rel: float) -> np.ndarray:
    """TA-Lib's SAR(acc, maximum) operation for operation, with FEATURES.md's stable comparisons (ε = tie_rel ·
    x_t; tie_rel = 0 is TA-Lib exactly): the start is short only when bar 1's down move counts as −DM
    (`directional_move`); a long reverses when low ≤ SAR + ε (a short when high ≥ SAR − ε: touching
    reverses, as in TA-Lib); a new extreme (af steps up) needs high > EP + ε (low < EP − ε). NaN on row 0."""
    size = h.shape[0]
    out = np.full(size, np.nan)
    if size < 2:
        return out
    af = acc
    if af > maximum:
        af = acc = maximum
    is_long = directional_move(h[1] - h[0], lo[0] - lo[1], tie_rel * x[1]) >= 0
    if is_long:
        ep = h[1]
        s = lo[0]
    else:
        ep = lo[1]
        s = h[0]
    new_low = lo[1]
    new_high = h[1]
    for t in range(1, size):
        prev_low = new_low
        prev_high = new_high
        new_low = lo[t]
        new_high = h[t]
        eps = tie_rel * x[t]
        if is_long:
            if new_low <= s + eps:
                is_long = False
                s = ep
                if s < prev_high:
                    s = prev_high
                if s < new_high:
                    s = new_high
                out[t] = s
                af = acc
                ep = new_low
                s = s + af * (ep - s)
                if s < prev_high:
                    s = prev_high
                if s < new_high:
                    s = new_high
            else:
                out[t] = s
                if new_high > ep + eps:
                    ep = new_high
                    af += acc
                    if af > maximum:
                        af = maximum
                s = s + af * (ep - s)
                if s > prev_low:
                    s = prev_low
                if s > new_low:
                    s = new_low
        else:
            if new_high >= s - eps:
                is_long = True
                s = ep
                if s > prev_low:
                    s = prev_low
                if s > new_low:
                    s = new_low
                out[t] = s
                af = acc
                ep = new_high
                s = s + af * (ep - s)
                if s > prev_low:
                    s = prev_low
                if s > new_low:
                    s = new_low
            else:
                out[t] = s
                if new_low < ep - eps:
                    ep = new_low
                    af += acc
                    if af > maximum:
                        af = maximum
                s = s + af * (ep - s)
                if s < prev_high:
                    s = prev_high
                if s < new_high:
                    s = new_high
    return out


@nb.njit(cache=True)
def aroonosc(h: np.ndarray, lo: np.ndarray, x: np.ndarray, n: int, tie_rel: float) -> np.ndarray:
    """TA-Lib's AROONOSC(n) = (100/n) · (i_high − i_low) over the last n + 1 bars, i_high the index of the
    highest high, ties going to the most recent as in TA-Lib, with FEATURES.md's stable comparison: a high
    within ε = tie_rel · x_t of the window's maximum ties with it (i_low alike); tie_rel = 0 is TA-Lib's."""
    size = h.shape[0]
    out = np.full(size, np.nan)
    if size <= n:
        return out
    hh, _ = _rolling_max(h, n + 1, 1.0)
    ll, _ = _rolling_max(lo, n + 1, -1.0)
    factor = 100.0 / n
    for t in range(n, size):
        eps = tie_rel * x[t]
        i_hi = t
        while h[i_hi] < hh[t] - eps:
            i_hi -= 1
        i_lo = t
        while lo[i_lo] > ll[t] + eps:
            i_lo -= 1
        out[t] = factor * (i_hi - i_lo)
    return out
