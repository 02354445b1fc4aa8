"""Rolling quadratic and linear least-squares fits over the last W values, a few O(W) passes per window.

Each window is centred on its own mean and projected on a fixed orthonormal basis (1, e1, e2) of
the bar positions u_k = (k − (W−1))/(W−1): the projections are fixed linear filters, so every
window is computed from its own W values only (nothing accumulates over a year of bars, and a
partition gives bit-identical results to the whole series). As in modified Gram–Schmidt, the
quadratic projection c2 and the linear fit's SSres are taken from the residual of the linear fit,
and the quadratic SSres = SSres_lin − c2² unless that cancels (nearly exact fits), where the
residuals are summed directly: tiny residual scales come out accurate rather than rounding noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numba as nb
import numpy as np

#: The 15 metrics, in column order (reg_{d}_w{W}_{m}).
METRICS: tuple[str, ...] = (
    "a2", "a1", "a0", "r2", "rmse", "resid", "resid_z", "lin_slope", "lin_r2", "r2_gain",
    "forecast", "vertex_u", "lin_tstat", "range_pos", "snr",
)
EPS_STD = 1e-9  # std(y) is zero when <= 1e-9 * mean |y| over the window
EPS_STD_ABS = 1e-12  # ... and, for dimensionless y, when <= 1e-12
EPS_SCALE = 1e-9  # a residual scale (or |a2| for vertex_u) is zero when <= 1e-9 * std(y)
EPS_RANGE = 1e-12  # max - min is zero when <= 1e-12 * max(|max|, |min|)
EXACT_LIN_BELOW = 1e-6  # SSres_lin < 1e-6 * SStot: form the linear fit's residuals error-free
EXACT_QUAD_BELOW = 1e-8  # c2² < 1e-8 * SStot (a2 tiny beside std(y)): likewise
DIRECT_BELOW = 1e-4  # SSres < 1e-4 * SSres_lin: sum the quadratic fit's residuals directly


@dataclass(frozen=True)
class Basis:
    """The fixed quantities of window W: orthonormal e1 ∝ u − ū, e2 ∝ u² − g1(u − ū) − g0."""

    w: int
    e1: np.ndarray
    e2: np.ndarray
    nu: float  # ||u − ū||
    nq: float  # ||u² − g1(u − ū) − g0||
    e1_hi: np.ndarray  # Dekker split of e1 (e1 = e1_hi + e1_lo exactly, 26-bit halves)
    e1_lo: np.ndarray
    ubar: float
    g0: float  # mean(u²)
    g1: float  # Σ(u − ū)u² / Σ(u − ū)²


@lru_cache(maxsize=None)
def basis(w: int) -> Basis:
    if w < 4:
        raise ValueError(f"regression window must be >= 4 bars, got {w}")
    ld = np.longdouble  # the basis is built in extended precision, then rounded once
    u = (np.arange(w, dtype=ld) - (w - 1)) / (w - 1)
    ubar = u.mean()
    ut = u - ubar
    nu = np.sqrt(ut @ ut)
    g0 = (u * u).mean()
    g1 = ut @ (u * u) / (ut @ ut)
    q = u * u - g1 * ut - g0
    nq = np.sqrt(q @ q)
    e1, e2 = (ut / nu).astype(np.float64), (q / nq).astype(np.float64)
    t = 134217729.0 * e1
    e1_hi = t - (t - e1)
    return Basis(w, e1, e2, float(nu), float(nq), e1_hi, e1 - e1_hi, float(ubar), float(g0), float(g1))


def window_std_from_fit(w: int, rmse: np.ndarray, lin_slope: np.ndarray, a2: np.ndarray) -> np.ndarray:
    """std(y) over the window recovered from stored fit columns: SStot = W·rmse² + (b1·‖ũ‖)² + (a2·‖q‖)²."""
    b = basis(w)
    return np.sqrt(rmse * rmse + ((lin_slope * b.nu) ** 2 + (a2 * b.nq) ** 2) / w)


@nb.njit(cache=True, fastmath={"reassoc", "contract"})
def _mean(y, lo, w):  # pragma: no cover - compiled
    s = 0.0
    for k in range(w):
        s += y[lo + k]
    return s / w


@nb.njit(cache=True, fastmath={"reassoc", "contract"})
def _centred(y, lo, w, e1, m):  # pragma: no cover - compiled
    """Σd, Σd², Σe1·d, Σ|y|, min, max over y[lo:lo+w], d = y − m (NaN in, NaN out)."""
    s0 = 0.0
    ss = 0.0
    c1 = 0.0
    sabs = 0.0
    ymin = y[lo]
    ymax = y[lo]
    for k in range(w):
        v = y[lo + k]
        d = v - m
        s0 += d
        ss += d * d
        c1 += e1[k] * d
        sabs += abs(v)
        ymin = min(ymin, v)
        ymax = max(ymax, v)
    return s0, ss, c1, sabs, ymin, ymax


@nb.njit(cache=True, fastmath={"reassoc", "contract"})
def _detrended(y, lo, w, e1, e2, m, mc, c1):  # pragma: no cover - compiled
    """Σe2·z and Σz² for z = y − mean − c1·e1, the residual of the linear fit (modified Gram–Schmidt:
    c2 is taken from data whose linear part is already removed)."""
    c2 = 0.0
    ssl = 0.0
    for k in range(w):
        z = (y[lo + k] - m) - mc - c1 * e1[k]
        c2 += e2[k] * z
        ssl += z * z
    return c2, ssl


@nb.njit(cache=True)
def _detrended_exact(y, lo, w, e1, e1_hi, e1_lo, e2, m, mc, c1):  # pragma: no cover - compiled
    """`_detrended` with z formed by error-free transformations (Dekker's product, Knuth's sum; no
    fast-math here), so its rounding is relative to |z|, not to the linear part: used on nearly
    exact lines and nearly linear windows, where a2 or SSres_lin is tiny beside SStot.
    """
    t = 134217729.0 * c1  # Dekker split of c1 (2^27 + 1)
    c1_hi = t - (t - c1)
    c1_lo = c1 - c1_hi
    c2 = 0.0
    ssl = 0.0
    for k in range(w):
        v = y[lo + k]
        d = v - m
        bb = d - v  # TwoSum(v, −m): d + d_err = v − m exactly
        d_err = (v - (d - bb)) + (-m - bb)
        p = c1 * e1[k]
        p_err = ((c1_hi * e1_hi[k] - p) + c1_hi * e1_lo[k] + c1_lo * e1_hi[k]) + c1_lo * e1_lo[k]
        z = ((d - p) + (d_err - p_err)) - mc
        c2 += e2[k] * z
        ssl += z * z
    return c2, ssl


@nb.njit(cache=True, fastmath={"reassoc", "contract"})
def _quad_ss(y, lo, w, e1, e2, m, mc, c1, c2):  # pragma: no cover - compiled
    ssq = 0.0
    for k in range(w):
        r = (y[lo + k] - m) - mc - c1 * e1[k] - c2 * e2[k]
        ssq += r * r
    return ssq


@nb.njit(cache=True)
def _fit(y, w, e1, e1_hi, e1_lo, e2, nu, nq, ubar, g0, g1, dimensionless):  # pragma: no cover - compiled
    n = y.shape[0]
    out = np.full((n, 15), np.nan)  # row-major: one window's metrics are contiguous
    delta = 1.0 / (w - 1)
    for i in range(w - 1, n):
        lo = i - w + 1
        m = _mean(y, lo, w)
        s0, ss, c1, sabs, ymin, ymax = _centred(y, lo, w, e1, m)
        if np.isnan(s0) or np.isnan(ss):
            continue
        mc = s0 / w  # rounding left in the mean: the mean is m + mc
        sstot = max(ss - s0 * mc, 0.0)
        c2, ssl = _detrended(y, lo, w, e1, e2, m, mc, c1)
        if ssl < EXACT_LIN_BELOW * sstot or c2 * c2 < EXACT_QUAD_BELOW * sstot:
            c2, ssl = _detrended_exact(y, lo, w, e1, e1_hi, e1_lo, e2, m, mc, c1)
        ssq = ssl - c2 * c2
        if ssq < DIRECT_BELOW * ssl:
            ssq = _quad_ss(y, lo, w, e1, e2, m, mc, c1, c2)
        ssq = max(ssq, 0.0)
        std = np.sqrt(sstot / w)
        std_zero = std <= EPS_STD * (sabs / w) or (dimensionless and std <= EPS_STD_ABS)
        b1 = c1 / nu
        a2 = c2 / nq
        a1 = b1 - a2 * g1
        a0c = mc + a2 * (g1 * ubar - g0) - b1 * ubar  # a0 − m
        rmse = np.sqrt(ssq / w)
        rms_lin = np.sqrt(ssl / w)
        resid = (y[i] - m) - a0c
        out[i, 0] = a2
        out[i, 1] = a1
        out[i, 2] = m + a0c
        out[i, 4] = rmse
        out[i, 5] = resid
        out[i, 7] = b1
        out[i, 10] = m + (a0c + a1 * delta + a2 * delta * delta)
        if not std_zero:
            r2 = 1.0 - ssq / sstot
            lr2 = 1.0 - ssl / sstot
            r2 = min(max(r2, 0.0), 1.0)
            lr2 = min(max(lr2, 0.0), 1.0)
            out[i, 3] = r2
            out[i, 8] = lr2
            out[i, 9] = r2 - lr2
            if rmse > EPS_SCALE * std:
                out[i, 6] = resid / rmse
                out[i, 14] = a1 / rmse
            if rms_lin > EPS_SCALE * std:
                se = np.sqrt(ssl / (w - 2)) / nu
                out[i, 12] = b1 / se
            if abs(a2) > EPS_SCALE * std:
                out[i, 11] = -a1 / (2.0 * a2)
        rng = ymax - ymin
        if rng > EPS_RANGE * max(abs(ymax), abs(ymin)):
            out[i, 13] = (y[i] - ymin) / rng
    return out


def rolling_fits(y: np.ndarray, w: int, *, dimensionless: bool) -> np.ndarray:
    """(15, n) array of the METRICS over the last w values of y (NaN = NULL: warm-up, NaN inputs, undefined)."""
    b = basis(int(w))
    return _fit(np.ascontiguousarray(y, dtype=np.float64), b.w, b.e1, b.e1_hi, b.e1_lo, b.e2, b.nu, b.nq, b.ubar,
                b.g0, b.g1, bool(dimensionless)).T
