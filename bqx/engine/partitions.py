"""Partitions: a frozen (pair, month) value; months are "YYYY-MM" strings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, order=True)
class Partition:
    """One unit of work: a pair's month, or a whole month over all pairs (`pair` None)."""

    pair: str | None
    month: str

    def __post_init__(self) -> None:
        check_month(self.month)

    @property
    def label(self) -> str:
        return f"{self.pair}/{self.month}" if self.pair else self.month

    def to_dict(self) -> dict[str, str | None]:
        return {"pair": self.pair, "month": self.month}


def check_month(month: str) -> str:
    m = _MONTH.match(str(month))
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"month {month!r} is not of the form YYYY-MM")
    return month


def parse_month(value: str | date | datetime) -> str:
    """A month "YYYY-MM" from a month string, an ISO date(-time) string, a date or a datetime."""
    if isinstance(value, (date, datetime)):
        return f"{value.year:04d}-{value.month:02d}"
    text = str(value).strip()
    if _MONTH.match(text):
        return check_month(text)
    try:
        d = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is neither a month YYYY-MM nor an ISO date") from None
    return f"{d.year:04d}-{d.month:02d}"


def add_months(month: str, k: int) -> str:
    y, m = int(month[:4]), int(month[5:7])
    idx = y * 12 + (m - 1) + k
    return f"{idx // 12:04d}-{idx % 12 + 1:02d}"


def month_start(month: str) -> datetime:
    """00:00 UTC on the month's first day."""
    return datetime(int(month[:4]), int(month[5:7]), 1, tzinfo=timezone.utc)


def month_span(start: str, end: str) -> list[str]:
    """Months from `start` to `end`, both included."""
    out, m = [], start
    while m <= end:
        out.append(m)
        m = add_months(m, 1)
    return out
