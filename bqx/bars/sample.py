"""The built-in sample market: seeded, deterministic one-minute bars of the 28 pairs.

Model
    Seven latent log-prices x_c = ln(USD per unit of c), c in EUR GBP AUD NZD CAD CHF JPY
    (x_USD = 0), are correlated random walks in "business time": each minute's variance is
    sigma_c^2 * season_c(minute of day)^2 * regime(t)^2, with sigma_c an annualised volatility of
    7.2-9.5 %, an intraday seasonality (quiet 21:00-23:00 UTC, busy in the London/New York
    overlap, Asian hours livelier for AUD, NZD, JPY) and occasional volatility regimes of 1.4-2x
    lasting a day or two. A pair BASEQUOTE is exp(x_BASE - x_QUOTE) times a bounded micro-noise
    (|noise| <= 0.017 bp per pair), so every triangle closes within 0.05 bp before quantisation.
    Each minute is six path points (the open and five sub-minute steps); open/close are the
    first/last point, high/low their max/min. Mid prices are quantised to a tenth of a pip
    (5 decimals, 3 for JPY-quoted pairs); a bar of one tick is flat (o = h = l = c = close).
    Spreads are an even number of tenth-pips (so mid = (bid + ask) / 2 exactly on the grid, and
    bid = mid - half spread for each of open/high/low/close): about 0.2 pip on EURUSD, several
    pips on thin crosses, 4-5x wider 21:00-23:00 UTC. Volume is a tick count (float, >= 1)
    following activity. Missing minutes are rare (more on thin crosses, in quiet hours).

Calendar
    Closed from Friday 17:00 to Sunday 17:00 America/New_York (zoneinfo, daylight saving
    honoured) and the whole UTC days of 25 December and 1 January. Months 2000-01 to 2099-12.

Ragged (`ragged=True`, `bqx sample --ragged`)
    Staggered first and last bars, late weekly opens, a 6-hour outage, an illiquid pair, a pair
    without volume and a bid-only pair: bqx.bars.sample_ragged. Off by default.

Determinism
    A pair-month depends only on (seed, pair, month). The seven latent paths of a month come from
    an rng seeded by (seed, month) and are Brownian bridges between month-start anchors, which
    follow a mean-reverting monthly random walk from 2000-01 seeded by seed alone; a pair's
    noise, spreads, volumes and missing minutes come from an rng seeded by (seed, pair, month).

CSV dialect (write_sample(fmt="csv"))
    Comma separated, one header row ``ts,open,high,low,close,volume,bid_open,bid_high,bid_low,
    bid_close,ask_open,ask_high,ask_low,ask_close``, ``ts`` the bar open time as ISO-8601 UTC with
    a 'Z' (``2024-07-01T00:00:00Z``), prices as shortest round-trip decimals, volume a float
    (``12.0``). One file per pair named ``<PAIR>.csv``; no pair column.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Literal

import numpy as np
import polars as pl

from bqx.bars.sample_calendar import (
    EPOCH,
    LAST,
    month_bounds,
    month_index,
    months_from,
    parse_month,
    trading_minutes,
)
from bqx.bars.sample_ragged import feed_columns, make_ragged
from bqx.bar_schema import BAR_COLUMNS, BAR_SCHEMA
from bqx.universe import PAIR_NAMES, pair as pair_of

__all__ = ["sample_market", "sample_pair_month", "write_sample", "write_market", "make_ragged", "LATENT", "MINUTES_PER_YEAR"]

#: The latent currencies, each valued in USD.
LATENT: tuple[str, ...] = ("EUR", "GBP", "AUD", "NZD", "CAD", "CHF", "JPY")
#: USD per unit of currency near mid-2024 (USDCAD 1.36, USDCHF 0.88, USDJPY 150).
LEVELS = np.array([1.10, 1.27, 0.66, 0.60, 1 / 1.36, 1 / 0.88, 1 / 150.0])
#: Annualised volatility of each currency against USD.
VOLS = np.array([0.075, 0.080, 0.090, 0.095, 0.072, 0.078, 0.092])
_CORR_UPPER = {  # correlation of the currencies' returns against USD
    ("EUR", "GBP"): 0.65, ("EUR", "AUD"): 0.50, ("EUR", "NZD"): 0.50, ("EUR", "CAD"): 0.45,
    ("EUR", "CHF"): 0.85, ("EUR", "JPY"): 0.45, ("GBP", "AUD"): 0.50, ("GBP", "NZD"): 0.50,
    ("GBP", "CAD"): 0.45, ("GBP", "CHF"): 0.55, ("GBP", "JPY"): 0.30, ("AUD", "NZD"): 0.88,
    ("AUD", "CAD"): 0.60, ("AUD", "CHF"): 0.40, ("AUD", "JPY"): 0.25, ("NZD", "CAD"): 0.55,
    ("NZD", "CHF"): 0.40, ("NZD", "JPY"): 0.25, ("CAD", "CHF"): 0.35, ("CAD", "JPY"): 0.20,
    ("CHF", "JPY"): 0.55,
}
#: Trading minutes in a year: 52 weeks of 5 x 1440 minutes, less two holidays.
MINUTES_PER_YEAR = 52 * 5 * 1440 - 2 * 1440
SUBSTEPS = 5  # sub-minute steps after the open point
_OPEN_WEIGHT = 0.03  # share of a minute's variance between the previous close and the open
_GAP_MINUTES = 20.0  # variance of the jump over a weekend or holiday, in minutes
_PHI = 0.85  # monthly mean reversion of the anchors towards LEVELS
_MICRO = 1.7e-6  # bound of the per-pair log micro-noise (0.017 bp)
#: Intraday volatility shape at UTC hours 0..24 (interpolated per minute).
_VOL_KNOTS = np.array([0.55, 0.6, 0.55, 0.5, 0.45, 0.5, 0.65, 1.0, 1.25, 1.15, 1.0, 0.95, 1.2,
                       1.45, 1.5, 1.35, 1.0, 0.75, 0.6, 0.55, 0.5, 0.3, 0.28, 0.4, 0.55])
_ASIAN = ("AUD", "NZD", "JPY")  # livelier 23:00-07:00 UTC
_CALM, _N_EPISODES, _EPISODE_MINUTES = 0.9, 1.5, 2160.0
#: Spread multiplier by UTC hour: rollover 21:00-23:00 is 4-5x the London/New York spread.
_SPREAD_HOURS = np.array([1.4, 1.3, 1.3, 1.3, 1.3, 1.3, 1.2, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
                          1.0, 1.0, 1.1, 1.2, 1.25, 1.4, 4.0, 5.0, 2.2])
_MISSING_HOURS = np.where((np.arange(24) >= 21) & (np.arange(24) < 23), 4.0, 1.0)
#: Liquidity of each currency; a pair's spread, tick rate and gaps scale with (l_base * l_quote)^2.
_LIQUIDITY = {"USD": 1.0, "EUR": 0.95, "JPY": 0.85, "GBP": 0.75, "AUD": 0.70, "CAD": 0.60,
              "CHF": 0.60, "NZD": 0.45}
_SPREAD_BP = 0.16  # relative spread of a pair of liquidity 1, in bp
_TICKS_PER_MIN = 120.0  # mean tick count per minute of a pair of liquidity 1, typical activity
_MISSING_RATE = 2e-4  # chance a minute is missing for a pair of liquidity 1
_TAG_ANCHOR, _TAG_LATENT, _TAG_PAIR = 1, 2, 3
_N_ANCHORS = (LAST[0] - EPOCH[0]) * 12 + LAST[1] - EPOCH[1] + 2


def _rng(*entropy: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy=list(entropy))))


def _check_seed(seed: int) -> int:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


@lru_cache(maxsize=1)
def _cholesky() -> np.ndarray:
    corr = np.eye(len(LATENT))
    for (a, b), r in _CORR_UPPER.items():
        i, j = LATENT.index(a), LATENT.index(b)
        corr[i, j] = corr[j, i] = r
    out = np.linalg.cholesky(corr)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=1)
def _season() -> np.ndarray:
    """(7, 1440) volatility multiplier per currency and UTC minute of day, mean square 1."""
    hours = np.arange(1440) / 60.0
    base = np.interp(hours, np.arange(25), _VOL_KNOTS)
    asian = (hours >= 23) | (hours < 7)
    out = np.empty((len(LATENT), 1440))
    for i, c in enumerate(LATENT):
        s = base * np.where(asian, 1.35, 1.0) if c in _ASIAN else base
        out[i] = s / np.sqrt(np.mean(s * s))
    out.setflags(write=False)
    return out


@lru_cache(maxsize=8)
def _anchors(seed: int) -> np.ndarray:
    """(months + 1, 7) log levels at each month start from EPOCH: mean-reverting monthly walk."""
    z = _rng(seed, _TAG_ANCHOR).standard_normal((_N_ANCHORS, len(LATENT))) @ _cholesky().T
    eps = z * VOLS / np.sqrt(12.0)
    mu = np.log(LEVELS)
    out = np.empty((_N_ANCHORS, len(LATENT)))
    out[0] = mu
    for k in range(1, _N_ANCHORS):
        out[k] = mu + _PHI * (out[k - 1] - mu) + eps[k - 1]
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class _Latent:
    minutes: np.ndarray  # (N,) int64 UTC epoch minutes of the trading minutes
    x: np.ndarray  # (7, N, SUBSTEPS + 1) latent log values at each minute's points
    regime: np.ndarray  # (N,) volatility regime multiplier, for spreads


def _regime(rng: np.random.Generator, n: int) -> np.ndarray:
    """Calm multiplier with a few episodes of 1.4-2x volatility lasting about 1.5 trading days."""
    k = int(rng.poisson(_N_EPISODES))
    starts = rng.integers(0, n, k)
    ends = starts + rng.exponential(_EPISODE_MINUTES, k).astype(np.int64) + 60
    mults = rng.uniform(1.4, 2.0, k)
    out = np.full(n, _CALM)
    for a, b, m in zip(starts, ends, mults):  # a handful of episodes, not a per-bar loop
        out[a:b] = np.maximum(out[a:b], m)
    return out


@lru_cache(maxsize=2)
def _latent_month(seed: int, year: int, month: int) -> _Latent:
    """The seven latent paths of one month: Brownian bridges (in business time) between anchors."""
    mi = month_index(year, month)
    rng = _rng(seed, _TAG_LATENT, mi)
    minutes = trading_minutes(year, month)
    n = len(minutes)
    regime = _regime(rng, n)
    season = _season()[:, minutes % 1440]  # (7, N)
    per_min = (VOLS[:, None] / np.sqrt(MINUTES_PER_YEAR) * season * regime) ** 2  # (7, N)
    weights = np.full((n, SUBSTEPS + 1), (1.0 - _OPEN_WEIGHT) / SUBSTEPS)
    gap = np.diff(minutes, prepend=minutes[0] - 1) > 1
    if minutes[0] != month_bounds(year, month)[0]:
        gap[0] = True
    weights[:, 0] = np.where(gap, _GAP_MINUTES, _OPEN_WEIGHT)
    var = per_min[:, :, None] * weights[None, :, :]  # (7, N, K+1)
    z = rng.standard_normal((n * (SUBSTEPS + 1), len(LATENT))) @ _cholesky().T
    w = np.cumsum(z.T * np.sqrt(var.reshape(len(LATENT), -1)), axis=1)
    tau = np.cumsum(var.reshape(len(LATENT), -1), axis=1)
    a0, a1 = _anchors(seed)[mi], _anchors(seed)[mi + 1]
    x = a0[:, None] + w - tau / tau[:, -1:] * (w[:, -1:] - (a1 - a0)[:, None])
    for arr in (minutes, x, regime):
        arr.setflags(write=False)
    return _Latent(minutes, x.reshape(var.shape), regime)


def _pair_log(latent: _Latent, base: str, quote: str) -> np.ndarray:
    """(N, K+1) ln(quote per base) = x_base - x_quote at each point (x_USD = 0)."""
    out = np.zeros(latent.x.shape[1:])
    if base != "USD":
        out += latent.x[LATENT.index(base)]
    if quote != "USD":
        out -= latent.x[LATENT.index(quote)]
    return out


def _pair_bars(latent: _Latent, name: str, year: int, month: int, seed: int, quantise: bool) -> dict[str, np.ndarray]:
    """Bar columns (ts as epoch minutes) of one pair-month derived from the month's latent paths."""
    p = pair_of(name)
    rng = _rng(seed, _TAG_PAIR, int.from_bytes(p.name.encode(), "big"), month_index(year, month))
    n = len(latent.minutes)
    liq = (_LIQUIDITY[p.base] * _LIQUIDITY[p.quote]) ** 2
    hour = (latent.minutes % 1440) // 60
    # draws, always in this order and these sizes
    noise = rng.uniform(-_MICRO, _MICRO, latent.x.shape[1:])
    u_missing = rng.random(n)
    vol_jitter = rng.lognormal(0.0, 0.3, n)
    spread_jitter = rng.lognormal(0.0, 0.25, n)
    log_px = _pair_log(latent, p.base, p.quote) + noise
    px = np.exp(log_px)
    # tick counts follow the bar's unquantised log range (activity), relative to the month's median
    rng_log = log_px.max(axis=1) - log_px.min(axis=1)
    act = np.clip(rng_log / np.median(rng_log), 0.02, 8.0) ** 1.5
    lam = _TICKS_PER_MIN * liq * act * vol_jitter
    volume = 1.0 + rng.poisson(lam)  # last draw: its consumption depends on lam
    decimals = 3 if p.quote == "JPY" else 5
    scale = 10.0**decimals
    rel_half = _SPREAD_BP * 1e-4 / liq / 2.0
    half = np.maximum(1.0, np.rint(px[:, -1] * scale * rel_half * _SPREAD_HOURS[hour] * np.sqrt(latent.regime) * spread_jitter))
    mid = np.rint(px * scale) if quantise else px * scale
    o, h, l, c = mid[:, 0], mid.max(axis=1), mid.min(axis=1), mid[:, -1]
    flat = volume == 1.0  # one tick: open = high = low = close
    o, h, l = (np.where(flat, c, v) for v in (o, h, l))
    keep = u_missing >= _MISSING_RATE / liq * _MISSING_HOURS[hour]
    cols = {"ts": latent.minutes, "open": o, "high": h, "low": l, "close": c, "volume": volume}
    for side, sign in (("bid", -1.0), ("ask", 1.0)):
        for field, v in (("open", o), ("high", h), ("low", l), ("close", c)):
            cols[f"{side}_{field}"] = (v + sign * half) / scale
    for field, v in (("open", o), ("high", h), ("low", l), ("close", c)):
        cols[field] = v / scale
    return {k: v[keep] for k, v in cols.items()}


def _frame(cols: dict[str, np.ndarray]) -> pl.DataFrame:
    ts = pl.Series("ts", cols["ts"] * 60_000_000, dtype=pl.Int64).cast(BAR_SCHEMA["ts"])
    return pl.DataFrame([ts, *(pl.Series(c, cols[c], dtype=pl.Float64) for c in BAR_COLUMNS[1:])])


def _pair_names(pairs: Iterable[str] | str | None) -> list[str]:
    if pairs is None:
        return list(PAIR_NAMES)
    if isinstance(pairs, str):
        pairs = [pairs]
    names = sorted({pair_of(p).name for p in pairs})
    if not names:
        raise ValueError("no pairs asked for: pass pair names, or None for all 28")
    return names


def sample_pair_month(pair: str, month: str, seed: int = 0, *, quantise: bool = True) -> pl.DataFrame:
    """One pair-month of sample bars in the canonical schema (no pair column).

    `quantise=False` leaves prices unrounded (for tests of triangle closure); bars are otherwise
    identical.
    """
    seed = _check_seed(seed)
    y, m = parse_month(month)
    return _frame(_pair_bars(_latent_month(seed, y, m), pair_of(pair).name, y, m, seed, quantise))


def sample_market(pairs: Iterable[str] | str | None = None, start: str = "2024-07", months: int = 2, seed: int = 0,
                  *, ragged: bool = False) -> pl.DataFrame:
    """Sample bars of `pairs` (all 28 when None) for `months` months from `start`.

    Returns `pair` (String) then the canonical bar columns, sorted by (pair, ts). `ragged`: as real
    feeds deliver them, staggered, with gaps and partial pairs (bqx.bars.sample_ragged).
    """
    seed = _check_seed(seed)
    names = _pair_names(pairs)
    per_pair: dict[str, list[pl.DataFrame]] = {n: [] for n in names}
    for y, m in months_from(start, months):
        latent = _latent_month(seed, y, m)
        for n in names:
            per_pair[n].append(_frame(_pair_bars(latent, n, y, m, seed, True)))
    frames = [pl.concat(fs).with_columns(pl.lit(n, pl.String).alias("pair")) for n, fs in per_pair.items()]
    market = pl.concat(frames).select("pair", *BAR_COLUMNS)
    return make_ragged(market, seed) if ragged else market


def write_sample(
    out_dir: str | Path,
    pairs: Iterable[str] | str | None = None,
    start: str = "2024-07",
    months: int = 2,
    seed: int = 0,
    fmt: Literal["parquet", "csv"] = "parquet",
    *,
    ragged: bool = False,
) -> list[Path]:
    """Write one file per pair (`EURUSD.parquet` or `EURUSD.csv`) into `out_dir`; returns the paths.

    The CSV dialect is described in the module docstring. `ragged`: the ragged market, its bid-only
    and volume-less pairs written with the columns such feeds have (bqx.bars.sample_ragged).
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
    market = sample_market(pairs, start, months, seed, ragged=ragged)
    return write_market(market, out_dir, fmt, ragged=ragged)


def write_market(market: pl.DataFrame, out_dir: str | Path, fmt: Literal["parquet", "csv"] = "parquet", *,
                 ragged: bool = False) -> list[Path]:
    """Write a market frame (pair + bar columns) as one file per pair, as write_sample does; returns the paths."""
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for (n,), frame in sorted(market.partition_by("pair", as_dict=True, include_key=False).items()):
        columns = feed_columns(n, ragged)
        if columns is not None:
            frame = frame.select(columns)
        path = out / f"{n}.{fmt}"
        tmp = path.with_name(path.name + ".tmp")
        if fmt == "parquet":
            frame.write_parquet(tmp)
        else:
            frame.write_csv(tmp, datetime_format="%Y-%m-%dT%H:%M:%SZ")
        tmp.replace(path)
        paths.append(path)
    return paths
