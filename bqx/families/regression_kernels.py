"""Rolling quadratic and linear least-squares fits over the last W values, one O(W) pass per window.

Each window is centred on its own mean and projected on a fixed orthonormal basis (1, e1, e2) of
the bar positions u_k = (k − (W−1))/(W−1): the projections are fixed linear filters, so every
window is computed from its own W values only (nothing accumulates over a year of bars, and a
partition gives bit-identical results to the whole series). Residual sums of squares come from
the projections (SSres = SStot − c1² − c2²) unless the fit is nearly exact, where the residuals are
summed directly so that tiny residual scales are accurate rather than rounding noise.
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
DIRECT_BELOW = 1e-4  # SSres < 1e-4 * SStot: sum the residuals directly


@dataclass(frozen=True)
class Basis:
    """The fixed quantities of window W: orthonormal e1 ∝ u − ū, e2 ∝ u² − g1(u − ū) − g0."""

    w: int
    e1: np.ndarray
    e2: np.ndarray
    nu: float  # ||u − ū||
    nq: float  # ||u² − g1(u − ū) − g0||
    ubar: float
    g0: float  # mean(u²)
    g1: float  # Σ(u − ū)u² / Σ(u − ū)²


@lru_cache(maxsize=None)
def basis(w: int) -> Basis:
    if w < 4:
        raise ValueError(f"regression window must be >= 4 bars, got {w}")
    u = (np.arange(w, dtype=np.float64) - (w - 1)) / (w - 1)
    ubar = u.mean()
    ut = u - ubar
    nu = float(np.sqrt(ut @ ut))
    g0 = float((u * u).mean())
    g1 = float(ut @ (u * u) / (ut @ ut))
    q = u * u - g1 * ut - g0
    nq = float(np.sqrt(q @ q))
    return Basis(w, ut / nu, q / nq, nu, nq, float(ubar), g0, g1)


def window_std_from_fit(w: int, rmse: np.ndarray, lin_slope: np.ndarray, a2: np.ndarray) -> np.ndarray:
    """std(y) over the window recovered from stored fit columns: SStot = W·rmse² + (b1·‖ũ‖)² + (a2·‖q‖)²."""
    b = basis(w)
    return np.sqrt(rmse * rmse + ((lin_slope * b.nu) ** 2 + (a2 * b.nq) ** 2) / w)


@nb.njit(cache=True, fastmath={"reassoc", "contract"})
def _sums(y, lo, w, e1, e2, ref):  # pragma: no cover - compiled
    """Σd, Σd², Σe1·d, Σe2·d, Σ|y|, min, max over y[lo:lo+w], d = y − ref (NaN in, NaN out)."""
    s0 = 0.0
    ss = 0.0
    c1 = 0.0
    c2 = 0.0
    sabs = 0.0
    ymin = y[lo]
    ymax = y[lo]
    for k in range(w):
        v = y[lo + k]
        d = v - ref
        s0 += d
        ss += d * d
        c1 += e1[k] * d
        c2 += e2[k] * d
        sabs += abs(v)
        ymin = min(ymin, v)
        ymax = max(ymax, v)
    return s0, ss, c1, c2, sabs, ymin, ymax


@nb.njit(cache=True, fastmath={"reassoc", "contract"})
def _mean(y, lo, w):  # pragma: no cover - compiled
    s = 0.0
    for k in range(w):
        s += y[lo + k]
    return s / w


@nb.njit(cache=True)
def _fit(y, w, e1, e2, nu, nq, ubar, g0, g1, dimensionless):  # pragma: no cover - compiled
    n = y.shape[0]
    out = np.full((15, n), np.nan)
    delta = 1.0 / (w - 1)
    for i in range(w - 1, n):
        lo = i - w + 1
        m = _mean(y, lo, w)  # the window is centred on its mean (then on the rounding left over)
        s0, ss, c1, c2, sabs, ymin, ymax = _sums(y, lo, w, e1, e2, m)
        if np.isnan(s0) or np.isnan(ss):
            continue
        mc = s0 / w  # mean of y − m: rounding only
        sstot = ss - s0 * mc
        if sstot < 0.0:
            sstot = 0.0
        ssl = sstot - c1 * c1
        ssq = ssl - c2 * c2
        if ssq < DIRECT_BELOW * sstot or ssq <= 0.0:
            ssl = 0.0
            ssq = 0.0
            for k in range(w):
                r = y[lo + k] - m - mc - c1 * e1[k]
                ssl += r * r
                r -= c2 * e2[k]
                ssq += r * r
        if ssl < 0.0:
            ssl = 0.0
        if ssq < 0.0:
            ssq = 0.0
        std = np.sqrt(sstot / w)
        std_zero = std <= EPS_STD * (sabs / w) or (dimensionless and std <= EPS_STD_ABS)
        b1 = c1 / nu
        a2 = c2 / nq
        a1 = b1 - a2 * g1
        a0c = mc - b1 * ubar + a2 * (g1 * ubar - g0)  # a0 − m
        rmse = np.sqrt(ssq / w)
        rms_lin = np.sqrt(ssl / w)
        resid = (y[i] - m) - a0c
        out[0, i] = a2
        out[1, i] = a1
        out[2, i] = m + a0c
        out[4, i] = rmse
        out[5, i] = resid
        out[7, i] = b1
        out[10, i] = m + (a0c + a1 * delta + a2 * delta * delta)
        if not std_zero:
            r2 = 1.0 - ssq / sstot
            lr2 = 1.0 - ssl / sstot
            r2 = min(max(r2, 0.0), 1.0)
            lr2 = min(max(lr2, 0.0), 1.0)
            out[3, i] = r2
            out[8, i] = lr2
            out[9, i] = r2 - lr2
            if rmse > EPS_SCALE * std:
                out[6, i] = resid / rmse
                out[14, i] = a1 / rmse
            if rms_lin > EPS_SCALE * std:
                se = np.sqrt(ssl / (w - 2)) / nu
                out[12, i] = b1 / se
            if abs(a2) > EPS_SCALE * std:
                out[11, i] = -a1 / (2.0 * a2)
        rng = ymax - ymin
        if rng > EPS_RANGE * max(abs(ymax), abs(ymin)):
            out[13, i] = (y[i] - ymin) / rng
    return out


def rolling_fits(y: np.ndarray, w: int, *, dimensionless: bool) -> np.ndarray:
    """(15, n) array of the METRICS over the last w values of y (NaN = NULL: warm-up, NaN inputs, undefined)."""
    b = basis(int(w))
    return _fit(np.ascontiguousarray(y, dtype=np.float64), b.w, b.e1, b.e2, b.nu, b.nq, b.ubar, b.g0, b.g1,
                bool(dimensionless))
