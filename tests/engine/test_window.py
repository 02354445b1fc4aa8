"""bqx.engine.window: the one rule for a task's rows (per-pair and month tasks, context, lookahead)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl

from bqx.engine.window import epoch_us, task_frames, task_months, task_rows, task_spans

T0 = datetime(2024, 3, 1, tzinfo=timezone.utc)
MONTH_END = datetime(2024, 4, 1, tzinfo=timezone.utc)


def minutes(*offsets: int) -> pl.Series:
    return pl.Series("ts", [T0 + timedelta(minutes=m) for m in offsets], dtype=pl.Datetime("us", "UTC"))


def test_a_per_pair_task_reads_its_context_and_lookahead_rows():
    ts = {"A": minutes(-5, -4, -3, -2, -1, 0, 1, 2)}
    assert task_rows(ts, T0, T0 + timedelta(minutes=2), context=2, lookahead=1, month_task=False) == {"A": (3, 8)}
    assert task_rows(ts, T0, T0 + timedelta(minutes=2), context=9, lookahead=0, month_task=False) == {"A": (0, 7)}


def test_a_month_task_starts_every_pair_at_the_earliest_pairs_context_row():
    dense = minutes(*range(-10, 5))  # every minute
    sparse = minutes(-30, -20, -9, 0, 3)  # its 2nd row before T0 lies 20 minutes back
    ended = minutes(-15, -12, -2)  # ended before the span
    got = task_rows({"D": dense, "S": sparse, "E": ended}, T0, T0 + timedelta(minutes=5), context=2, lookahead=0,
                    month_task=True)
    assert got["S"] == (1, 5)  # from -20
    assert got["D"] == (0, 15)  # from -10: every dense row since -20, up to the span's last bar
    assert got["E"] == (0, 3)  # all its rows in the range
    frames = task_frames({p: pl.DataFrame([t]) for p, t in (("D", dense), ("S", sparse), ("E", ended))},
                         T0, T0 + timedelta(minutes=5), context=2, lookahead=0, month_task=True)
    assert {p: f["ts"][0] for p, f in frames.items()} == {"D": dense[0], "S": sparse[1], "E": ended[0]}
    per_pair = task_rows({"D": dense, "S": sparse}, T0, T0 + timedelta(minutes=5), context=2, lookahead=0,
                         month_task=False)
    assert per_pair["D"] == (8, 15)  # its own 2 rows only, when not a month task


def test_a_month_task_ends_at_the_latest_pairs_lookahead_row():
    a = minutes(0, 1, 2, 10, 11, 12)
    b = minutes(0, 1, 2, 3, 4, 5, 6)
    got = task_rows({"A": a, "B": b}, T0, T0 + timedelta(minutes=3), context=0, lookahead=2, month_task=True)
    assert got == {"A": (0, 5), "B": (0, 7)}  # up to A's 2nd row after the span (minute 11)


def test_spans_cut_rows_into_month_files_and_keep_an_empty_slice_for_a_pair_without_rows():
    feb = minutes(-3, -2, -1)
    mar = minutes(0, 1, 2)
    spans = task_spans({"A": [("2024-02", feb), ("2024-03", mar)]}, T0, MONTH_END, context=2, lookahead=0,
                       month_task=False)
    assert spans == {"A": [("2024-02", 1, 3), ("2024-03", 0, 3)]}
    later = minutes(60 * 24 * 40)
    spans = task_spans({"A": [("2024-03", mar)], "L": [("2024-04", later)]}, T0, MONTH_END, context=0,
                       lookahead=0, month_task=True)
    assert spans["L"] == [("2024-04", 0, 0)]


def test_months_read_follow_row_counts_and_a_month_task_reads_the_union():
    by_pair = {"A": ["2024-01", "2024-02", "2024-03"], "B": ["2024-02", "2024-03"]}
    rows = {("A", "2024-01"): 100, ("A", "2024-02"): 5, ("A", "2024-03"): 100, ("B", "2024-02"): 100,
            ("B", "2024-03"): 100}
    assert task_months(by_pair, rows, "A", "2024-03", context=50, lookahead=0, month_task=False) == {
        "A": ("2024-01", "2024-02", "2024-03")}
    assert task_months(by_pair, rows, "B", "2024-03", context=50, lookahead=0, month_task=False) == {
        "B": ("2024-02", "2024-03")}
    assert task_months(by_pair, rows, None, "2024-03", context=50, lookahead=0, month_task=True) == {
        "A": ("2024-01", "2024-02", "2024-03"), "B": ("2024-02", "2024-03")}
    assert task_months(by_pair, rows, None, "2024-02", context=0, lookahead=0, month_task=True) == {
        "A": ("2024-02",), "B": ("2024-02",)}


def test_epoch_microseconds_are_exact():
    assert epoch_us(T0) == int(np.datetime64("2024-03-01T00:00:00", "us").astype(np.int64))
    assert epoch_us(5) == 5
