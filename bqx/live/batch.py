"""Per-pair families run once a minute on every pair's tail, concatenated, where that gives the same bits.

A family with a small context and many small expressions (time, lags) spends its minute in polars'
per-call overhead, 28 times. Run on the 28 tails one after the other in one frame, each pair's kept
row (its segment's last) depends only on that segment when the family looks back no further than
its context and keeps no state across rows beyond it. That is not assumed, it is proven:

- at start, on the stored tails, the family must not read `ctx.pair`, `ctx.pairs` or `ctx.anchor`
  (the batched call gets one pair's ctx), must return for every pair's kept row exactly the bits of
  its own run on that pair alone, also with the pairs in other orders and every segment moved by
  extra leading rows (MOVES), and must be faster so;
- every minute one pair (in turn) is also computed alone and compared bit for bit; a difference
  sends the family back to one call per pair for good (that minute included) and is logged.

Families with rolling sums across rows (the re-anchored kernels, polars' rolling means) differ in
the last bits between a segment and a frame of its own, so they are not batched.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import polars as pl

from bqx.core.declaration import Ctx
from bqx.live.compute import compute_pair, kept_rows
from bqx.live.plan import LiveFamily
from bqx.live.tail import PairTail

log = logging.getLogger("bqx.live")
ColumnsOf = Callable[[str], Sequence[str]]
CtxOf = Callable[[str], Ctx]
#: batched only when at start it takes less than this share of the per-pair calls' time
SPEEDUP = 0.8
#: (rotation of the pairs, extra leading rows) of the probe's further runs: each segment after other
#: segments and at other offsets (rolling state carried across rows shows up as different bits)
MOVES = ((1, 1), (2, 3), (3, 7), (5, 30), (7, 61), (11, 250))


@dataclass
class Batched:
    families: set[str] = field(default_factory=set)
    fallbacks: list[str] = field(default_factory=list)  # families sent back to per-pair calls by a check
    turn: int = 0

    def run(self, f: LiveFamily, tails: Mapping[str, PairTail], present: Sequence[str], columns_of: ColumnsOf,
            ctx_of: CtxOf) -> None:
        """Fill the family's columns in the last row of every present pair's tail."""
        rows = batched_rows(f, tails, present, columns_of, ctx_of)
        check = present[self.turn % len(present)]
        self.turn += 1
        alone = compute_pair(f, tails[check].frame(columns_of(check), f.rows), ctx_of(check))
        if not same_bits(alone, rows[check]):
            log.warning("live: family %s batched differs from its own run on %s; one call per pair from now on",
                        f.name, check)
            self.families.discard(f.name)
            self.fallbacks.append(f.name)
            rows = {p: compute_pair(f, tails[p].frame(columns_of(p), f.rows), ctx_of(p)) for p in present}
        for p in present:
            tails[p].set_last(rows[p])


def batched_rows(f: LiveFamily, tails: Mapping[str, PairTail], pairs: Sequence[str], columns_of: ColumnsOf,
                 ctx_of: CtxOf, ctx: Ctx | None = None, lead: int = 0) -> dict[str, dict[str, float | None]]:
    """Each pair's kept row of one run of the family on the pairs' tails concatenated (one run per column set).

    `lead`: that many extra rows (the first segment's own first rows) in front, to move every segment.
    """
    groups: dict[tuple[str, ...], list[str]] = {}
    for p in pairs:
        groups.setdefault(tuple(columns_of(p)), []).append(p)
    out: dict[str, dict[str, float | None]] = {}
    for cols, ps in groups.items():
        frames = [tails[p].frame(cols, f.rows) for p in ps]
        if lead:
            frames.insert(0, frames[0].head(lead))
        ends = (np.cumsum([fr.height for fr in frames]) - 1).tolist()
        frame = pl.concat(frames, how="vertical")
        got = kept_rows(f, f.family.compute(frame, ctx or ctx_of(ps[0])), frame.height, ends[1:] if lead else ends)
        out.update(zip(ps, got))
    return out


def _same_moved(f: LiveFamily, tails: Mapping[str, PairTail], pairs: Sequence[str], cols: ColumnsOf,
                ctx_of: Callable[[LiveFamily, str], Ctx], alone: Mapping[str, Mapping[str, float | None]],
                lead: int) -> bool:
    rows = batched_rows(f, tails, pairs, cols, lambda p: ctx_of(f, p), lead=lead)
    return all(same_bits(rows[p], alone[p]) for p in pairs)


def same_bits(a: Mapping[str, float | None], b: Mapping[str, float | None]) -> bool:
    if a.keys() != b.keys():
        return False
    x = np.array([np.nan if v is None else v for v in a.values()], dtype=np.float64)
    y = np.array([np.nan if v is None else v for v in b.values()], dtype=np.float64)
    return bool((x.view(np.int64) == y.view(np.int64)).all())


class _Watched(Ctx):
    """A Ctx that records whether the family looked at what differs between pairs."""

    def __getattribute__(self, name: str) -> Any:
        if name in ("pair", "pairs", "anchor"):
            object.__getattribute__(self, "__dict__").setdefault("_read", set()).add(name)
        return object.__getattribute__(self, name)


def probe(families: Sequence[LiveFamily], tails: Mapping[str, PairTail], pairs: Sequence[str],
          columns_of: Callable[[LiveFamily, str], Sequence[str]], ctx_of: Callable[[LiveFamily, str], Ctx]) -> Batched:
    """The per-pair families that may run batched, proven on the stored tails (see the module's docstring)."""
    out = Batched()
    live = [p for p in pairs if tails[p].ts.end]
    if len(live) < 2:
        return out
    for f in families:
        if f.family.cross_pair or f.family.anchor is not None:
            continue
        cols = lambda p, f=f: columns_of(f, p)  # noqa: E731
        ctx = ctx_of(f, live[0])
        watched = _Watched(params=ctx.params, baseline_time=ctx.baseline_time, pair=ctx.pair, pairs=ctx.pairs,
                           anchor=ctx.anchor)
        try:
            rows = batched_rows(f, tails, live, cols, lambda p: watched, watched)
            if watched.__dict__.get("_read"):
                continue
            t0 = time.perf_counter()
            batched_rows(f, tails, live, cols, lambda p, f=f: ctx_of(f, p))
            t1 = time.perf_counter()
            alone = {p: compute_pair(f, tails[p].frame(cols(p), f.rows), ctx_of(f, p)) for p in live}
            t2 = time.perf_counter()
            if not all(same_bits(rows[p], alone[p]) for p in live) or (t1 - t0) >= SPEEDUP * (t2 - t1):
                continue
            # the same bits whatever comes before a segment and wherever it starts: other orders, other offsets
            if all(_same_moved(f, tails, live[k:] + live[:k], cols, ctx_of, alone, lead) for k, lead in MOVES):
                out.families.add(f.name)
        except Exception:  # noqa: BLE001 - a family that cannot run on the concatenation stays per pair
            continue
    return out
