"""Agreement between two computations of a column, as FEATURES.md Numerics defines it."""

from __future__ import annotations

import numpy as np

from bqx.core.declaration import DISCRETE_KINDS, Column

REL_TOL = 1e-7
MEDIAN_TOL = 1e-9
BOUNDED_TOL = 1e-6


def tolerance(column: Column, reference: np.ndarray) -> np.ndarray:
    """Per-value absolute tolerance: 1e-7 relative or 1e-9 x the column's median |value|, whichever is looser;
    bounded ratios also 1e-6 absolute; discrete kinds exact."""
    ref = np.asarray(reference, dtype=np.float64)
    if column.kind in DISCRETE_KINDS:
        return np.zeros_like(ref)
    finite = np.abs(ref[np.isfinite(ref)])
    median = float(np.median(finite)) if finite.size else 0.0
    tol = np.maximum(REL_TOL * np.abs(np.nan_to_num(ref)), MEDIAN_TOL * median)
    if column.bounded:
        tol = np.maximum(tol, BOUNDED_TOL)
    return tol


def mismatches(column: Column, expected: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Boolean mask of positions where `actual` disagrees with `expected` (NULL/NaN must match NULL/NaN)."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    e_null, a_null = np.isnan(e), np.isnan(a)
    with np.errstate(invalid="ignore"):
        differ = np.abs(np.where(e_null | a_null, 0.0, a - e)) > tolerance(column, e)
    return (e_null != a_null) | (~e_null & ~a_null & differ)
