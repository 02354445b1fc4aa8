"""Trading calendar of the sample market: the minutes of a month while FX trades."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np

NEW_YORK = ZoneInfo("America/New_York")
#: First and last month the sample market can generate (anchors are drawn from EPOCH on).
EPOCH = (2000, 1)
LAST = (2099, 12)
#: Whole UTC days without trading: (month, day).
HOLIDAYS: tuple[tuple[int, int], ...] = ((12, 25), (1, 1))


def parse_month(month: str) -> tuple[int, int]:
    """(year, month) of a "YYYY-MM" string, checked against the sample market's range."""
    try:
        y, m = (int(p) for p in str(month).strip().split("-"))
        if not 1 <= m <= 12:
            raise ValueError
    except ValueError:
        raise ValueError(f"month must look like '2024-07', got {month!r}") from None
    if not EPOCH <= (y, m) <= LAST:
        raise ValueError(f"sample market months run from {EPOCH[0]}-{EPOCH[1]:02d} to {LAST[0]}-{LAST[1]:02d}, got {month!r}")
    return y, m


def month_index(year: int, month: int) -> int:
    """Months since EPOCH (0 for 2000-01)."""
    return (year - EPOCH[0]) * 12 + month - EPOCH[1]


def months_from(start: str, months: int) -> list[tuple[int, int]]:
    """`months` consecutive (year, month) from `start`."""
    if months < 1:
        raise ValueError(f"months must be >= 1, got {months}")
    y, m = parse_month(start)
    out = []
    for k in range(months):
        i = y * 12 + m - 1 + k
        out.append((i // 12, i % 12 + 1))
    parse_month(f"{out[-1][0]}-{out[-1][1]:02d}")
    return out


def _epoch_minute(t: datetime) -> int:
    return int(t.timestamp()) // 60


def month_bounds(year: int, month: int) -> tuple[int, int]:
    """[first, end) of the month in minutes since 1970-01-01 UTC."""
    nxt = (year + month // 12, month % 12 + 1)
    start = datetime(year, month, 1, tzinfo=timezone.utc)
    end = datetime(*nxt, 1, tzinfo=timezone.utc)
    return _epoch_minute(start), _epoch_minute(end)


def weekly_closes(year: int, month: int) -> list[tuple[int, int]]:
    """[Friday 17:00, Sunday 17:00) New York time, in UTC epoch minutes, for weeks touching the month."""
    first = date(year, month, 1) - timedelta(days=7)
    out = []
    for k in range(45):
        d = first + timedelta(days=k)
        if d.weekday() != 4:
            continue
        sun = d + timedelta(days=2)
        close = datetime(d.year, d.month, d.day, 17, tzinfo=NEW_YORK)
        reopen = datetime(sun.year, sun.month, sun.day, 17, tzinfo=NEW_YORK)
        out.append((_epoch_minute(close), _epoch_minute(reopen)))
    return out


def trading_minutes(year: int, month: int) -> np.ndarray:
    """Minutes since 1970-01-01 UTC (int64) of the month while the sample market trades."""
    m0, m1 = month_bounds(year, month)
    keep = np.ones(m1 - m0, dtype=bool)
    for a, b in weekly_closes(year, month):
        keep[max(a - m0, 0) : max(b - m0, 0)] = False
    for hm, hd in HOLIDAYS:
        if hm == month:
            a = _epoch_minute(datetime(year, hm, hd, tzinfo=timezone.utc)) - m0
            keep[a : a + 1440] = False
    return np.arange(m0, m1, dtype=np.int64)[keep]
