"""The aligned union timeline shared by the cross-pair families (FEATURES.md currency_indices).

Rows are the union of all pairs' bar timestamps. At each, a pair's latest close is used if it is
at most 5 minutes old, else the pair is missing (NaN). Returns on this timeline are log changes of
the carried closes between consecutive union rows: 0 where a close was carried, NaN where the pair
is missing now or on the previous union row. Windows count union rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import polars as pl

from bqx.kernels.rolling import rolling_corr
from bqx.universe import CURRENCIES, PAIR_NAMES, TRIANGLES, pair, pairs_of, related

log = logging.getLogger("bqx.families.cross_pair")

MAX_CARRY_US = 5 * 60 * 1_000_000  # a carried close is used for at most 5 minutes
CARRY_MARGIN = 10  # extra context rows covering the 5-minute carry at a frame's first rows


@dataclass(frozen=True)
class Aligned:
    """A long frame (sorted by pair, ts) placed on the union timeline.

    `close` and `own` are (T, P): the carried close (NaN where missing) and whether the pair has a
    bar of its own at that row. `row_u`, `row_p` give each input row's union row and pair column.
    """

    ts: np.ndarray
    pairs: tuple[str, ...]
    close: np.ndarray
    own: np.ndarray
    row_u: np.ndarray
    row_p: np.ndarray
    bounds: np.ndarray

    @property
    def n(self) -> int:
        return self.ts.shape[0]

    def col(self, name: str) -> int | None:
        """Column of pair `name`, or None when it is absent from the run."""
        try:
            return self.pairs.index(name)
        except ValueError:
            return None

    def own_values(self, frame: pl.DataFrame, column: str) -> np.ndarray:
        """(T, P) values of a frame column at each pair's own bars, NaN elsewhere."""
        out = np.full((self.n, len(self.pairs)), np.nan)
        out[self.row_u, self.row_p] = frame[column].cast(pl.Float64).to_numpy()
        return out

    def returns(self) -> np.ndarray:
        """(T, P) log changes of the carried closes; 0 where carried, NaN where missing."""
        lc = np.log(self.close)
        r = np.full_like(lc, np.nan)
        r[1:] = lc[1:] - lc[:-1]
        return r

    def at_rows(self, matrix: np.ndarray) -> np.ndarray:
        """Values of a (T, P) matrix at the input rows (each pair's own bars)."""
        return matrix[self.row_u, self.row_p]

    def segments(self) -> Iterable[tuple[int, str, slice]]:
        """(column, pair, input-row slice) per pair."""
        for j, name in enumerate(self.pairs):
            yield j, name, slice(int(self.bounds[j]), int(self.bounds[j + 1]))


def align(frame: pl.DataFrame) -> Aligned:
    """Place a long bar frame sorted by (pair, ts) on the union timeline."""
    runs = frame["pair"].rle()
    lengths = runs.struct.field("len").to_numpy().astype(np.int64)
    names = tuple(pair(str(v)).name for v in runs.struct.field("value").to_list())
    if len(set(names)) != len(names):
        raise ValueError("cross-pair frame must be sorted by (pair, ts): a pair occurs in several runs")
    ts = frame["ts"].dt.epoch("us").to_numpy()
    union = np.unique(ts)
    row_u = np.searchsorted(union, ts)
    row_p = np.repeat(np.arange(len(names)), lengths)
    n, p = union.shape[0], len(names)
    own = np.zeros((n, p), dtype=bool)
    own[row_u, row_p] = True
    own_close = np.full((n, p), np.nan)
    own_close[row_u, row_p] = frame["close"].cast(pl.Float64).to_numpy()
    last = np.where(own, np.arange(n)[:, None], -1)
    np.maximum.accumulate(last, axis=0, out=last)
    safe = np.maximum(last, 0)
    close = np.take_along_axis(own_close, safe, axis=0)
    stale = (last < 0) | ((union[:, None] - union[safe]) > MAX_CARRY_US)
    close[stale] = np.nan
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return Aligned(union, names, close, own, row_u, row_p, bounds)


def ts_series(al: Aligned, dtype: pl.DataType) -> pl.Series:
    """The union timestamps as a `ts` series of the frame's dtype."""
    return pl.Series("ts", al.ts, dtype=pl.Int64).cast(pl.Datetime("us")).dt.replace_time_zone("UTC").cast(dtype)


# -- coverage of a partial pair set -------------------------------------------------------------
def coverage(pairs: Iterable[str]) -> dict:
    """What a run over `pairs` can compute: defined and skipped currencies and triangles.

    Returns {"pairs", "missing_pairs", "currencies", "skipped_currencies": {ccy: [missing pairs]},
    "triangles", "skipped_triangles": {tri_name: [missing pairs]}}.
    """
    present = {pair(p).name for p in pairs}
    skipped_ccy = {c: [p for p in pairs_of(c) if p not in present] for c in CURRENCIES}
    skipped_tri = {t.name: [p for p in t.pairs if p not in present] for t in TRIANGLES}
    return {
        "pairs": sorted(present),
        "missing_pairs": [p for p in PAIR_NAMES if p not in present],
        "currencies": [c for c, miss in skipped_ccy.items() if not miss],
        "skipped_currencies": {c: miss for c, miss in skipped_ccy.items() if miss},
        "triangles": [t for t, miss in skipped_tri.items() if not miss],
        "skipped_triangles": {t: miss for t, miss in skipped_tri.items() if miss},
    }


def warn_coverage(pairs: Iterable[str], family: str, what: str) -> dict:
    """Log which currencies (`what`="currencies") or triangles a partial run skips; returns coverage()."""
    cov = coverage(pairs)
    skipped = cov["skipped_currencies"] if what == "currencies" else cov["skipped_triangles"]
    if skipped:
        detail = "; ".join(f"{k} (missing {', '.join(v)})" for k, v in skipped.items())
        log.warning("%s: %d %s skipped (NULL throughout): %s", family, len(skipped), what, detail)
    return cov


# -- numerics on the union timeline -------------------------------------------------------------
def shift_rows(x: np.ndarray, k: int) -> np.ndarray:
    """x at k union rows earlier (axis 0), NaN where it does not exist."""
    out = np.full_like(x, np.nan)
    if k == 0:
        out[:] = x
    elif k < x.shape[0]:
        out[k:] = x[:-k]
    return out


def rank_scaled(m: np.ndarray, chunk: int = 8192, tie_rel: float = 1e-9) -> np.ndarray:
    """Per row of m (T, n): (average rank − 1) / (n − 1), ranks from 1, ties averaged; NaN rows if any NaN.

    Stable comparisons (FEATURES.md Numerics): values within tie_rel · the row's largest |value| are tied."""
    t, n = m.shape
    out = np.full((t, n), np.nan)
    for a in range(0, t, chunk):
        block = m[a:a + chunk]
        with np.errstate(invalid="ignore"):
            tie = (tie_rel * np.nanmax(np.abs(block), axis=1, initial=0.0))[:, None, None]
        diff = block[:, None, :] - block[:, :, None]  # [row, i, j] = m_j − m_i
        less = (diff < -tie).sum(axis=2)
        equal = (np.abs(diff) <= tie).sum(axis=2)
        out[a:a + chunk] = (less + (equal + 1) / 2.0 - 1.0) / (n - 1)
    out[np.isnan(m).any(axis=1)] = np.nan
    return out


def peer_corr(al: Aligned, r: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, P) means over base peers and over quote peers of s·corr_w(r_p, r_q), s = +1 when the
    shared currency is on the same side of both pairs (the correlation of both returns oriented to
    the shared currency). NaN where a peer is absent or a correlation is undefined."""
    p = len(al.pairs)
    base = np.zeros((al.n, p))
    quote = np.zeros((al.n, p))
    done: dict[tuple[int, int], np.ndarray] = {}
    for j, name in enumerate(al.pairs):
        pj = pair(name)
        for rel in related(name):
            k = al.col(rel.pair)
            if k is None:
                c = np.full(al.n, np.nan)
            else:
                key = (min(j, k), max(j, k))
                # each related couple is visited twice: compute on the first visit, release on the second
                corr = done.pop(key) if key in done else done.setdefault(key, rolling_corr(r[:, key[0]], r[:, key[1]], w, dimensionless=True))
                c = corr if rel.same_side else -corr
            if rel.shared == pj.base:
                base[:, j] += c
            else:
                quote[:, j] += c
    return base / 6.0, quote / 6.0
