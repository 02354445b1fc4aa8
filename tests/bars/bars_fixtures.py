"""Small hand-written bar files for the reader, rule and ingest tests."""

from __future__ import annotations

from pathlib import Path


SAMPLE_HEADER = "ts,open,high,low,close,volume,bid_open,bid_high,bid_low,bid_close,ask_open,ask_high,ask_low,ask_close"


def sample_row(minute: int, mid: float = 1.1, volume: int = 10) -> str:
    """A consistent sample-dialect row: mid OHLC around `mid`, spread 0.0002 (bid = mid - 0.0001)."""
    o, h, lo, c = mid, mid + 0.0005, mid - 0.0005, mid + 0.0001
    bid = [round(x - 0.0001, 5) for x in (o, h, lo, c)]
    ask = [round(x + 0.0001, 5) for x in (o, h, lo, c)]
    prices = ",".join(str(round(x, 5)) for x in (o, h, lo, c))
    return f"2024-07-01T00:{minute:02d}:00Z,{prices},{volume},{','.join(map(str, bid))},{','.join(map(str, ask))}"


def sample_text(n: int = 5, start: int = 0) -> str:
    return "\n".join([SAMPLE_HEADER, *[sample_row(start + i, 1.1 + 0.001 * i) for i in range(n)]]) + "\n"


