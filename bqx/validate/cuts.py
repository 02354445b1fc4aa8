"""Cut points of the sweep and the bars perturbed at them.

A cut at timestamp T perturbs the bar at T (every pair that has one): its values altered (60 %),
the bar removed (20 %) or a bar inserted 30 s before it (20 %). It may change the rows from T to
its end E, the `reach`-th row after T (the latest over pairs); the next cut comes a random
2..MAX_GAP union bars after E, so the rows just before each cut lie beyond the reach of every
earlier cut.

Values of a perturbed bar: mid OHLC moved 2-8 % against the bar's own move (open and close
independently, high/low just outside them), bid/ask rebuilt around the new mid with the spread
scaled by 1/4..0.6 or 1.7..4, volume scaled the same way (at least one tick different), other input
columns scaled by exp(+-0.05..0.3). Bars stay valid: low <= open, close <= high, bid <= ask; NULL
stays NULL; timestamps of kept bars do not move.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Mapping, Sequence

import numpy as np
import polars as pl

from bqx.bar_schema import ASK_COLUMNS, BID_COLUMNS

MAX_GAP = 128  # checked bars before a cut: 2..MAX_GAP, uniform (a lookahead L leak needs a gap > L)
KINDS = ("values", "removed", "inserted")
KIND_P = (0.6, 0.2, 0.2)
MID = ("open", "high", "low", "close")
INSERT_OFFSET = timedelta(seconds=30)


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


def epoch_us(frame: pl.DataFrame) -> np.ndarray:
    return frame["ts"].dt.epoch("us").to_numpy()


def ends_after(per_pair: Sequence[np.ndarray], at: np.ndarray, rows: int) -> np.ndarray:
    """Per timestamp in `at`: the latest, over the pairs with a bar there, of the `rows`-th bar after it."""
    end = at.copy()
    for ts in per_pair:
        j = np.searchsorted(ts, at, side="left")
        has = (j < ts.size) & (ts[np.minimum(j, ts.size - 1)] == at)
        end[has] = np.maximum(end[has], ts[np.minimum(j[has] + rows, ts.size - 1)])
    return end


def plan_cuts(frames: Mapping[str, pl.DataFrame], reach: int, rng: np.random.Generator,
              start_row: int | None = None) -> Cuts:
    """Cuts over the union of the pairs' bars: the first after `start_row` union rows (default `reach` + a random
    gap), each next one a random 2..MAX_GAP bars after the rows the previous one may change (`reach` rows)."""
    per_pair = [epoch_us(f) for f in frames.values() if f.height]
    if not per_pair:
        return Cuts(*(np.empty(0, np.int64) for _ in range(4)))
    union = np.unique(np.concatenate(per_pair))
    at, end = [], []
    i = (reach if start_row is None else start_row) + int(rng.integers(2, MAX_GAP + 1))
    while i < union.size:
        t = union[i : i + 1]
        e = int(ends_after(per_pair, t, reach)[0])
        at.append(int(t[0]))
        end.append(e)
        i = int(np.searchsorted(union, e, side="right")) + int(rng.integers(2, MAX_GAP + 1))
    at_a, end_a = np.asarray(at, np.int64), np.asarray(end, np.int64)
    kind = rng.choice(len(KINDS), size=at_a.size, p=KIND_P)
    start = np.where(kind == KINDS.index("inserted"), at_a - int(INSERT_OFFSET.total_seconds() * 1e6), at_a)
    return Cuts(at_a, start, end_a, kind)


def _spread_scale(rng: np.random.Generator, n: int) -> np.ndarray:
    """Per row a factor in 1/4..0.6 or 1.7..4: always far from 1."""
    return np.where(rng.random(n) < 0.5, rng.uniform(0.25, 0.6, n), rng.uniform(1.7, 4.0, n))


def _perturb_values(part: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """New values for the rows of `part` (see the module docstring); ts kept."""
    n = part.height
    if n == 0:
        return part
    schema = part.schema
    cols = {c: part[c].to_numpy().astype(np.float64) for c, t in schema.items() if c != "ts" and t.is_numeric()}
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
        if all(k in cols for k in BID_COLUMNS + ASK_COLUMNS):
            spread = np.mean([cols[a] - cols[b] for a, b in zip(ASK_COLUMNS, BID_COLUMNS)], axis=0)
            for side, names in ((-1.0, BID_COLUMNS), (1.0, ASK_COLUMNS)):
                scale = _spread_scale(rng, n)
                for name, m in zip(names, MID):
                    out[name] = np.where(np.isnan(cols[name]), np.nan, new[m] + side * spread * scale / 2.0)
    if "volume" in cols:
        v = cols["volume"]
        v2 = np.round(v * _spread_scale(rng, n))
        v2 = np.where(v2 == v, v + 1.0, v2)
        out["volume"] = np.where(v == 0, 0.0, v2)  # a source without volume keeps none
    for name, x in cols.items():
        if name not in out:
            out[name] = x * np.exp(rng.choice([-1.0, 1.0], size=n) * rng.uniform(0.05, 0.3, n))
    return part.with_columns([pl.Series(k, v, dtype=schema[k]) if schema[k].is_float()
                              else pl.Series(k, v).cast(schema[k]) for k, v in out.items()])


def perturb(frame: pl.DataFrame, cuts: Cuts, rng: np.random.Generator) -> pl.DataFrame:
    """The frame with every cut applied at the bars it has at the cut timestamps."""
    ts = epoch_us(frame)
    j = np.searchsorted(ts, cuts.at, side="left")
    hit = (j < ts.size) & (ts[np.minimum(j, ts.size - 1)] == cuts.at)
    idx, kinds = j[hit], cuts.kind[hit]
    if idx.size == 0:
        return frame
    changed = _perturb_values(frame[idx[kinds == 0]], rng)
    inserted = _perturb_values(frame[idx[kinds == 2]], rng).with_columns(pl.col("ts") - INSERT_OFFSET)
    pieces, prev, n_changed, n_inserted = [], 0, 0, 0
    for i, kind in zip(idx.tolist(), kinds.tolist()):  # one step per cut, not per row: slices cost nothing
        pieces.append(frame.slice(prev, i - prev))
        if kind == 0:  # the bar's values altered
            pieces.append(changed.slice(n_changed, 1))
            n_changed += 1
        elif kind == 2:  # a bar inserted before it, the bar kept
            pieces.append(inserted.slice(n_inserted, 1))
            n_inserted += 1
        prev = i if kind == 2 else i + 1  # a removed bar is skipped
    pieces.append(frame.slice(prev))
    return pl.concat(pieces, how="vertical_relaxed", rechunk=True)
