"""The sample market made ragged, as real feeds deliver bars (`sample_market(..., ragged=True)`, `bqx sample --ragged`).

Relative to the span of the market it is given (its first and last bar over all pairs), each pair:

- starts late: every pair but the reference (EURUSD) starts 0 to 180 minutes after the span's
  first bar (half of them on time), and ends early: 1 to 61 minutes before its last bar (a third
  end with it);
- opens late after each weekend: its first bar after the weekly close (Friday 17:00 to Sunday
  17:00 New York, so 21:00 or 22:00 UTC with US daylight saving) comes 0 to 4 minutes after the
  market's reopen;
- and some pairs have a role (ROLES): a 6-hour outage (USDJPY, once, placed in the middle half of
  the span), an illiquid pair missing about 3 % of its minutes (GBPNZD, more in quiet hours), a
  pair without volume (NZDUSD: volume 0, and no volume column in its files), a bid-only pair
  (EURJPY: the bid prices are its prices, no ask; its files carry ts, bid OHLC and volume only, so
  `bqx ingest` reads it as basis "bid").

Seeded and deterministic: a pair's raggedness depends only on (seed, pair) and the span, not on
which other pairs are asked for. The tidy market's values are unchanged: rows are only removed
(and the roles' columns blanked), never altered.
"""

from __future__ import annotations

import zlib
from datetime import timedelta

import numpy as np
import polars as pl

from bqx.bar_schema import ASK_COLUMNS, BID_COLUMNS, PRICE_COLUMNS

REFERENCE = "EURUSD"  # starts and ends with the span: the market's end is its end
LATE_START_MAX = 180  # minutes
EARLY_END_MAX = 61  # minutes
WEEKLY_LAG_MAX = 4  # minutes after the weekly reopen
OUTAGE = timedelta(hours=6)
ILLIQUID_MISSING = 0.03
ROLES: dict[str, str] = {"USDJPY": "outage", "GBPNZD": "illiquid", "NZDUSD": "no volume", "EURJPY": "bid only"}
_TAG = 7  # keeps these draws apart from the tidy market's
_QUIET = np.where((np.arange(24) >= 21) & (np.arange(24) < 23), 4.0, 1.0)  # missing minutes: rollover hours


def _rng(seed: int, pair: str) -> np.random.Generator:
    return np.random.default_rng([seed, _TAG, zlib.crc32(pair.encode())])


def make_ragged(market: pl.DataFrame, seed: int = 0) -> pl.DataFrame:
    """`market` (pair + bar columns, sorted by pair and ts) as a ragged feed; see the module docstring."""
    if market.height == 0:
        return market
    first, last = market["ts"].min(), market["ts"].max()
    out = []
    for (pair,), frame in market.partition_by("pair", as_dict=True, maintain_order=True).items():
        out.append(_ragged_pair(str(pair), frame, first, last, seed))
    return pl.concat(out).select(market.columns)


def _ragged_pair(pair: str, frame: pl.DataFrame, first, last, seed: int) -> pl.DataFrame:
    rng = _rng(seed, pair)
    # draws, always in this order and these sizes
    late = int(rng.integers(1, LATE_START_MAX + 1)) if rng.random() < 0.5 else 0
    early = int(rng.integers(1, EARLY_END_MAX + 1)) if rng.random() < 2 / 3 else 0
    lags = rng.integers(0, WEEKLY_LAG_MAX + 1, 64)  # one per weekly reopen (a span of up to 64 weeks)
    where = rng.uniform(0.25, 0.75)
    u = rng.random(frame.height)
    if pair == REFERENCE:
        late = early = 0
    ts = frame["ts"]
    keep = (ts >= first + timedelta(minutes=late)) & (ts <= last - timedelta(minutes=early))
    gaps = ts.diff().dt.total_seconds().fill_null(0) > 86_400  # the first bar after a weekend (or holiday)
    reopen = ts.filter(gaps).to_list()
    for k, t in enumerate(reopen):  # a handful of weeks, not a per-bar loop
        keep = keep & ~((ts >= t) & (ts < t + timedelta(minutes=int(lags[k % lags.size]))))
    role = ROLES.get(pair)
    if role == "outage":
        t0 = ts[int(where * (ts.len() - 1))]
        keep = keep & ~((ts >= t0) & (ts < t0 + OUTAGE))
    elif role == "illiquid":
        hour = ts.dt.hour().to_numpy()
        p = ILLIQUID_MISSING * _QUIET[hour] / _QUIET[hour].mean()
        keep = keep & pl.Series(u >= p)
    frame = frame.filter(keep)
    if role == "no volume":
        frame = frame.with_columns(pl.lit(0.0).alias("volume"))
    elif role == "bid only":
        frame = frame.with_columns(*(pl.col(b).alias(m) for m, b in zip(PRICE_COLUMNS, BID_COLUMNS)),
                                   *(pl.lit(None, pl.Float64).alias(a) for a in ASK_COLUMNS))
    return frame


def feed_columns(pair: str, ragged: bool) -> list[str] | None:
    """The columns a file of `pair` carries (None: every bar column): a ragged market's bid-only pair writes ts,
    bid OHLC and volume, and its pair without volume no volume column."""
    if not ragged:
        return None
    role = ROLES.get(pair)
    if role == "bid only":
        return ["ts", *BID_COLUMNS, "volume"]
    if role == "no volume":
        return ["ts", *PRICE_COLUMNS, *BID_COLUMNS, *ASK_COLUMNS]
    return None
