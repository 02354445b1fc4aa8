"""The sweep check: many cut points per recompute, by perturbing bars spaced more than the context apart.

For a family with declared context C, one recompute perturbs the bars at cut timestamps T_1 < T_2 <
... (every pair that has a bar there, for a month task), each cut either altering the bar's values,
removing it or inserting a bar just before it. A perturbed bar at T_k may legitimately change the
rows from T_k to E_k, the C-th row after it (the latest over pairs); every other row must equal
the unperturbed recompute. The next cut is placed a random 2..MAX_GAP bars after E_k, so each cut
checks the bars just before it (up to MAX_GAP of them) in the same recompute.

A changed row t is then confirmed by truncation: the perturbed frame cut at t, recomputed, must
give the same value at t. If it does not, the value at t read a later bar: a leak (the failure
names the column, pair and t). If it does, the change came from a perturbed bar more than C rows
back: the declared context is too short (a context error, reported with the boundary check).

Values of a perturbed bar: mid OHLC moved 2-8 % against the bar's own move (open and close
independently, high/low just outside them), bid/ask rebuilt around the new mid with the spread
scaled by 1/4..4, volume scaled by 1/4..4 (at least one tick different), other input columns
scaled by exp(+-0.05..0.3). Bars stay valid: low <= open, close <= high, bid <= ask; NULL stays NULL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Mapping

import numpy as np
import polars as pl

from bqx.bar_schema import ASK_COLUMNS, BID_COLUMNS
from bqx.validate.recompute import Window, compute, differ, value
from bqx.validate.report import CheckResult, Failure
from bqx.numerics import tolerance

TARGET_CUTS = 500  # cuts per checked partition: 1 - 0.99**500 = 99.3 % for a leak on 1 % of the rows
MAX_SWEEPS = 8  # recomputes per partition at most (families with a long context get fewer cuts)
MAX_GAP = 128  # checked bars before a cut: 2..MAX_GAP, uniform (a lookahead L leak needs a gap > L)
CONFIRM = 3  # changed rows confirmed by truncation per recompute
KINDS = ("values", "removed", "inserted")
KIND_P = (0.6, 0.2, 0.2)
MID = ("open", "high", "low", "close")
INSERT_OFFSET = timedelta(seconds=30)
SIGNIFICANT = 1e3  # a change beyond the context smaller than this x the tolerance is rounding, not a context error


@dataclass
class Cuts:
    """Cut timestamps, the kind of each and the end of the rows each may change (microseconds since the epoch)."""

    at: np.ndarray  # int64 ts of the perturbed bar
    start: np.ndarray  # first ts it may change (an inserted bar comes 30 s earlier)
    end: np.ndarray  # last ts it may change
    kind: np.ndarray  # index into KINDS

    def __len__(self) -> int:
        return int(self.at.size)

    def influenced(self, ts: np.ndarray) -> np.ndarray:
        """True where a row at `ts` lies within the rows some cut may change."""
        k = np.searchsorted(self.start, ts, side="right") - 1
        ok = k >= 0
        out = np.zeros(ts.size, dtype=bool)
        out[ok] = ts[ok] <= self.end[k[ok]]
        return out


def _ts(frame: pl.DataFrame) -> np.ndarray:
    return frame["ts"].dt.epoch("us").to_numpy()


def plan_cuts(frames: Mapping[str, pl.DataFrame], context: int, rng: np.random.Generator,
              start_row: int | None = None) -> Cuts:
    """Cuts over the union of the pairs' bars: the first after `start_row` union rows (default C + a random
    gap), each next one a random 2..MAX_GAP bars after the rows the previous one may change."""
    per_pair = [_ts(f) for f in frames.values() if f.height]
    if not per_pair:
        return Cuts(*(np.empty(0, np.int64) for _ in range(4)))
    union = np.unique(np.concatenate(per_pair))
    at, end = [], []
    i = (context if start_row is None else start_row) + int(rng.integers(2, MAX_GAP + 1))
    while i < union.size:
        t = union[i]
        e = t
        for ts in per_pair:
            j = int(np.searchsorted(ts, t, side="left"))
            if j < ts.size and ts[j] == t:
                e = max(e, ts[min(j + context, ts.size - 1)])
        at.append(t)
        end.append(e)
        i = int(np.searchsorted(union, e, side="right")) + int(rng.integers(2, MAX_GAP + 1))
    at_a, end_a = np.asarray(at, np.int64), np.asarray(end, np.int64)
    kind = rng.choice(len(KINDS), size=at_a.size, p=KIND_P)
    start = np.where(kind == KINDS.index("inserted"), at_a - int(INSERT_OFFSET.total_seconds() * 1e6), at_a)
    return Cuts(at_a, start, end_a, kind)


def _perturb_values(part: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """New values for the rows of `part` (see the module docstring); ts kept."""
    n = part.height
    if n == 0:
        return part
    cols = {c: part[c].to_numpy().astype(np.float64) for c in part.columns if c != "ts" and part[c].dtype.is_numeric()}
    out: dict[str, np.ndarray] = {}
    if all(c in cols for c in MID):
        o, h, lo, c = (cols[k] for k in MID)
        move = np.sign(c - o)
        move[move == 0] = rng.choice([-1.0, 1.0], size=int((move == 0).sum()))
        o2 = o * (1.0 - move * rng.uniform(0.02, 0.08, n))
        c2 = c * (1.0 - move * rng.uniform(0.02, 0.08, n))
        h2 = np.maximum(o2, c2) * (1.0 + rng.uniform(5e-4, 1e-2, n))
        l2 = np.minimum(o2, c2) * (1.0 - rng.uniform(5e-4, 1e-2, n))
        new = dict(zip(MID, (o2, h2, l2, c2)))
        out.update(new)
        for side, names in ((-1.0, BID_COLUMNS), (1.0, ASK_COLUMNS)):
            if not all(k in cols for k in BID_COLUMNS + ASK_COLUMNS):
                break
            spread = np.mean([cols[a] - cols[b] for a, b in zip(ASK_COLUMNS, BID_COLUMNS)], axis=0)
            scale = np.where(rng.random(n) < 0.5, rng.uniform(0.25, 0.6, n), rng.uniform(1.7, 4.0, n))
            for name, m in zip(names, MID):
                out[name] = np.where(np.isnan(cols[name]), np.nan, new[m] + side * spread * scale / 2.0)
    if "volume" in cols:
        v = cols["volume"]
        f = np.where(rng.random(n) < 0.5, rng.uniform(0.25, 0.6, n), rng.uniform(1.7, 4.0, n))
        v2 = np.round(v * f)
        v2 = np.where(v2 == v, v + 1.0, v2)
        out["volume"] = np.where(v == 0, 0.0, v2)  # a source without volume keeps none
    for name, x in cols.items():
        if name not in out:
            out[name] = x * np.exp(rng.choice([-1.0, 1.0], size=n) * rng.uniform(0.05, 0.3, n))
    return part.with_columns([pl.Series(k, v, dtype=part.schema[k]) if part.schema[k].is_float()
                              else pl.Series(k, v).cast(part.schema[k]) for k, v in out.items()])


def perturb(frame: pl.DataFrame, cuts: Cuts, rng: np.random.Generator) -> pl.DataFrame:
    """The frame with every cut applied at the bars it has at the cut timestamps."""
    ts = _ts(frame)
    j = np.searchsorted(ts, cuts.at, side="left")
    hit = (j < ts.size) & (ts[np.minimum(j, ts.size - 1)] == cuts.at)
    idx, kinds = j[hit], cuts.kind[hit]
    if idx.size == 0:
        return frame
    frame = frame.with_row_index("_r")
    changed = _perturb_values(frame[idx[kinds == 0]].drop("_r"), rng)
    inserted = _perturb_values(frame[idx[kinds == 2]].drop("_r"), rng).with_columns(pl.col("ts") - INSERT_OFFSET)
    keep = np.ones(frame.height, dtype=bool)
    keep[idx[kinds != 2]] = False  # altered rows are replaced, removed rows dropped
    rest = frame.filter(pl.Series(keep)).drop("_r")
    return pl.concat([rest, changed.select(rest.columns), inserted.select(rest.columns)],
                     how="vertical_relaxed").sort("ts")


def _changed(win: Window, base: pl.DataFrame, got: pl.DataFrame, cuts: Cuts) -> tuple[pl.DataFrame, np.ndarray]:
    """The rows no cut may change (of `base`) and per row how far the largest difference is beyond the
    column's tolerance (0 where equal, inf where NULL-ness or a discrete value changed)."""
    keep_b = ~cuts.influenced(_ts(base))
    keep_g = ~cuts.influenced(_ts(got))
    b, g = base.filter(pl.Series(keep_b)), got.filter(pl.Series(keep_g))
    if b.height != g.height or not b["ts"].equals(g["ts"]):
        raise ValueError("rows outside every cut's context appeared or vanished")
    score = np.zeros(b.height, dtype=np.float64)
    names = [c.name for c in win.columns]
    e_all = b.select(names).to_numpy().astype(np.float64, copy=False)
    a_all = g.select(names).to_numpy().astype(np.float64, copy=False)
    if np.array_equal(e_all, a_all, equal_nan=True):
        return b, score
    ref = base.select(names).to_numpy().astype(np.float64, copy=False)
    for j, col in enumerate(win.columns):
        e, a = e_all[:, j], a_all[:, j]
        if np.array_equal(e, a, equal_nan=True):
            continue
        bad = differ(col, e, a, ref[:, j])
        if not bad.any():
            continue
        r = ref[:, j]
        tol = tolerance(col, np.concatenate([e, r[np.isfinite(r)]]))[: e.size]
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(np.isnan(e) != np.isnan(a), np.inf, np.abs(np.nan_to_num(a - e)) / tol)
        score = np.maximum(score, np.where(bad, np.nan_to_num(ratio, nan=np.inf), 0.0))
    return b, score


def _first_diff(win: Window, want: pl.DataFrame, got: pl.DataFrame,
                ref: pl.DataFrame) -> tuple[str, float | None, float | None] | None:
    """The first column whose one-row values differ (the median part of the tolerance from `ref`'s column)."""
    for col in win.columns:
        e = want[col.name].cast(pl.Float64).fill_null(np.nan).to_numpy()
        a = got[col.name].cast(pl.Float64).fill_null(np.nan).to_numpy()
        r = ref[col.name].cast(pl.Float64).fill_null(np.nan).to_numpy()
        if differ(col, e, a, r).any():
            return col.name, value(float(e[0])), value(float(a[0]))
    return None


def check_sweep(view, win: Window, result: CheckResult, context_result: CheckResult,
                rng: np.random.Generator, target: int = TARGET_CUTS, max_sweeps: int = MAX_SWEEPS) -> None:
    """Up to `max_sweeps` recomputes with perturbed cuts until `target` cuts are checked; leaks go to
    `result`, changes from further back than the declared context to `context_result`."""
    ctx = win.fam.context(view.fam_params(win.fam))
    frames = {p: f for p, f in win.frames.items() if f.height}
    if not frames:
        return
    try:
        base = compute(view, win.fam, frames)
    except Exception as exc:  # noqa: BLE001
        result.error(f"unperturbed recompute raised {type(exc).__name__}: {exc}", win.pair)
        return
    cuts_done = 0
    for sweep in range(max_sweeps):
        if cuts_done >= target:
            break
        cuts = plan_cuts(frames, ctx, rng)
        if len(cuts) == 0:
            break
        altered = {p: perturb(f, cuts, rng) for p, f in frames.items()}
        try:
            out = compute(view, win.fam, altered)
        except Exception as exc:  # noqa: BLE001
            result.error(f"recompute with {len(cuts)} perturbed cuts raised {type(exc).__name__}: {exc}", win.pair)
            return
        cuts_done += len(cuts)
        result.samples += len(cuts)
        flagged: list[tuple[float, str, datetime]] = []
        for pair, b in base.items():
            got = out.get(pair)
            if got is None:
                result.fail(Failure(None, pair, None, None, None, "the pair's rows vanished"))
                continue
            try:
                kept, score = _changed(win, b, got, cuts)
            except ValueError as exc:
                result.fail(Failure(None, pair, None, None, None, f"sweep {sweep + 1}: {exc}"))
                continue
            result.compared += int(kept.height) * len(win.columns)
            where = np.flatnonzero(score > 0)
            top = where[np.argsort(-score[where], kind="stable")[:CONFIRM]]
            flagged += [(float(score[i]), pair, kept["ts"][int(i)]) for i in top]
        # the largest differences first: a leak stands out of rounding noise left by perturbed bars
        for sc, pair, t in sorted(flagged, key=lambda x: -x[0])[:CONFIRM]:
            _confirm(view, win, altered, base[pair], out[pair], pair, t, cuts, ctx, sc, result, context_result)


def _confirm(view, win: Window, altered: Mapping[str, pl.DataFrame], base: pl.DataFrame, got: pl.DataFrame,
             pair: str, t: datetime, cuts: Cuts, ctx: int, score: float, result: CheckResult,
             context_result: CheckResult) -> None:
    """A changed row t: a leak if the perturbed frame cut at t gives another value at t; else, when the change
    is more than rounding (SIGNIFICANT x the tolerance), a context error."""
    upto = {p: f.filter(pl.col("ts") <= t) for p, f in altered.items()}
    upto = {p: f for p, f in upto.items() if f.height}
    row_full = got.filter(pl.col("ts") == t)
    row_base = base.filter(pl.col("ts") == t)
    try:
        trunc = compute(view, win.fam, upto)[pair].filter(pl.col("ts") == t)
    except Exception as exc:  # noqa: BLE001
        result.error(f"recompute of the perturbed frame cut at {t} raised {type(exc).__name__}: {exc}", pair, str(t))
        return
    t_us = int(round(t.timestamp() * 1_000_000))
    after = cuts.at[cuts.at > t_us]
    leak = _first_diff(win, row_full, trunc, got)
    if leak is not None:
        col = leak[0]
        nxt = _us(after[0]) if after.size else "the end"
        result.fail(Failure(col, pair, str(t), value(_at(row_base, col)), value(_at(row_full, col)),
                            f"changed when later bars were perturbed (next cut at {nxt}); the recompute cut at t "
                            f"gives {value(_at(trunc, col))}: the value at t reads a later bar"))
        return
    if score < SIGNIFICANT:
        context_result.note = "rounding-level changes beyond the declared context (sums re-anchored later)"
        return
    diff = _first_diff(win, row_base, row_full, base)
    col = diff[0] if diff else None
    before = cuts.at[cuts.at <= t_us]
    prev = _us(before[-1]) if before.size else "?"
    context_result.fail(Failure(col, pair, str(t), value(_at(row_base, col)) if col else None,
                                value(_at(row_full, col)) if col else None,
                                f"changed by a bar perturbed at {prev}, more than the declared context {ctx} "
                                "rows earlier: the context is too short"))


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
