"""The sweep check: many cut points per recompute, each checking the rows just before a perturbed bar.

One recompute perturbs the bars at cut timestamps T_1 < T_2 < ... (bqx.validate.cuts: values
altered, bar removed or a bar inserted). A row t before T_k that lies beyond the rows every earlier
cut may change must equal the unperturbed recompute; a row that reads the bar at T_k (a lookahead)
changes. So the rows just before each cut are checked, up to MAX_GAP of them, in one recompute.

How far apart the cuts are is the *reach*: the first recompute of a partition spaces them beyond
the family's declared context C, where nothing may change (a change there is a leak or a context
error). It also measures how far the changes of each cut actually reached (the last row that
differs, over pairs and columns); the next recomputes space the cuts by REACH_MARGIN x the largest
reach measured so far + REACH_PAD rows (never more than C), so a family that declares a long
context but whose perturbations fade sooner gets many more cuts per recompute. A row beyond the
reach that changes anyway is *flagged*; the CONFIRM largest flags of a recompute are confirmed by
truncation: the perturbed frame cut at t, recomputed, must give the same value at t. If it does
not, the value at t read a later bar: a leak (the failure names the column, pair and t). If it
does, the change came from an earlier cut: beyond C, a context error (or, below SIGNIFICANT x the
tolerance, rounding of sums re-anchored later); within C, a long but legitimate influence.

A cut counts as checked unless the row just before it (in some pair) was flagged and not
confirmed: a cut's row either did not change although the bar after it did (it does not read
that bar), or its change was confirmed by truncation. The detection probability of a leak on a
fraction p of the rows is then 1 - (1 - p)^cuts (docs/VALIDATION.md).

Each partition gets recomputes until it has `target` cuts or had `max_sweeps` recomputes, and in any
case until it has `least` (the family's share of its target, so that every family gets `target`
cuts over its partitions), at most MAX_RECOMPUTES.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator, Mapping

import numpy as np
import polars as pl

from bqx.validate.cuts import Cuts, ends_after, epoch_us, perturb, plan_cuts
from bqx.core.declaration import Column
from bqx.numerics import mismatches, tolerance
from bqx.validate.recompute import Window, compute, value
from bqx.validate.report import CheckResult, Failure

TARGET_CUTS = 500  # cuts per checked family at least: 1 - 0.99**500 = 99.3 % for a leak on 1 % of the rows
MAX_SWEEPS = 8  # recomputes per partition that a partition spends to reach TARGET_CUTS on its own
MAX_RECOMPUTES = 250  # recomputes per partition at most, whatever its share
CONFIRM = 3  # flagged rows confirmed by truncation per recompute
REACH_MARGIN, REACH_PAD = 1.25, 16  # reach of the next cuts: margin x the largest measured + pad rows
SWEEP_CELLS = 400_000  # rows x pairs recomputed at once at most: a cross-pair family's sweep runs on segments
SIGNIFICANT = 1e3  # a change beyond the context smaller than this x the tolerance is rounding, not a context error


@dataclass
class _Base:
    """One pair's unperturbed recompute: its timestamps, its columns as float64 and their median |value|."""

    ts: np.ndarray
    values: np.ndarray  # rows x columns
    median: np.ndarray  # per column: the median |value| over its finite values (the median part of the tolerance)

    @classmethod
    def of(cls, frame: pl.DataFrame, names: list[str]) -> "_Base":
        m = frame.select(names).to_numpy().astype(np.float64, copy=False)
        med = [np.median(np.abs(c[np.isfinite(c)])) if np.isfinite(c).any() else 0.0 for c in m.T]
        return cls(epoch_us(frame), m, np.asarray(med, dtype=np.float64))

    def mismatches(self, column: Column, j: int, e: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """bqx.numerics.mismatches of values `e` -> `a` of column j, and their tolerance, with the median part of
        the tolerance that of the whole column: e.size + 1 copies of its median appended on both sides make it
        the median of the reference."""
        pad = np.full(e.size + 1, self.median[j])
        ref = np.concatenate([e, pad])
        return mismatches(column, ref, np.concatenate([a, pad]))[: e.size], tolerance(column, ref)[: e.size]


@dataclass
class _Compared:
    """A perturbed recompute of one pair against its base, per base row (NaN-free scores)."""

    score: np.ndarray  # how far beyond the tolerance the largest difference is: 0 equal, inf NULL-ness changed
    kept: np.ndarray  # the row is beyond every cut's reach (and present in both)
    reach: int  # rows from a cut to the furthest changed row after it


def _compare(win: Window, base: _Base, got: pl.DataFrame, cuts: Cuts) -> _Compared:
    """Scores of the rows of `base` that `got` also has; ValueError when a row beyond every cut's reach
    vanished or appeared."""
    gt = epoch_us(got)
    j = np.minimum(np.searchsorted(gt, base.ts), max(gt.size - 1, 0))
    present = (gt.size > 0) & (gt[j] == base.ts)
    outside = ~cuts.influenced(base.ts)
    jb = np.minimum(np.searchsorted(base.ts, gt), max(base.ts.size - 1, 0))
    new = ~((base.ts.size > 0) & (base.ts[jb] == gt))
    if (outside & ~present).any() or (new & ~cuts.influenced(gt)).any():
        raise ValueError("rows outside every cut's reach appeared or vanished")
    score = np.zeros(base.ts.size, dtype=np.float64)
    g = got.select([c.name for c in win.columns]).to_numpy().astype(np.float64, copy=False)
    rows = np.flatnonzero(present)
    e, a = base.values[rows], g[j[rows]]
    same = (e == a) | (np.isnan(e) & np.isnan(a))
    for col_i in np.flatnonzero(~same.all(axis=0)):
        r = np.flatnonzero(~same[:, col_i])
        ec, ac = e[r, col_i], a[r, col_i]
        bad, tol = base.mismatches(win.columns[col_i], col_i, ec, ac)
        if not bad.any():
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(np.isnan(ec) != np.isnan(ac), np.inf, np.abs(np.nan_to_num(ac - ec)) / tol)
        hit = rows[r[bad]]
        score[hit] = np.maximum(score[hit], np.nan_to_num(ratio[bad], nan=np.inf))
    changed = np.flatnonzero(score > 0)
    k = np.searchsorted(cuts.start, base.ts[changed], side="right") - 1
    first = np.searchsorted(base.ts, cuts.start)  # each cut's first base row
    reach = int((changed[k >= 0] - first[k[k >= 0]]).max(initial=0))
    return _Compared(score, outside & present, reach)


def segments(frames: Mapping[str, pl.DataFrame], ctx: int,
             cells: int = SWEEP_CELLS) -> Iterator[tuple[dict[str, pl.DataFrame], float]]:
    """The window cut into segments of at most `cells` rows x pairs (at least 2 x ctx rows), each with the
    ctx union rows before its own rows (slices, no copy), and the share of the window's checked rows in it."""
    per_pair = {p: epoch_us(f) for p, f in frames.items()}
    union = np.unique(np.concatenate(list(per_pair.values())))
    rows = max(2 * ctx, cells // max(1, len(frames)))
    checked = union.size - ctx
    if union.size <= rows or checked <= 0:
        yield dict(frames), 1.0
        return
    bounds = np.linspace(ctx, union.size, math.ceil(checked / (rows - ctx)) + 1).round().astype(int)
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        t0, t1 = union[lo - ctx], union[hi - 1]
        part = {}
        for p, f in frames.items():
            i0, i1 = int(np.searchsorted(per_pair[p], t0, "left")), int(np.searchsorted(per_pair[p], t1, "right"))
            if i1 > i0:
                part[p] = f.slice(i0, i1 - i0)
        yield part, (hi - lo) / checked


def check_sweep(view, win: Window, result: CheckResult, context_result: CheckResult, rng: np.random.Generator,
                target: int = TARGET_CUTS, max_sweeps: int = MAX_SWEEPS, least: int = 0) -> int:
    """Recomputes with perturbed cuts (see the module docstring) on each segment of the window; leaks go to
    `result`, changes from further back than the declared context to `context_result`; `result.samples`
    counts the checked cuts. Returns the reach of the last cuts (the declared context if none were made)."""
    sweeper = _Sweeper(view, win, result, context_result, rng)
    frames = {p: f for p, f in win.frames.items() if f.height}
    if not frames:
        return sweeper.ctx
    for part, share in segments(frames, sweeper.ctx):
        if not sweeper.segment(part, math.ceil(target * share), math.ceil(least * share), max_sweeps):
            break
    return sweeper.used


class _Sweeper:
    """The recomputes of one partition; the reach measured so far carries over from segment to segment."""

    def __init__(self, view, win: Window, result: CheckResult, context_result: CheckResult, rng: np.random.Generator):
        self.view, self.win, self.result, self.context_result, self.rng = view, win, result, context_result, rng
        self.ctx = win.fam.context(view.fam_params(win.fam))
        self.names = [c.name for c in win.columns]
        self.reach = self.used = self.ctx
        self.measured = 0

    def segment(self, frames: dict[str, pl.DataFrame], target: int, least: int, max_sweeps: int) -> bool:
        """Sweep one segment; False when a recompute raised (reported)."""
        view, win, result, ctx = self.view, self.win, self.result, self.ctx
        try:
            base = {p: _Base.of(f, self.names) for p, f in compute(view, win.fam, frames).items()}
        except Exception as exc:  # noqa: BLE001
            result.error(f"unperturbed recompute raised {type(exc).__name__}: {exc}", win.pair)
            return False
        per_pair = [epoch_us(f) for f in frames.values()]
        done = 0
        for sweep in range(MAX_RECOMPUTES):
            if done >= least and (done >= target or sweep >= max_sweeps):
                break
            cuts = plan_cuts(frames, self.reach, self.rng, start_row=ctx)
            if len(cuts) == 0:
                break
            declared = cuts.end if self.reach >= ctx else ends_after(per_pair, cuts.at, ctx)
            altered = {p: perturb(f, cuts, self.rng) for p, f in frames.items()}
            try:
                out = compute(view, win.fam, altered)
            except Exception as exc:  # noqa: BLE001
                result.error(f"recompute with {len(cuts)} perturbed cuts raised {type(exc).__name__}: {exc}", win.pair)
                return False
            flagged: list[tuple[float, str, int]] = []  # score, pair, base row
            before: dict[str, np.ndarray] = {}  # per pair: the base row just before each cut
            for pair, b in base.items():
                got = out.get(pair)
                if got is None:
                    result.fail(Failure(None, pair, None, None, None, "the pair's rows vanished"))
                    continue
                try:
                    cmp = _compare(win, b, got, cuts)
                except ValueError as exc:
                    result.fail(Failure(None, pair, None, None, None, f"sweep {sweep + 1}: {exc}"))
                    continue
                result.compared += int(cmp.kept.sum()) * len(self.names)
                self.measured = max(self.measured, cmp.reach)
                where = np.flatnonzero(cmp.kept & (cmp.score > 0))
                flagged += [(float(cmp.score[i]), pair, int(i)) for i in where]
                before[pair] = np.searchsorted(b.ts, cuts.start, side="left") - 1
            # the largest differences first: a leak stands out of rounding noise and long influences
            flagged.sort(key=lambda x: -x[0])
            cleared: set[tuple[str, int]] = set()
            for sc, pair, i in flagged[:CONFIRM]:
                if not _confirm(view, win, altered, base[pair], out[pair], pair, i, cuts, declared, ctx, sc, result,
                                self.context_result):
                    cleared.add((pair, i))
            open_rows = {(p, i) for _, p, i in flagged} - cleared
            unchecked = np.zeros(len(cuts), dtype=bool)
            for pair, rows in before.items():
                unchecked |= np.fromiter(((pair, int(i)) in open_rows for i in rows), bool, len(cuts))
            checked = len(cuts) - int(unchecked.sum())
            done += checked
            result.samples += checked
            self.used = self.reach
            self.reach = min(ctx, max(1, math.ceil(REACH_MARGIN * self.measured) + REACH_PAD))
        return True


def _confirm(view, win: Window, altered: Mapping[str, pl.DataFrame], base: _Base, got: pl.DataFrame,
             pair: str, i: int, cuts: Cuts, declared: np.ndarray, ctx: int, score: float, result: CheckResult,
             context_result: CheckResult) -> bool:
    """Base row i of `pair` changed: True (a leak, recorded) if the perturbed frame cut at its t gives another
    value at t. Else False, and, when t lies beyond the declared context of every earlier cut and the
    change is more than rounding (SIGNIFICANT x the tolerance), a context error is recorded."""
    t_us = int(base.ts[i])
    t = datetime.fromtimestamp(t_us / 1e6, tz=timezone.utc)
    upto = {p: f.filter(pl.col("ts") <= t) for p, f in altered.items()}
    upto = {p: f for p, f in upto.items() if f.height}
    row_full = got.filter(pl.col("ts") == t)
    row_base = pl.DataFrame({c.name: base.values[i: i + 1, j] for j, c in enumerate(win.columns)})
    try:
        trunc = compute(view, win.fam, upto)[pair].filter(pl.col("ts") == t)
    except Exception as exc:  # noqa: BLE001
        result.error(f"recompute of the perturbed frame cut at {t} raised {type(exc).__name__}: {exc}", pair, str(t))
        return True
    after = cuts.at[cuts.at > t_us]
    leak = _first_diff(win, row_full, trunc, base)
    if leak is not None:
        col = leak[0]
        nxt = _us(after[0]) if after.size else "the end"
        result.fail(Failure(col, pair, str(t), value(_at(row_base, col)), value(_at(row_full, col)),
                            f"changed when later bars were perturbed (next cut at {nxt}); the recompute cut at t "
                            f"gives {value(_at(trunc, col))}: the value at t reads a later bar"))
        return True
    k = int(np.searchsorted(cuts.start, t_us, side="right")) - 1
    if k >= 0 and t_us <= declared[k]:
        return False  # within the declared context of an earlier cut: a legitimate influence
    if score < SIGNIFICANT:
        context_result.note = "rounding-level changes beyond the declared context (sums re-anchored later)"
        return False
    diff = _first_diff(win, row_base, row_full, base)
    col = diff[0] if diff else None
    prev = _us(cuts.at[k]) if k >= 0 else "?"
    context_result.fail(Failure(col, pair, str(t), value(_at(row_base, col)) if col else None,
                                value(_at(row_full, col)) if col else None,
                                f"changed by a bar perturbed at {prev}, more than the declared context {ctx} "
                                "rows earlier: the context is too short"))
    return False


def _first_diff(win: Window, want: pl.DataFrame, got: pl.DataFrame,
                ref: _Base) -> tuple[str, float | None, float | None] | None:
    """The first column whose one-row values differ (the median part of the tolerance from `ref`'s column)."""
    for j, col in enumerate(win.columns):
        e = want[col.name].cast(pl.Float64).fill_null(np.nan).to_numpy()
        a = got[col.name].cast(pl.Float64).fill_null(np.nan).to_numpy()
        if ref.mismatches(col, j, e, a)[0].any():
            return col.name, value(float(e[0])), value(float(a[0]))
    return None


def _at(row: pl.DataFrame, col: str) -> float:
    if row.height == 0:
        return float("nan")
    v = row[col][0]
    return float("nan") if v is None else float(v)


def _us(x: int) -> str:
    return str(datetime.fromtimestamp(int(x) / 1e6, tz=timezone.utc))


def detection_probability(p: float, cuts: int) -> float:
    """P(at least one of `cuts` cut points lands on a leaking row) when a fraction p of rows leak."""
    return 1.0 - math.exp(cuts * math.log1p(-p)) if 0 < p < 1 else float(p >= 1)
