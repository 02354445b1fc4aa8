"""The built-in sample market: schema, determinism, calendar, closure, magnitudes, spreads, files."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest

from bqx.bars.sample import _MICRO, sample_market, sample_pair_month, write_sample
from bqx.bars.sample_calendar import trading_minutes
from bqx.bar_schema import BAR_COLUMNS, BAR_SCHEMA
from bqx.universe import UnknownPairError

USD_PAIRS = ["EURUSD", "GBPUSD", "AUDUSD", "NZDUSD", "USDCAD", "USDCHF", "USDJPY"]
BP = 1e-4


def _minute(*args: int) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp()) // 60


def _pip(pair: str) -> float:
    return 0.01 if pair.endswith("JPY") else 1e-4


@pytest.fixture(scope="module")
def usd3() -> pl.DataFrame:
    """The 7 USD pairs over three months (about 700k bars)."""
    return sample_market(USD_PAIRS, start="2024-07", months=3, seed=0)


@pytest.fixture(scope="module")
def mixed() -> pl.DataFrame:
    """A liquid major, a JPY pair and a thin cross over one month."""
    return sample_market(["EURUSD", "GBPNZD", "USDJPY"], start="2024-07", months=1, seed=0)


# --- schema and size --------------------------------------------------------------------------


def test_schema_is_pair_then_bar_schema(mixed: pl.DataFrame) -> None:
    assert dict(mixed.schema) == {"pair": pl.String, **BAR_SCHEMA}
    assert dict(sample_pair_month("EURUSD", "2024-07").schema) == BAR_SCHEMA
    assert mixed.equals(mixed.sort("pair", "ts"))
    assert mixed.select(pl.struct("pair", "ts").is_duplicated().sum()).item() == 0
    assert mixed.null_count().sum_horizontal().item() == 0


def test_one_pair_month_is_about_31k_bars() -> None:
    # July 2024 (EDT, the weekly close is Fri 21:00 -> Sun 21:00 UTC), from Mon 1 July 00:00 UTC:
    # 1 Jul 00:00 -> 5 Jul 21:00 = 4*1440 + 21*60 = 7020; three full weeks Sun 21:00 -> Fri 21:00
    # = 3 * 5*1440 = 21600; 28 Jul 21:00 -> 1 Aug 00:00 = 3*60 + 3*1440 = 4500.
    expected = 7020 + 21600 + 4500
    assert expected == 33120 == len(trading_minutes(2024, 7))
    bars = sample_pair_month("EURUSD", "2024-07").height
    assert 0.99 * expected < bars < expected  # a few missing minutes, under 1 %


# --- determinism and independence --------------------------------------------------------------


def test_same_arguments_give_identical_frames() -> None:
    a = sample_market(["EURUSD", "CHFJPY"], "2024-07", 1, seed=3)
    b = sample_market(["CHFJPY", "EURUSD"], "2024-07", 1, seed=3)
    assert a.equals(b)
    c = sample_market(["EURUSD", "CHFJPY"], "2024-07", 1, seed=4)
    assert not a["close"].equals(c["close"])


def test_pair_month_does_not_depend_on_other_pairs_or_months() -> None:
    alone = sample_pair_month("GBPNZD", "2024-08", seed=3)
    with_others = sample_market(["EURUSD", "GBPNZD", "USDJPY"], "2024-07", 3, seed=3)
    later_start = sample_market(["GBPNZD"], "2024-08", 1, seed=3)
    aug = pl.col("ts").dt.month() == 8
    assert alone.equals(with_others.filter((pl.col("pair") == "GBPNZD") & aug).drop("pair"))
    assert alone.equals(later_start.drop("pair"))


def test_months_join_continuously() -> None:
    two = sample_market(["EURUSD"], "2024-07", 2, seed=0)
    jul_close = two.filter(pl.col("ts").dt.month() == 7)["close"][-1]
    aug_open = two.filter(pl.col("ts").dt.month() == 8)["open"][0]
    # 31 Jul 23:59 -> 1 Aug 00:00 is one quiet minute: well under 2 pips apart
    assert abs(aug_open - jul_close) < 2e-4


# --- calendar ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "month", "last_open", "reopen"),
    [
        # EDT (UTC-4): Friday 17:00 NY = 21:00 UTC, Sunday 17:00 NY = 21:00 UTC
        (2024, 7, (2024, 7, 5, 20, 59), (2024, 7, 7, 21, 0)),
        # EST (UTC-5): 22:00 UTC both
        (2025, 1, (2025, 1, 3, 21, 59), (2025, 1, 5, 22, 0)),
        # DST starts Sunday 10 March 2024 02:00 NY: closes 22:00 UTC (EST), reopens 21:00 UTC (EDT)
        (2024, 3, (2024, 3, 8, 21, 59), (2024, 3, 10, 21, 0)),
    ],
)
def test_weekly_close_follows_new_york_time(year: int, month: int, last_open: tuple, reopen: tuple) -> None:
    mins = set(trading_minutes(year, month).tolist())
    assert _minute(*last_open) in mins and _minute(*last_open) + 1 not in mins
    assert _minute(*reopen) in mins and _minute(*reopen) - 1 not in mins


@pytest.mark.parametrize("month", ["2024-07", "2024-12", "2025-01"])
def test_no_bars_in_weekly_close_or_holidays(month: str) -> None:
    bars = sample_pair_month("EURUSD", month)
    ny = bars.select(t=pl.col("ts").dt.convert_time_zone("America/New_York")).with_columns(
        wd=pl.col("t").dt.weekday(), hour=pl.col("t").dt.hour()  # Monday 1 .. Sunday 7
    )
    closed = ((pl.col("wd") == 5) & (pl.col("hour") >= 17)) | (pl.col("wd") == 6) | ((pl.col("wd") == 7) & (pl.col("hour") < 17))
    assert ny.filter(closed).height == 0
    day = bars.select(m=pl.col("ts").dt.month(), d=pl.col("ts").dt.day())
    assert day.filter(((pl.col("m") == 12) & (pl.col("d") == 25)) | ((pl.col("m") == 1) & (pl.col("d") == 1))).height == 0
    if month == "2024-12":  # Tuesday 24 and Thursday 26 December trade
        assert day.filter(pl.col("d") == 24).height > 1000 and day.filter(pl.col("d") == 26).height > 1000


def test_missing_minutes_are_rare_and_per_pair(mixed: pl.DataFrame) -> None:
    cal = trading_minutes(2024, 7)
    missing = {}
    for p in ("EURUSD", "GBPNZD"):
        got = mixed.filter(pl.col("pair") == p)["ts"].dt.epoch("s").to_numpy() // 60
        assert np.isin(got, cal).all()
        missing[p] = set(np.setdiff1d(cal, got).tolist())
    assert 0 < len(missing["EURUSD"]) < len(missing["GBPNZD"]) < 0.01 * len(cal)
    assert missing["EURUSD"] != missing["GBPNZD"]


# --- prices -----------------------------------------------------------------------------------


def test_prices_on_tenth_pip_grid(mixed: pl.DataFrame) -> None:
    price_cols = [c for c in BAR_COLUMNS if c not in ("ts", "volume")]
    for p in ("EURUSD", "GBPNZD", "USDJPY"):
        scale = 1e3 if p.endswith("JPY") else 1e5
        v = mixed.filter(pl.col("pair") == p).select(price_cols).to_numpy() * scale
        assert np.abs(v - np.rint(v)).max() < 1e-6


def test_ohlc_consistent_and_bid_below_ask(mixed: pl.DataFrame) -> None:
    for pre in ("", "bid_", "ask_"):
        o, h, lo, c = (pl.col(pre + f) for f in ("open", "high", "low", "close"))
        bad = mixed.filter((lo > o) | (lo > c) | (h < o) | (h < c) | (lo > h))
        assert bad.height == 0, pre
    for f in ("open", "high", "low", "close"):
        assert (mixed[f"bid_{f}"] < mixed[f"ask_{f}"]).all()
        mid = (mixed[f"bid_{f}"] + mixed[f"ask_{f}"]) / 2
        assert ((mid - mixed[f]).abs() < 1e-12 * mixed[f]).all()
    vol = mixed["volume"].to_numpy()
    assert (vol >= 1).all() and (vol == np.rint(vol)).all()
    flat = mixed.filter((pl.col("high") == pl.col("low")) & (pl.col("pair") == "GBPNZD")).height
    assert flat > 0


def test_levels_near_real_ones(usd3: pl.DataFrame) -> None:
    first = dict(usd3.group_by("pair").agg(pl.col("close").first()).iter_rows())
    real = {"EURUSD": 1.10, "GBPUSD": 1.27, "AUDUSD": 0.66, "NZDUSD": 0.60, "USDCAD": 1.36, "USDCHF": 0.88, "USDJPY": 150.0}
    for p, level in real.items():
        assert abs(np.log(first[p] / level)) < 0.15, (p, first[p])


@pytest.mark.parametrize("triangle", [("EURUSD", "USDJPY", "EURJPY"), ("GBPAUD", "AUDNZD", "GBPNZD")])
def test_triangles_close(triangle: tuple[str, str, str]) -> None:
    def residual(quantise: bool) -> pl.DataFrame:
        legs = [
            sample_pair_month(p, "2024-07", seed=1, quantise=quantise).select("ts", pl.col("close").alias(p))
            for p in triangle
        ]
        j = legs[0].join(legs[1], on="ts").join(legs[2], on="ts")
        p12, p23, p13 = triangle
        return j.with_columns(res=pl.col(p12).log() + pl.col(p23).log() - pl.col(p13).log())

    raw = residual(False)
    assert raw.height > 30_000
    # each leg carries a micro-noise bounded by _MICRO (0.017 bp): |res| <= 3 * 0.017 bp
    assert raw["res"].abs().max() <= 3 * _MICRO * (1 + 1e-9)
    assert raw["res"].std() < 0.03 * BP
    q = residual(True)
    # rounding each leg to the tenth-pip grid moves ln(price) by at most 0.5 * tick / price
    tick = {p: 0.1 * _pip(p) for p in triangle}
    bound = sum(0.5 * tick[p] / pl.col(p) for p in triangle) + 3 * _MICRO
    assert q.filter(pl.col("res").abs() > bound * 1.000001).height == 0


# --- magnitudes -------------------------------------------------------------------------------


def test_annualised_volatility_between_6_and_12_percent(usd3: pl.DataFrame) -> None:
    # sigma^2 * (3 months / 12) = sum of squared 1-minute log returns over the 3 months
    r = usd3.with_columns(r=pl.col("close").log().diff().over("pair")).drop_nulls("r")
    vol = dict(r.group_by("pair").agg((pl.col("r").pow(2).sum() * 12 / 3).sqrt()).iter_rows())
    assert set(vol) == set(USD_PAIRS)
    for p, v in vol.items():
        assert 0.06 <= v <= 0.12, (p, v)


def test_correlations_like_real_ones(usd3: pl.DataFrame) -> None:
    r = (
        usd3.with_columns(r=pl.col("close").log().diff().over("pair"))
        .pivot("pair", index="ts", values="r")
        .drop_nulls()
    )

    def corr(a: str, b: str) -> float:
        return float(np.corrcoef(r[a], r[b])[0, 1])

    assert -corr("EURUSD", "USDCHF") > 0.6  # EUR and CHF against USD
    assert corr("AUDUSD", "NZDUSD") > 0.6
    assert 0.4 < corr("EURUSD", "GBPUSD") < 0.85
    assert -corr("EURUSD", "USDJPY") < 0.6


def test_spreads(mixed: pl.DataFrame) -> None:
    def spread_pips(p: str, hours: tuple[int, int] = (0, 23)) -> float:
        f = mixed.filter((pl.col("pair") == p) & pl.col("ts").dt.hour().is_between(*hours))
        return float(((f["ask_close"] - f["bid_close"]) / _pip(p)).median())

    assert 0.1 <= spread_pips("EURUSD") <= 0.3
    assert spread_pips("GBPNZD") > max(1.0, 3 * spread_pips("EURUSD"))
    for p in ("EURUSD", "GBPNZD", "USDJPY"):
        assert spread_pips(p, (21, 22)) > 2 * spread_pips(p, (13, 15)), p


def test_volume_has_session_seasonality(mixed: pl.DataFrame) -> None:
    by_hour = dict(
        mixed.filter(pl.col("pair") == "EURUSD").group_by(pl.col("ts").dt.hour()).agg(pl.col("volume").mean()).iter_rows()
    )
    assert by_hour[14] > 2 * by_hour[22]


# --- arguments and files ----------------------------------------------------------------------


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(UnknownPairError):
        sample_market(["EURXYZ"], months=1)
    with pytest.raises(ValueError, match="2024-07"):
        sample_pair_month("EURUSD", "July")
    with pytest.raises(ValueError, match="seed"):
        sample_pair_month("EURUSD", "2024-07", seed=-1)
    with pytest.raises(ValueError, match="months"):
        sample_market(["EURUSD"], months=0)


def test_write_sample_parquet_and_csv(tmp_path) -> None:
    want = sample_market(["EURUSD", "USDJPY"], "2024-07", 1, seed=2)
    pq = write_sample(tmp_path / "pq", ["USDJPY", "EURUSD"], "2024-07", 1, seed=2)
    csv = write_sample(tmp_path / "csv", ["USDJPY", "EURUSD"], "2024-07", 1, seed=2, fmt="csv")
    assert [p.name for p in pq] == ["EURUSD.parquet", "USDJPY.parquet"]
    assert [p.name for p in csv] == ["EURUSD.csv", "USDJPY.csv"]
    for path in pq:
        got = pl.read_parquet(path)
        assert got.equals(want.filter(pl.col("pair") == path.stem).drop("pair"))
    lines = csv[1].read_text().splitlines()[:2]
    assert lines[0] == ",".join(BAR_COLUMNS)
    assert lines[1].startswith("2024-07-01T00:00:00Z,")
    got = pl.read_csv(csv[1], try_parse_dates=True)
    assert got.with_columns(pl.col("ts").dt.cast_time_unit("us")).equals(want.filter(pl.col("pair") == "USDJPY").drop("pair"))
