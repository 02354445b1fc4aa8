"""Per-window statistics over the last w rows: quantiles, MAD, entropy, correlation, OLS slope.

Every kernel here evaluates each window on its own (O(n·w), numba), so results depend only on the
window's values: no drift over a year and bit-identical under truncation. A window holding a NaN
gives NaN (→ NULL). Mean and std come from `rolling` (drift-free rolling moments) with constant
windows forced to exact values, so the epsilon rules of FEATURES.md Numerics see true zeros.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import polars as pl

from bqx.kernels.rolling import EPS_ABS_STD, EPS_REL_STD, EPS_SCALE, rolling_mean, rolling_mean_std


# -- mean, std, min, max with exact constant windows ---------------------------------------------
def rolling_min_max(x: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of the last w values (NaN before w values or when the window holds NaN)."""
    s = pl.Series(np.asarray(x, dtype=np.float64), nan_to_null=True)
    lo = s.rolling_min(w).to_numpy().astype(np.float64)
    hi = s.rolling_max(w).to_numpy().astype(np.float64)
    return lo, hi


def window_mean_std(x: np.ndarray, w: int) -> dict[str, np.ndarray]:
    """mean, std (ddof 0), min, max and mean |x| of the last w values.

    Where the window is constant (max = min exactly) mean is the value itself and std exactly 0,
    not rolling-sum rounding noise.
    """
    x = np.asarray(x, dtype=np.float64)
    mean, std = rolling_mean_std(x, w)
    lo, hi = rolling_min_max(x, w)
    const = hi == lo
    mean = np.where(const, hi, mean)
    std = np.where(const, 0.0, std)
    mean_abs = np.where(const, np.abs(hi), rolling_mean(np.abs(x), w))
    return {"mean": mean, "std": std, "min": lo, "max": hi, "mean_abs": mean_abs, "const": const}


def std_zero(std: np.ndarray, mean_abs: np.ndarray, dimensionless: bool) -> np.ndarray:
    """σ is zero when ≤ 1e-9 · mean |y| over the window (and ≤ 1e-12 for dimensionless y)."""
    zero = std <= EPS_REL_STD * mean_abs
    if dimensionless:
        zero |= std <= EPS_ABS_STD
    return zero


def scale_zero(d: np.ndarray, *magnitudes: np.ndarray) -> np.ndarray:
    """A range, mean, sum or ATR d is zero when |d| ≤ 1e-12 · the largest magnitude of its inputs."""
    mag = np.maximum.reduce([np.abs(m) for m in magnitudes]) if magnitudes else np.abs(d)
    return np.abs(d) <= EPS_SCALE * mag


def divide(num: np.ndarray, den: np.ndarray, zero: np.ndarray) -> np.ndarray:
    """num / den with NaN (→ NULL) where `zero` says the denominator is zero."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(num, dtype=np.float64) / np.where(zero, 1.0, den)
    return np.where(zero | np.isnan(den), np.nan, out)


# -- sorted-window kernels ------------------------------------------------------------------------
@nb.njit(cache=True)
def _remove(buf: np.ndarray, m: int, v: float) -> int:
    j = np.searchsorted(buf[:m], v)
    buf[j:m - 1] = buf[j + 1:m]
    return m - 1


@nb.njit(cache=True)
def _insert(buf: np.ndarray, m: int, v: float) -> int:
    j = np.searchsorted(buf[:m], v)
    buf[j + 1:m + 1] = buf[j:m].copy()
    buf[j] = v
    return m + 1


@nb.njit(cache=True)
def _quantile_sorted(s: np.ndarray, q: float) -> float:
    """Linear interpolation between order statistics (numpy's default 'linear' method)."""
    h = (s.shape[0] - 1) * q
    lo = int(np.floor(h))
    if lo >= s.shape[0] - 1:
        return s[s.shape[0] - 1]
    frac = h - lo
    a, b = s[lo], s[lo + 1]
    if frac >= 0.5:
        return b - (b - a) * (1.0 - frac)
    return a + frac * (b - a)


@nb.njit(cache=True)
def _mad_sorted(s: np.ndarray) -> float:
    """Median of |s − median(s)| for sorted s: merge the distances outward from the middle."""
    n = s.shape[0]
    med = 0.5 * (s[(n - 1) // 2] + s[n // 2])
    i = (n - 1) // 2  # s[0..i] <= med <= s[i+1..]
    j = i + 1
    k1, k2 = (n - 1) // 2, n // 2
    d1 = 0.0
    for rank in range(k2 + 1):
        if j >= n or (i >= 0 and med - s[i] <= s[j] - med):
            d = med - s[i]
            i -= 1
        else:
            d = s[j] - med
            j += 1
        if rank == k1:
            d1 = d
        if rank == k2:
            return 0.5 * (d1 + d)
    return np.nan


@nb.njit(cache=True)
def _rolling_sorted(x: np.ndarray, w: int, probs: np.ndarray, want_mad: bool, want_rank: bool, tie: float = 0.0) -> np.ndarray:
    """Rows: the quantiles at `probs`, then MAD (if asked), then the fraction of the window ≤ x_t + tie (if asked)."""
    n = x.shape[0]
    rows = probs.shape[0] + (1 if want_mad else 0) + (1 if want_rank else 0)
    out = np.full((rows, n), np.nan)
    buf = np.empty(w)
    m = 0
    nan_count = 0
    for t in range(n):
        if t >= w:
            old = x[t - w]
            if np.isnan(old):
                nan_count -= 1
            else:
                m = _remove(buf, m, old)
        v = x[t]
        if np.isnan(v):
            nan_count += 1
        else:
            m = _insert(buf, m, v)
        if t < w - 1 or nan_count > 0:
            continue
        s = buf[:m]
        for k in range(probs.shape[0]):
            out[k, t] = _quantile_sorted(s, probs[k])
        row = probs.shape[0]
        if want_mad:
            out[row, t] = _mad_sorted(s)
            row += 1
        if want_rank:
            out[row, t] = np.searchsorted(s, v + tie, side="right") / w
    return out


def rolling_quantiles(x: np.ndarray, w: int, probs: tuple[float, ...]) -> np.ndarray:
    """Linearly interpolated quantiles of the last w values, one row per probability."""
    return _rolling_sorted(np.asarray(x, dtype=np.float64), int(w), np.asarray(probs, dtype=np.float64), False, False)


def rolling_quantiles_mad(x: np.ndarray, w: int, probs: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Quantiles (one row per probability) and the MAD of the last w values, from one sorted window."""
    rows = _rolling_sorted(np.asarray(x, dtype=np.float64), int(w), np.asarray(probs, dtype=np.float64), True, False)
    return rows[:-1], rows[-1]


def rolling_mad(x: np.ndarray, w: int) -> np.ndarray:
    """Median absolute deviation from the median over the last w values (unscaled)."""
    return _rolling_sorted(np.asarray(x, dtype=np.float64), int(w), np.empty(0), True, False)[0]


def rolling_le_fraction(x: np.ndarray, w: int, tie: float = 0.0) -> np.ndarray:
    """Fraction of the last w values that are ≤ x_t (x_t included), values within `tie` of x_t counting as equal."""
    return _rolling_sorted(np.asarray(x, dtype=np.float64), int(w), np.empty(0), False, True, float(tie))[0]


# -- per-window moments of pairs, slope, entropy ---------------------------------------------------
@nb.njit(cache=True)
def _rolling_slope(x: np.ndarray, w: int) -> np.ndarray:
    """OLS slope on positions 0..w−1, Σ (k − k̄)(x_k − x_ref) / Σ (k − k̄)², x_ref = the window's first value."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    kbar = 0.5 * (w - 1)
    skk = w * (w * w - 1.0) / 12.0
    for t in range(w - 1, n):
        ref = x[t - w + 1]
        acc = 0.0
        for k in range(w):
            acc += (k - kbar) * (x[t - w + 1 + k] - ref)
        out[t] = acc / skk  # a NaN anywhere in the window propagates
    return out


def rolling_slope(x: np.ndarray, w: int) -> np.ndarray:
    """OLS slope of the last w values regressed on bar position 0 … w−1 (per bar)."""
    return _rolling_slope(np.asarray(x, dtype=np.float64), int(w))


@nb.njit(cache=True)
def _rolling_entropy(x: np.ndarray, w: int, bins: int, tie: float) -> np.ndarray:
    """Shannon entropy (bits) of the window's histogram in `bins` equal bins over [min, max].

    Binning follows numpy.histogram (edges = linspace(min, max, bins+1), the maximum in the last
    bin), except that a value within `tie` below an interior edge is on it (stable comparisons; tie = 0
    is numpy's binning); 0 when the range is zero by the 1e-12 rule.
    """
    n = x.shape[0]
    out = np.full(n, np.nan)
    counts = np.zeros(bins)
    edges = np.empty(bins + 1)
    for t in range(w - 1, n):
        lo = np.inf
        hi = -np.inf
        bad = False
        for k in range(t - w + 1, t + 1):
            v = x[k]
            if np.isnan(v):
                bad = True
                break
            lo = min(lo, v)
            hi = max(hi, v)
        if bad:
            continue
        if hi - lo <= EPS_SCALE * max(abs(lo), abs(hi)):
            out[t] = 0.0
            continue
        step = (hi - lo) / bins
        for b in range(bins + 1):
            edges[b] = b * step + lo
        edges[bins] = hi
        counts[:] = 0.0
        for k in range(t - w + 1, t + 1):
            v = x[k]
            i = int(((v - lo) / (hi - lo)) * bins)
            if i == bins:
                i -= 1
            if v < edges[i] - tie:
                i -= 1
            if i != bins - 1 and v >= edges[i + 1] - tie:
                i += 1
            counts[i] += 1.0
        h = 0.0
        for b in range(bins):
            if counts[b] > 0:
                p = counts[b] / w
                h -= p * np.log2(p)
        out[t] = h
    return out


def rolling_entropy(x: np.ndarray, w: int, bins: int = 10, tie: float = 0.0) -> np.ndarray:
    """Shannon entropy in bits of the histogram of the last w values in `bins` equal-width bins (a value within
    `tie` below an interior edge counts as on it)."""
    return _rolling_entropy(np.asarray(x, dtype=np.float64), int(w), int(bins), float(tie))


@nb.njit(cache=True)
def _streak_above(above: np.ndarray, cap: int) -> np.ndarray:
    """Run length of 1s ending at t (at most cap); 0 if above_t = 0; NaN if the run reaches a NaN first."""
    n = above.shape[0]
    out = np.full(n, np.nan)
    for t in range(n):
        run = 0
        ok = True
        for k in range(t, max(-1, t - cap - 1), -1):
            if run == cap:
                break
            a = above[k]
            if np.isnan(a):
                ok = False
                break
            if a == 0.0:
                break
            run += 1
        if ok and run < cap and t - run < 0:
            ok = False  # the run reaches the start of the frame: the previous row is unknown
        if ok:
            out[t] = run
    return out


def streak_above(above: np.ndarray, cap: int) -> np.ndarray:
    """Consecutive rows up to t (at most `cap`) where `above` is 1; NaN if the run reaches a NaN."""
    return _streak_above(np.asarray(above, dtype=np.float64), int(cap))
