"""The perturbation check: altering the rows after t leaves every row <= t unchanged.

Two alterations per sampled t, each on the task's rows around t: from LEAD_CONTEXTS x the family's
declared context (at least AFTER) rows before t to the next `AFTER` rows after it (for a month task
one start and one end for every pair, by bqx.engine.window), recomputed and compared row by row with
the same rows cut at t, recomputed (a bounded start: memory and time do not depend on where t lies in the month):
- values: the rows after t are shuffled, then every price column (mid, bid, ask OHLC) scaled by a
  common factor of 0.9 or 1.1 with per-row noise (one factor per row, so bars stay valid), volumes
  rescaled, and every input column multiplied by that factor and its own noise (signs kept);
- rows: about a quarter of the rows after t are removed and new rows inserted between the others
  (30 s after a bar, its values with noise); a pair with no row after t (the end of the data, or
  of this pair's bars, which may end before t) gets rows appended after t.
A family that reads the future only through statistics of the whole frame (a full-sample mean, a
rank, a quantile, a per-month aggregate) fails here even when its value at t happens to agree.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from bqx.bar_schema import BAR_COLUMNS
from bqx.validate.recompute import Window, compute
from bqx.validate.report import CheckResult, Failure
from bqx.validate.truncation import compare_rows

AFTER = 1000  # rows after t that the altered frames keep
LEAD_CONTEXTS = 2  # rows before t: this many declared contexts (the values near t are settled), at least AFTER
PRICE_COLUMNS = tuple(c for c in BAR_COLUMNS if c not in ("ts", "volume"))


def _scale_rows(part: pl.DataFrame, factors: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    """Prices times one factor per row; volume and input columns altered too (NULL stays NULL)."""
    f = pl.Series("_f", factors)
    exprs = []
    for name, dtype in part.schema.items():
        if name == "ts" or not dtype.is_numeric():
            continue
        if name in PRICE_COLUMNS:
            exprs.append((pl.col(name) * f).alias(name))
        elif name == "volume":
            exprs.append((pl.col(name) * pl.Series(rng.uniform(0.2, 3.0, part.height))).round(0).alias(name))
        else:
            noise = pl.Series(np.exp(rng.normal(0.0, 0.2, part.height)))  # keeps signs: levels stay positive
            exprs.append((pl.col(name) * f * noise).alias(name))
    return part.with_columns(exprs)


def alter_values(frame: pl.DataFrame, t: datetime, rng: np.random.Generator) -> pl.DataFrame:
    """Shuffle, rescale and add noise to the rows after t (timestamps kept)."""
    k = int(frame["ts"].search_sorted(t, side="right"))
    head, tail = frame.slice(0, k), frame.slice(k)
    if tail.height == 0:
        return frame
    shuffled = tail.select("ts").hstack(tail.drop("ts")[rng.permutation(tail.height)])
    factors = rng.choice([0.9, 1.1]) * np.exp(rng.normal(0.0, 2e-3, tail.height))
    return pl.concat([head, _scale_rows(shuffled, factors, rng).select(frame.columns)], how="vertical_relaxed")


def alter_rows(frame: pl.DataFrame, t: datetime, rng: np.random.Generator) -> pl.DataFrame:
    """Remove about a quarter of the rows after t and insert new ones between the others (or append at the end)."""
    k = int(frame["ts"].search_sorted(t, side="right"))
    head, tail = frame.slice(0, k), frame.slice(k)
    if frame.height == 0:
        return frame
    if tail.height:
        keep = tail.filter(pl.Series(rng.random(tail.height) >= 0.25))
        src = tail.filter(pl.Series(rng.random(tail.height) < 0.25))
        new = src.with_columns(pl.col("ts") + timedelta(seconds=30))
    else:  # nothing after t: new rows after t (not after the pair's own last bar, which may lie before t)
        keep = tail
        last = head.tail(1)
        lag = max(t - last["ts"][0], timedelta(0))
        new = pl.concat([last.with_columns(pl.col("ts") + (lag + timedelta(minutes=i))) for i in range(1, 6)])
    new = _scale_rows(new, np.exp(rng.normal(0.0, 2e-3, new.height)), rng)
    return pl.concat([head, keep, new.select(frame.columns)], how="vertical_relaxed").sort("ts")


def check_perturbation(view, win: Window, samples: list[tuple[datetime, str]], result: CheckResult,
                       rng: np.random.Generator) -> None:
    """At each sampled t: both alterations, recomputed; rows <= t must equal the same rows cut at t, recomputed."""
    lead = max(AFTER, LEAD_CONTEXTS * win.fam.context(view.fam_params(win.fam)))
    for t, why in samples:
        frames = win.around(t, before=lead, after=AFTER)
        cut = {p: f.filter(pl.col("ts") <= t) for p, f in frames.items()}
        try:
            base = compute(view, win.fam, {p: f for p, f in cut.items() if f.height})
        except Exception as exc:  # noqa: BLE001
            result.error(f"recompute cut at {t} raised {type(exc).__name__}: {exc}", win.pair, str(t))
            continue
        result.samples += 1
        for kind, alter in (("values after t altered", alter_values), ("rows after t removed and inserted", alter_rows)):
            altered = {p: alter(f, t, rng) for p, f in frames.items()}
            try:
                out = compute(view, win.fam, altered)
            except Exception as exc:  # noqa: BLE001
                result.error(f"recompute with {kind} at {t} raised {type(exc).__name__}: {exc}", win.pair, str(t))
                continue
            del altered
            for pair, want in base.items():
                got = out.get(pair)
                if got is None:
                    result.fail(Failure(None, pair, str(t), None, None, f"{kind}: the pair's rows vanished"))
                    continue
                got = got.filter(pl.col("ts") <= t)
                compare_rows(win, want, got, pair, result, want, f"{kind} (t {t}, {why})")
