"""time: clock, weekday, trading sessions in local time (DST honoured), week close, gaps."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from bqx.core.runner import compute

UTC = timezone.utc
NY = ZoneInfo("America/New_York")
ZONES = {
    "sydney": (ZoneInfo("Australia/Sydney"), 7, 16),
    "tokyo": (ZoneInfo("Asia/Tokyo"), 9, 18),
    "london": (ZoneInfo("Europe/London"), 8, 17),
    "new_york": (NY, 8, 17),
}


def _bars(stamps: list[datetime]) -> pl.DataFrame:
    n = len(stamps)
    return pl.DataFrame({
        "pair": ["EURUSD"] * n,
        "ts": pl.Series(stamps, dtype=pl.Datetime("us", "UTC")),
        **{c: np.full(n, 1.1) for c in ("open", "high", "low", "close")},
    })


def _time(stamps: list[datetime]) -> pl.DataFrame:
    return compute(_bars(sorted(stamps)), ["time"])


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- an independent oracle: Python's zoneinfo, one timestamp at a time ------------------------------
def _open_oracle(ts: datetime, centre: str) -> bool:
    tz, open_h, close_h = ZONES[centre]
    local = ts.astimezone(tz)
    return local.weekday() < 5 and open_h * 60 <= local.hour * 60 + local.minute < close_h * 60


def _session_oracle(ts: datetime) -> int:
    o = {c: _open_oracle(ts, c) for c in ZONES}
    if o["london"] and o["new_york"]:
        return 2
    if o["london"]:
        return 1
    if o["new_york"]:
        return 3
    if o["tokyo"] or o["sydney"]:
        return 0
    return 4


def _week_close_oracle(ts: datetime) -> float:
    local = ts.astimezone(NY)
    friday = local.date() + timedelta(days=(4 - local.weekday()) % 7)
    close = datetime(friday.year, friday.month, friday.day, 17, tzinfo=NY)
    if close < local:
        close = datetime.combine(friday + timedelta(days=7), close.timetz())
    # subtract in UTC: two datetimes sharing a tzinfo subtract as wall clocks
    return (close.astimezone(UTC) - ts).total_seconds() / 60.0


def test_sessions_and_week_close_match_zoneinfo_over_2024():
    """Every 20 minutes of 2024 (all DST transitions of London, New York, Sydney) against zoneinfo."""
    stamps = [_utc(2024, 1, 1) + timedelta(minutes=20 * k) for k in range(366 * 72)]
    out = _time(stamps)
    session = np.array([_session_oracle(t) for t in stamps], dtype=float)
    count = np.array([sum(_open_oracle(t, c) for c in ZONES) for t in stamps], dtype=float)
    close = np.array([_week_close_oracle(t) for t in stamps])
    np.testing.assert_array_equal(out["time_session"].to_numpy(), session)
    np.testing.assert_array_equal(out["time_sessions_open"].to_numpy(), count)
    np.testing.assert_array_equal(out["time_to_week_close"].to_numpy(), close)


# (instant UTC, centre, open?) on the weekdays around each 2024 transition; the hours are worked out
# from the offsets: London GMT+0 -> BST+1 on 31 Mar, back on 27 Oct; New York EST-5 -> EDT-4 on
# 10 Mar, back on 3 Nov; Sydney AEDT+11 -> AEST+10 on 7 Apr, back to AEDT on 6 Oct.
EDGES = [
    # London opens 08:00 local: 08:00 UTC before BST, 07:00 UTC during BST
    (_utc(2024, 3, 29, 7, 59), "london", False), (_utc(2024, 3, 29, 8, 0), "london", True),
    (_utc(2024, 4, 1, 6, 59), "london", False), (_utc(2024, 4, 1, 7, 0), "london", True),
    # ... and closes 17:00 local: 16:00 UTC during BST, 17:00 UTC after
    (_utc(2024, 10, 25, 15, 59), "london", True), (_utc(2024, 10, 25, 16, 0), "london", False),
    (_utc(2024, 10, 28, 16, 59), "london", True), (_utc(2024, 10, 28, 17, 0), "london", False),
    # New York opens 08:00 local: 13:00 UTC in EST, 12:00 UTC in EDT
    (_utc(2024, 3, 8, 12, 59), "new_york", False), (_utc(2024, 3, 8, 13, 0), "new_york", True),
    (_utc(2024, 3, 11, 11, 59), "new_york", False), (_utc(2024, 3, 11, 12, 0), "new_york", True),
    # ... and closes 17:00 local: 21:00 UTC in EDT, 22:00 UTC in EST
    (_utc(2024, 11, 1, 20, 59), "new_york", True), (_utc(2024, 11, 1, 21, 0), "new_york", False),
    (_utc(2024, 11, 4, 21, 59), "new_york", True), (_utc(2024, 11, 4, 22, 0), "new_york", False),
    # Sydney opens 07:00 local: 20:00 UTC the day before in AEDT, 21:00 UTC in AEST
    (_utc(2024, 4, 4, 19, 59), "sydney", False), (_utc(2024, 4, 4, 20, 0), "sydney", True),
    (_utc(2024, 4, 7, 20, 59), "sydney", False), (_utc(2024, 4, 7, 21, 0), "sydney", True),
    (_utc(2024, 10, 3, 20, 59), "sydney", False), (_utc(2024, 10, 3, 21, 0), "sydney", True),
    (_utc(2024, 10, 6, 19, 59), "sydney", False), (_utc(2024, 10, 6, 20, 0), "sydney", True),
    # Tokyo has no DST: 09:00 JST = 00:00 UTC, all year
    (_utc(2024, 7, 1, 0, 0), "tokyo", True), (_utc(2024, 7, 1, 9, 0), "tokyo", False),
]


@pytest.mark.parametrize("ts,centre,is_open", EDGES, ids=[f"{c}-{t:%m%d-%H%M}" for t, c, _ in EDGES])
def test_open_and_close_edges_around_dst(ts, centre, is_open):
    assert _open_oracle(ts, centre) == is_open  # the fixture itself is right
    out = _time([ts - timedelta(minutes=1), ts]).row(1, named=True)
    others = {c: _open_oracle(ts, c) for c in ZONES if c != centre}
    assert out["time_sessions_open"] == sum(others.values()) + is_open
    assert out["time_session"] == _session_oracle(ts)


def test_transition_instants_themselves():
    """Just before and after each clock change (weekends: all centres closed, session 4)."""
    changes = [_utc(2024, 3, 31, 1), _utc(2024, 10, 27, 1),  # London
               _utc(2024, 3, 10, 7), _utc(2024, 11, 3, 6),  # New York
               _utc(2024, 4, 6, 16), _utc(2024, 10, 5, 16)]  # Sydney
    stamps = sorted({t + timedelta(minutes=d) for t in changes for d in (-1, 0, 1)})
    out = _time(stamps)
    assert out["time_sessions_open"].to_list() == [0.0] * len(stamps)
    assert out["time_session"].to_list() == [4.0] * len(stamps)
    # New York springs forward on Sunday 10 Mar 07:00 UTC; the week closes Fri 15 Mar 17:00 EDT = 21:00 UTC
    row = out.filter(pl.col("ts") == _utc(2024, 3, 10, 6, 59)).row(0, named=True)
    assert row["time_to_week_close"] == (5 * 24 + 14) * 60 + 1  # 06:59 Sun -> 21:00 Fri
    row = out.filter(pl.col("ts") == _utc(2024, 11, 3, 6, 0)).row(0, named=True)
    assert row["time_to_week_close"] == (5 * 24 + 16) * 60  # Fri 8 Nov 17:00 EST = 22:00 UTC


def test_week_close():
    """Friday 17:00 New York = 21:00 UTC in summer (EDT), 22:00 UTC in winter (EST)."""
    stamps = [_utc(2024, 7, 5, 20, 59), _utc(2024, 7, 5, 21, 0), _utc(2024, 7, 5, 21, 1),
              _utc(2024, 11, 1, 21, 1), _utc(2024, 12, 6, 21, 59), _utc(2024, 12, 6, 22, 0),
              _utc(2024, 7, 7, 21, 0)]
    out = _time(stamps)
    got = dict(zip(out["ts"].to_list(), out["time_to_week_close"].to_list()))
    assert got[_utc(2024, 7, 5, 20, 59)] == 1.0
    assert got[_utc(2024, 7, 5, 21, 0)] == 0.0  # at the close itself
    assert got[_utc(2024, 7, 5, 21, 1)] == 7 * 1440 - 1  # just after: next Friday
    assert got[_utc(2024, 11, 1, 21, 1)] == 7 * 1440 + 59  # next close is Fri 8 Nov 22:00 UTC (EST)
    assert got[_utc(2024, 12, 6, 21, 59)] == 1.0
    assert got[_utc(2024, 12, 6, 22, 0)] == 0.0
    assert got[_utc(2024, 7, 7, 21, 0)] == 5 * 1440  # Sunday 17:00 EDT -> Friday 17:00 EDT


def test_clock_and_weekday_by_hand():
    # Monday 2024-07-01 06:00 UTC: minute 360 of 1440 -> angle π/2; weekday 0 + 0.25 -> 2π·0.25/7
    # Sunday 2024-07-07 18:00 UTC: minute 1080 -> 3π/2; weekday 6 + 0.75 -> 2π·6.75/7
    out = _time([_utc(2024, 7, 1, 6), _utc(2024, 7, 7, 18)])
    a, b = out.row(0, named=True), out.row(1, named=True)
    assert a["time_tod_sin"] == pytest.approx(1.0, abs=1e-15)
    assert a["time_tod_cos"] == pytest.approx(0.0, abs=1e-15)
    assert a["time_dow_sin"] == pytest.approx(math.sin(2 * math.pi * 0.25 / 7), abs=1e-15)
    assert a["time_dow_cos"] == pytest.approx(math.cos(2 * math.pi * 0.25 / 7), abs=1e-15)
    assert b["time_tod_sin"] == pytest.approx(-1.0, abs=1e-15)
    assert b["time_dow_sin"] == pytest.approx(math.sin(2 * math.pi * 6.75 / 7), abs=1e-15)
    # Monday 06:00 UTC: London 07:00 BST (closed), Tokyo 15:00 (open), Sydney 16:00 AEST (just closed)
    assert a["time_session"] == 0.0 and a["time_sessions_open"] == 1.0


def test_gap_across_weekend_and_first_bar():
    stamps = [_utc(2024, 7, 5, 20, 58), _utc(2024, 7, 5, 20, 59),  # Friday before the close
              _utc(2024, 7, 7, 21, 0), _utc(2024, 7, 7, 21, 5)]  # Sunday reopen, then a 5-minute hole
    out = _time(stamps)
    assert out["time_gap"].to_list() == [None, 1.0, 2 * 1440 + 1, 5.0]  # Fri 20:59 -> Sun 21:00 = 2 days 1 min


def test_gap_is_per_pair():
    one = _bars([_utc(2024, 7, 1, 0, m) for m in (0, 1, 2)])
    two = _bars([_utc(2024, 7, 1, 0, m) for m in (0, 3)]).with_columns(pl.lit("GBPUSD").alias("pair"))
    out = compute(pl.concat([one, two]), ["time"]).sort("pair", "ts")
    assert out.filter(pl.col("pair") == "EURUSD")["time_gap"].to_list() == [None, 1.0, 1.0]
    assert out.filter(pl.col("pair") == "GBPUSD")["time_gap"].to_list() == [None, 3.0]
