"""Shared numeric kernels: drift-free rolling sums and moments, epsilon rules of FEATURES.md Numerics.

Rolling sums are re-anchored: every W rows the window sum is recomputed from scratch around a
fresh reference value, so rounding never accumulates over a year of bars and results do not depend
on where a series starts beyond the last W rows. A window containing NaN gives NaN (→ NULL).
"""

from __future__ import annotations

import numba as nb
import numpy as np

EPS_REL_STD = 1e-9  # a standard deviation is zero when <= 1e-9 * mean |y| over the window
EPS_ABS_STD = 1e-12  # ... and, for dimensionless y, when <= 1e-12
EPS_SCALE = 1e-12  # a range, mean, sum, ATR or EMA is zero when |d| <= 1e-12 * max |inputs|
EPS_SIGN = 1e-10  # sign of a dimensionless quantity is 0 when |z| <= 1e-10
EPS_BQX_ZERO = 1e-12  # bqx values with |v| <= 1e-12 are stored as exactly 0
TIE_REL = 1e-9  # stable comparisons: values within 1e-9 · the price level they derive from are equal
TIE_LOG = TIE_REL  # ... in log-price units (returns, their std): ln(c · (1 + 1e-9)) − ln c = 1e-9
# spreads in bps: 1e-9 · price would be 1e-5 bps, above the spacing of distinct spreads on a tenth-pip grid
# (≥ 1.8e-6 bps); 1e-7 bps (1e-11 · price) sits 50x above 1e-13 noise (2e-9 bps) and 18x below that spacing
TIE_BPS = 1e-7


@nb.njit(cache=True)
def _rolling_moments(x: np.ndarray, w: int, order: int) -> np.ndarray:
    """Per window of the last w values: [mean, m2, m3, m4][:order] central moments (ddof 0).

    Sums are taken around a reference value k (the first value of each block of w rows) and
    recomputed from scratch at each block start, so they never drift.
    """
    n = x.shape[0]
    out = np.full((order, n), np.nan)
    if w <= 0 or n < w:
        return out
    s = np.zeros(4)
    nan_count = 0
    k = 0.0
    for i in range(w - 1, n):
        if (i - (w - 1)) % w == 0:
            # re-anchor: fresh reference and fresh sums over x[i-w+1 .. i]
            k = x[i - w + 1]
            if np.isnan(k):
                for j in range(i - w + 1, i + 1):
                    if not np.isnan(x[j]):
                        k = x[j]
                        break
            if np.isnan(k):
                k = 0.0
            s[:] = 0.0
            nan_count = 0
            for j in range(i - w + 1, i + 1):
                v = x[j]
                if np.isnan(v):
                    nan_count += 1
                else:
                    d = v - k
                    s[0] += d
                    s[1] += d * d
                    s[2] += d * d * d
                    s[3] += d * d * d * d
        else:
            v_in = x[i]
            v_out = x[i - w]
            if np.isnan(v_in):
                nan_count += 1
            else:
                d = v_in - k
                s[0] += d
                s[1] += d * d
                s[2] += d * d * d
                s[3] += d * d * d * d
            if np.isnan(v_out):
                nan_count -= 1
            else:
                d = v_out - k
                s[0] -= d
                s[1] -= d * d
                s[2] -= d * d * d
                s[3] -= d * d * d * d
        if nan_count > 0:
            continue
        m1 = s[0] / w  # mean of (x - k)
        out[0, i] = m1 + k
        if order > 1:
            m2 = s[1] / w - m1 * m1
            out[1, i] = m2 if m2 > 0.0 else 0.0
        if order > 2:
            out[2, i] = s[2] / w - 3.0 * m1 * s[1] / w + 2.0 * m1 ** 3
        if order > 3:
            out[3, i] = s[3] / w - 4.0 * m1 * s[2] / w + 6.0 * m1 * m1 * s[1] / w - 3.0 * m1 ** 4
    return out


def rolling_mean(x: np.ndarray, w: int) -> np.ndarray:
    """Mean of the last w values (NaN before w values exist or when the window holds NaN)."""
    return _rolling_moments(np.asarray(x, dtype=np.float64), int(w), 1)[0]


def rolling_sum(x: np.ndarray, w: int) -> np.ndarray:
    return rolling_mean(x, w) * w


def rolling_var(x: np.ndarray, w: int, ddof: int = 0) -> np.ndarray:
    m = _rolling_moments(np.asarray(x, dtype=np.float64), int(w), 2)[1]
    return m * w / (w - ddof) if ddof else m


def rolling_std(x: np.ndarray, w: int, ddof: int = 0) -> np.ndarray:
    return np.sqrt(rolling_var(x, w, ddof))


def rolling_mean_std(x: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std of the last w values in one pass."""
    m = _rolling_moments(np.asarray(x, dtype=np.float64), int(w), 2)
    return m[0], np.sqrt(m[1])


def rolling_central_moments(x: np.ndarray, w: int) -> np.ndarray:
    """Rows: mean, m2, m3, m4 (biased central moments) of the last w values."""
    return _rolling_moments(np.asarray(x, dtype=np.float64), int(w), 4)


def shift(x: np.ndarray, k: int) -> np.ndarray:
    """x[t-k] at t (NaN where it does not exist); negative k looks ahead (targets only)."""
    out = np.full_like(np.asarray(x, dtype=np.float64), np.nan)
    if k == 0:
        out[:] = x
    elif k > 0:
        out[k:] = x[:-k]
    else:
        out[:k] = x[-k:]
    return out


def std_is_zero(std: np.ndarray, mean_abs: np.ndarray, dimensionless: bool = False) -> np.ndarray:
    """FEATURES.md rule: σ is zero when ≤ 1e-9 · mean |y| (and ≤ 1e-12 for dimensionless y)."""
    zero = std <= EPS_REL_STD * mean_abs
    if dimensionless:
        zero |= std <= EPS_ABS_STD
    return zero


def safe_div(num: np.ndarray, den: np.ndarray, zero: np.ndarray) -> np.ndarray:
    """num / den, NaN (→ NULL) where `zero` marks the denominator as zero."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(num, dtype=np.float64) / np.asarray(den, dtype=np.float64)
    return np.where(zero, np.nan, out)


def scale_is_zero(d: np.ndarray, magnitude: np.ndarray) -> np.ndarray:
    """A range, mean, sum, ATR or EMA d is zero when |d| ≤ 1e-12 · the largest magnitude of its inputs."""
    return np.abs(d) <= EPS_SCALE * magnitude


def sign_eps(z: np.ndarray, eps: float | np.ndarray = EPS_SIGN) -> np.ndarray:
    """sign(z) with |z| ≤ eps counted as 0 (NaN stays NaN)."""
    s = np.sign(z)
    return np.where(np.abs(z) <= eps, 0.0, s)


def zero_small(v: np.ndarray, eps: float = EPS_BQX_ZERO) -> np.ndarray:
    """Values with |v| ≤ eps become exactly 0 (bqx values on flat prices)."""
    return np.where(np.abs(v) <= eps, 0.0, v)


# -- pairs of series: co-moments, correlation, slope ----------------------------------------------
@nb.njit(cache=True)
def _rolling_comoments(x: np.ndarray, y: np.ndarray, w: int) -> np.ndarray:
    """Rows mean_x, mean_y, var_x, var_y, cov, mean|x|, mean|y| over the last w rows (NaN if any NaN).

    Sums are taken around reference values and recomputed from scratch every w rows (no drift).
    """
    n = x.shape[0]
    out = np.full((7, n), np.nan)
    if n < w:
        return out
    s = np.zeros(7)
    bad = 0
    kx = 0.0
    ky = 0.0
    for i in range(w - 1, n):
        if (i - (w - 1)) % w == 0:
            kx = 0.0
            ky = 0.0
            for j in range(i - w + 1, i + 1):
                if not (np.isnan(x[j]) or np.isnan(y[j])):
                    kx = x[j]
                    ky = y[j]
                    break
            s[:] = 0.0
            bad = 0
            for j in range(i - w + 1, i + 1):
                if np.isnan(x[j]) or np.isnan(y[j]):
                    bad += 1
                else:
                    dx = x[j] - kx
                    dy = y[j] - ky
                    s[0] += dx
                    s[1] += dy
                    s[2] += dx * dx
                    s[3] += dy * dy
                    s[4] += dx * dy
                    s[5] += abs(x[j])
                    s[6] += abs(y[j])
        else:
            j = i
            if np.isnan(x[j]) or np.isnan(y[j]):
                bad += 1
            else:
                dx = x[j] - kx
                dy = y[j] - ky
                s[0] += dx
                s[1] += dy
                s[2] += dx * dx
                s[3] += dy * dy
                s[4] += dx * dy
                s[5] += abs(x[j])
                s[6] += abs(y[j])
            j = i - w
            if np.isnan(x[j]) or np.isnan(y[j]):
                bad -= 1
            else:
                dx = x[j] - kx
                dy = y[j] - ky
                s[0] -= dx
                s[1] -= dy
                s[2] -= dx * dx
                s[3] -= dy * dy
                s[4] -= dx * dy
                s[5] -= abs(x[j])
                s[6] -= abs(y[j])
        if bad > 0:
            continue
        mx = s[0] / w
        my = s[1] / w
        out[0, i] = mx + kx
        out[1, i] = my + ky
        out[2, i] = max(s[2] / w - mx * mx, 0.0)
        out[3, i] = max(s[3] / w - my * my, 0.0)
        out[4, i] = s[4] / w - mx * my
        out[5, i] = max(s[5] / w, 0.0)
        out[6, i] = max(s[6] / w, 0.0)
    return out


def rolling_comoments(x: np.ndarray, y: np.ndarray, w: int) -> np.ndarray:
    """Rows mean_x, mean_y, var_x, var_y, cov, mean|x|, mean|y| over the last w pairs (ddof 0, NaN if any NaN)."""
    return _rolling_comoments(np.ascontiguousarray(x, dtype=np.float64), np.ascontiguousarray(y, dtype=np.float64), int(w))


def _zero_std(var: np.ndarray, ref: np.ndarray, dimensionless: bool) -> np.ndarray:
    std = np.sqrt(var)
    zero = std <= EPS_REL_STD * ref
    if dimensionless:
        zero |= std <= EPS_ABS_STD
    return zero


def rolling_corr(x: np.ndarray, y: np.ndarray, w: int, *, dimensionless: bool | tuple[bool, bool] = False,
                 scale: np.ndarray | None = None) -> np.ndarray:
    """Pearson correlation over the last w pairs; NaN where a window holds NaN or either σ is zero.

    σ is zero when ≤ 1e-9 · the window's mean |values| (or · `scale`, a per-row magnitude), and for
    dimensionless series (per side when a pair of flags is given) also when ≤ 1e-12.
    """
    dx, dy = dimensionless if isinstance(dimensionless, tuple) else (dimensionless, dimensionless)
    m = rolling_comoments(x, y, w)
    zero = _zero_std(m[2], m[5] if scale is None else scale, dx) | _zero_std(m[3], m[6] if scale is None else scale, dy)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = m[4] / np.sqrt(m[2] * m[3])
    return np.where(zero | np.isnan(c), np.nan, np.clip(c, -1.0, 1.0))


def rolling_autocorr(z: np.ndarray, n: int, *, dimensionless: bool = False, scale: np.ndarray | None = None) -> np.ndarray:
    """Lag-1 autocorrelation over the last n values: Pearson correlation of the n−1 pairs (z_(k−1), z_k)."""
    z = np.asarray(z, dtype=np.float64)
    return rolling_corr(shift(z, 1), z, n - 1, dimensionless=dimensionless, scale=scale)


def rolling_regression_slope(y: np.ndarray, x: np.ndarray, w: int, *, dimensionless: bool = True) -> np.ndarray:
    """OLS slope of y on x over the last w pairs; NaN if a window holds NaN or std(x) is zero."""
    m = rolling_comoments(x, y, w)
    zero = _zero_std(m[2], m[5], dimensionless)
    with np.errstate(invalid="ignore", divide="ignore"):
        b = m[4] / m[2]
    return np.where(zero, np.nan, b)


def snap_log(r: np.ndarray) -> np.ndarray:
    """A log return (or log ratio) of two prices equal within 1e-9 of each other made exactly 0 (FEATURES.md
    stable comparisons: otherwise 1e-13 noise turns a flat bar's 0 into ±1e-13)."""
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(r) <= TIE_LOG, 0.0, r)


def snap_diff(d: np.ndarray, level: np.ndarray) -> np.ndarray:
    """A difference of two prices made exactly 0 where they are equal within 1e-9 · level (stable comparisons)."""
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(d) <= TIE_REL * np.abs(level), 0.0, d)
