"""currency_indices (stage 2.3, cross-pair): currency strength from log prices against one origin t0.

S_C(t) = (100/7) · Σ over C's 7 pairs p of σ_{C,p} · ln(c_p(t) / c_p(t0)) on the aligned union
timeline (bqx.kernels.aligned), σ = +1 where C is p's base and −1 where it is the quote.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import numpy as np
import polars as pl

from bqx.kernels.aligned import (
    CARRY_MARGIN, Aligned, align, peer_corr, rank_scaled, shift_rows, ts_series, warn_coverage,
)
from bqx.core.declaration import Column, Ctx, series
from bqx.core.registry import family
from bqx.universe import CURRENCIES, pair, pairs_of

DEFAULTS = {"window": 60}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MISSING = ("one of the currency's 7 pairs is absent from the run or has no close in the last 5 minutes "
            "(aligned union timeline)")


def columns(p: Mapping[str, Any]) -> list[Column]:
    w = p["window"]
    before = f"{w} union bars earlier"
    undefined = f"before the origin t0, or {_MISSING}, now or {before}"
    cols = []
    for side, ccy in (("base", "B"), ("quote", "Q")):
        cols.append(Column(
            f"ccy_{side}", "level", 0,
            f"S_{ccy} = (100/7)·Σ_p σ_{{{ccy},p}}·ln(c_p/c_p(t0)) over the 7 pairs of the pair's {side} currency; "
            "t0 = first union timestamp at or after the baseline at which every pair of the store has a bar",
            nullable_when=f"before the origin t0, or {_MISSING}"))
    for side, ccy in (("base", "B"), ("quote", "Q")):
        cols.append(Column(
            f"ccy_{side}_rank", "ordinal", w,
            f"rank of ΔS_{ccy} = S_{ccy}(t) − S_{ccy}({before}) among the 8 currencies, (average rank − 1)/7, "
            "ties (within 1e-9 · the largest |ΔS|: stable comparisons) averaged",
            nullable_when=f"any of the 8 currencies is undefined: {undefined}", bounded=True))
    for side, ccy in (("base", "B"), ("quote", "Q")):
        cols.append(Column(f"ccy_{side}_mom_{w}", "continuous", w, f"ΔS_{ccy} = S_{ccy}(t) − S_{ccy}({before})",
                           nullable_when=undefined))
    cols.append(Column(
        f"ccy_related_corr_{w}", "continuous", w,
        f"mean over the 12 related pairs q of corr(r_p, ±r_q) over the last {w} union-bar returns (+ when the shared "
        "currency is on the same side of both pairs); returns are log changes of carried closes, 0 where carried",
        nullable_when="a related pair is absent from the run, a return in the window is undefined (a close missing "
                      "now or on the previous union row), or a std is zero", bounded=True))
    cols.append(Column(f"ccy_dispersion_{w}", "continuous", w, "population std over the 8 currencies of ΔS_C",
                       nullable_when=f"any of the 8 currencies is undefined: {undefined}"))
    return cols


def to_us(ts: datetime | str) -> int:
    dt = datetime.fromisoformat(ts) if isinstance(ts, str) else ts
    return (dt.astimezone(timezone.utc) - _EPOCH) // timedelta(microseconds=1)


def origin(frame: pl.DataFrame, ctx: Ctx) -> dict[str, Any]:
    """t0: the first union timestamp at or after the baseline time at which every pair present has a bar,
    with every pair's close there (fixed once per store)."""
    names = frame["pair"].unique().sort().to_list()
    after = frame.filter(pl.col("ts") >= ctx.baseline_time)
    full = after.group_by("ts").agg(pl.len().alias("n")).filter(pl.col("n") == len(names))
    if full.height == 0:
        raise ValueError(
            f"currency_indices: no timestamp at or after the baseline {ctx.baseline_time} at which all "
            f"{len(names)} pairs ({', '.join(names)}) have a bar; the currency-strength origin t0 is undefined")
    t0 = full["ts"].min()
    at = after.filter(pl.col("ts") == t0).select("pair", "close")
    return {"time": ctx.baseline_time.isoformat(), "ts": t0.isoformat(),
            "closes": {str(p): float(c) for p, c in at.iter_rows()}}


def strength(al: Aligned, anchor: Mapping[str, Any]) -> np.ndarray:
    """(T, 8) S_C for the currencies in CURRENCIES order; NaN where undefined (before t0, a pair missing)."""
    closes0 = anchor["closes"]
    logs = {}
    for j, name in enumerate(al.pairs):
        if name in closes0:
            logs[name] = np.log(al.close[:, j]) - np.log(float(closes0[name]))
    s = np.full((al.n, len(CURRENCIES)), np.nan)
    for i, ccy in enumerate(CURRENCIES):
        members = pairs_of(ccy)
        if all(m in logs for m in members):
            total = np.zeros(al.n)
            for m in members:
                total += pair(m).side(ccy) * logs[m]
            s[:, i] = (100.0 / 7.0) * total
    s[al.ts < to_us(anchor["ts"])] = np.nan
    return s


@family(name="currency_indices", stage="currency_indices", inputs=("bars",), columns=columns, params=DEFAULTS,
        context=lambda p: p["window"] + 1 + CARRY_MARGIN, cross_pair=True, tables=("currency_index",), anchor=origin)
def currency_indices(frame: pl.DataFrame, ctx: Ctx) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """S_B, S_Q; ranks of ΔS among the 8 currencies; ΔS; related-pair correlation; dispersion of ΔS."""
    w = int(ctx.params["window"])
    al = align(frame)
    warn_coverage(al.pairs, "currency_indices", "currencies")
    anchor = ctx.anchor if ctx.anchor is not None else origin(frame, ctx)
    s = strength(al, anchor)
    ds = s - shift_rows(s, w)
    rank = rank_scaled(ds)
    with np.errstate(invalid="ignore"):
        dispersion = ds.std(axis=1)
    base_corr, quote_corr = peer_corr(al, al.returns(), w)
    related_corr = (base_corr + quote_corr) / 2.0
    bi = np.array([CURRENCIES.index(pair(n).base) for n in al.pairs], dtype=np.int64)[al.row_p]
    qi = np.array([CURRENCIES.index(pair(n).quote) for n in al.pairs], dtype=np.int64)[al.row_p]
    u = al.row_u
    values = {
        "ccy_base": s[u, bi], "ccy_quote": s[u, qi],
        "ccy_base_rank": rank[u, bi], "ccy_quote_rank": rank[u, qi],
        f"ccy_base_mom_{w}": ds[u, bi], f"ccy_quote_mom_{w}": ds[u, qi],
        f"ccy_related_corr_{w}": al.at_rows(related_corr),
        f"ccy_dispersion_{w}": dispersion[u],
    }
    cols = pl.DataFrame([series(c.name, values[c.name]) for c in columns(ctx.params)])
    table = pl.DataFrame([ts_series(al, frame.schema["ts"]),
                          *(series(f"ccy_{c}", s[:, i]) for i, c in enumerate(CURRENCIES))])
    return cols, {"currency_index": table}
