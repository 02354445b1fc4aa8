"""labels (stage targets, 1.7): triple-barrier labels with their spans and uniqueness weights — targets too.

For each horizon h (rows) and row t: barriers at ±u_t = ±k · σ_t · sqrt(h) around ln c_t, σ_t =
`stat_std_60`; the label ends at the first touch j* in 1 … h (upper tested first) or at h. The
weight is the label's average uniqueness over its interval (t, t + j*]. The label of row t reads
rows up to t + h; its weight reads the labels that overlap its interval, which start up to h − 1
rows before t and end up to 2h − 1 rows after it: lookahead 2h − 1, context h − 1.
"""

from __future__ import annotations

from typing import Any, Mapping

import numba as nb
import numpy as np
import polars as pl

from bqx.core.declaration import Column, Ctx, series
from bqx.core.registry import family

DEFAULTS = {"horizons": (15, 30, 60), "width": 1.0, "max_gap": 60}
SIGMA = "stat_std_60"
ABSMEAN = "stat_absmean_60"
TOUCH_TOL = 1e-12  # z ≥ u − 1e-12 is an upper touch, z ≤ −u + 1e-12 a lower one
SIGMA_TINY = 1e-12  # σ ≤ 1e-12, or σ ≤ 1e-9 · stat_absmean_60, is zero (Numerics, dimensionless)
SIGMA_REL = 1e-9

_NULL = ("σ_t (stat_std_60) NULL or zero (≤ 1e-12 or ≤ 1e-9 · stat_absmean_60); a gap of more than max_gap "
         "minutes between consecutive rows in t … t + t1; or fewer than h rows after t with no barrier touched")


def columns(p: Mapping[str, Any]) -> list[Column]:
    k, gap = p["width"], p["max_gap"]
    cols = []
    for h in p["horizons"]:
        rule = f"barriers ±{k:g} · stat_std_60 · sqrt({h}) on ln(c_(t+j) / c_t), j = 1 … {h}, first touch (upper first, 1e-12 tolerance)"
        cols += [
            Column(f"lbl_tb_h{h}_side", "categorical", 60,
                   f"triple-barrier side over {h} bars: +1 upper touch, −1 lower touch, 0 vertical barrier; {rule}",
                   nullable_when=_NULL.replace("max_gap", f"{gap}")),
            Column(f"lbl_tb_h{h}_t1", "count", 60,
                   f"rows from t to the label's end (1 … {h}): the label's span, what a purge uses",
                   nullable_when=_NULL.replace("max_gap", f"{gap}")),
            Column(f"lbl_tb_h{h}_ret", "continuous", 60,
                   f"ln(c_(t+t1) / c_t): the log return at the label's end",
                   nullable_when=_NULL.replace("max_gap", f"{gap}")),
            Column(f"lbl_tb_h{h}_w", "continuous", 59 + h,
                   f"average uniqueness of the {h}-bar label: mean over u in (t, t + t1] of 1 / n_u, n_u the labels whose "
                   f"interval contains u; in (0, 1]; NULL also when a label starting in u − {h} … u − 1 is NULL",
                   nullable_when="the label is NULL, or a label that could overlap its interval is NULL"),
        ]
    return cols


def _lookahead(p: Mapping[str, Any]) -> int:
    return 2 * max(p["horizons"]) - 1


def _context(p: Mapping[str, Any]) -> int:
    return max(p["horizons"]) - 1


@nb.njit(cache=True)
def first_touch(close, seconds, sigma, absmean, h, width, max_gap):  # pragma: no cover - numba
    """Per row: side, j* (0 where the label is NULL) and z at j*."""
    n = close.shape[0]
    side = np.full(n, np.nan)
    t1 = np.zeros(n, np.int64)
    ret = np.full(n, np.nan)
    gaps = np.zeros(n + 1, np.int64)  # gaps[i]: gap rows among 1 … i-1
    for u in range(1, n):
        gaps[u + 1] = gaps[u] + (1 if seconds[u] - seconds[u - 1] > max_gap * 60 else 0)
    root_h = np.sqrt(h)
    for t in range(n):
        s = sigma[t]
        if np.isnan(s) or s <= SIGMA_TINY or s <= SIGMA_REL * absmean[t]:
            continue
        up = width * s * root_h
        end = 0
        hit = 0
        z_end = np.nan
        for j in range(1, h + 1):
            if t + j >= n:
                break
            z = np.log(close[t + j] / close[t])
            if z >= up - TOUCH_TOL:
                end, hit, z_end = j, 1, z
                break
            if z <= -up + TOUCH_TOL:
                end, hit, z_end = j, -1, z
                break
            if j == h:
                end, hit, z_end = h, 0, z
        if end == 0:
            continue  # the data ends before t + h with no touch
        if gaps[t + end + 1] - gaps[t + 1] > 0:
            continue  # a gap among rows t+1 … t+j*
        side[t] = hit
        t1[t] = end
        ret[t] = z_end
    return side, t1, ret


@nb.njit(cache=True)
def uniqueness(t1, h):  # pragma: no cover - numba
    """Average uniqueness per row from the spans (0 = NULL label); NaN where a label overlapping could be NULL."""
    n = t1.shape[0]
    diff = np.zeros(n + 1, np.int64)
    for s in range(n):
        if t1[s] > 0:
            diff[s + 1] += 1
            diff[s + t1[s] + 1] -= 1
    count = np.zeros(n, np.int64)
    acc = 0
    for u in range(n):
        acc += diff[u]
        count[u] = acc
    nulls = np.zeros(n + 1, np.int64)  # NULL labels among rows 0 … i-1
    for s in range(n):
        nulls[s + 1] = nulls[s] + (1 if t1[s] == 0 else 0)
    w = np.full(n, np.nan)
    for t in range(n):
        j = t1[t]
        if j == 0:
            continue
        lo = t + 1 - h
        hi = t + j - 1  # labels s in lo … hi may contain some u in (t, t + j]
        if lo < 0 or nulls[hi + 1] - nulls[lo] > 0:
            continue
        total = 0.0
        for u in range(t + 1, t + j + 1):
            total += 1.0 / count[u]
        w[t] = total / j
    return w


@family(name="labels", stage="targets", inputs=("bars", "statistics"), columns=columns, params=DEFAULTS,
        context=_context, lookahead=_lookahead)
def labels(frame: pl.DataFrame, ctx: Ctx) -> pl.DataFrame:
    """Triple-barrier side, span t1, return at the end and uniqueness weight for each horizon."""
    p = ctx.params
    for name in (SIGMA, ABSMEAN):
        if name not in frame.columns:
            raise ValueError(f"labels read {name} from the statistics family; keep 60 in its std_windows and window")
    close = frame["close"].to_numpy().astype(np.float64)
    seconds = frame["ts"].dt.epoch("s").to_numpy().astype(np.int64)
    sigma = frame[SIGMA].to_numpy().astype(np.float64)
    absmean = frame[ABSMEAN].to_numpy().astype(np.float64)
    out = []
    for h in p["horizons"]:
        side, t1, ret = first_touch(close, seconds, sigma, absmean, int(h), float(p["width"]), int(p["max_gap"]))
        w = uniqueness(t1, int(h))
        out += [series(f"lbl_tb_h{h}_side", side), series(f"lbl_tb_h{h}_t1", np.where(t1 > 0, t1, np.nan)),
                series(f"lbl_tb_h{h}_ret", ret), series(f"lbl_tb_h{h}_w", w)]
    return pl.DataFrame(out)
