"""User families that read the future only on rare conditions are caught at the defaults, with the
column and a timestamp named; clean ones (recursive, expanding) raise no alarm; the sweep's cuts
are placed and applied as documented."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from bqx.validate import validate
from bqx.validate.cuts import KINDS, MAX_GAP, Cuts, perturb, plan_cuts
from bqx.validate.sweep import detection_probability
from tests.validate.conftest import user_family

C = pl.col("close")
TS = pl.col("ts")


def _leaky(name: str, when: pl.Expr, ahead: int = 1):
    """`name`_x = the close, except where `when` holds: then the close `ahead` bars later."""
    def fn(frame, ctx):
        return frame.select(pl.when(when).then(C.shift(-ahead)).otherwise(C).cast(pl.Float64).alias(f"{name}_x"))
    return fn


MINUTE_OF_DAY = TS.dt.hour().cast(pl.Int32) * 60 + TS.dt.minute().cast(pl.Int32)
RARE = {
    # one hour of the day (~4 % of rows)
    "leak_hour": _leaky("leak_hour", TS.dt.hour() == 13),
    # one weekday (~20 % of rows)
    "leak_weekday": _leaky("leak_weekday", TS.dt.weekday() == 3),
    # a price condition: a new 240-bar high (a few % of rows, set by the prices themselves)
    "leak_price": _leaky("leak_price", C > C.rolling_max(240).shift(1)),
    # a lookahead of 1 bar, and of 60 bars, on ~1 % of rows (every 97th minute of the day)
    "leak_ahead1": _leaky("leak_ahead1", MINUTE_OF_DAY % 97 == 0, 1),
    "leak_ahead60": _leaky("leak_ahead60", MINUTE_OF_DAY % 97 == 0, 60),
}


@pytest.mark.parametrize("name", sorted(RARE))
def test_rare_leak_is_caught_at_the_defaults(store, name):
    with user_family(store, name, RARE[name], context=240):
        report = validate(store, [name], save=False)
    res = report.family(name)
    assert res.verdict == "leak" and not report.passed, report.summary()
    caught = [c for c in ("truncation", "perturbation", "sweep") if res.checks[c].status == "fail"]
    assert caught, res.checks
    first = res.checks[caught[0]].failures[0]
    assert first.column == f"{name}_x"
    assert first.pair in ("EURUSD", "USDJPY")
    assert datetime.fromisoformat(first.ts)  # a real timestamp of a bar
    assert f"{name}_x" in report.summary() and "leak" in report.summary()


def test_the_sweep_alone_catches_a_one_hour_leak(store):
    """Six sampled timestamps per partition rarely land in one hour: the sweep's cuts do."""
    with user_family(store, "leak_hour", RARE["leak_hour"], context=240):
        report = validate(store, ["leak_hour"], samples=0, save=False)
    sweep = report.family("leak_hour").checks["sweep"]
    assert sweep.status == "fail" and sweep.samples >= 300  # 2 short partitions: 8 recomputes each
    f = sweep.failures[0]
    assert f.column == "leak_hour_x" and datetime.fromisoformat(f.ts).hour == 13
    assert "reads a later bar" in f.detail


def test_a_cross_pair_family_reading_the_next_bar_in_one_hour_is_caught(store):
    def cross(frame, ctx):
        leak = pl.when(TS.dt.hour() == 9).then(C.shift(-1).over("pair")).otherwise(C.mean().over("ts"))
        return frame.select(leak.cast(pl.Float64).alias("leak_cross_x")), {}

    with user_family(store, "leak_cross", cross, context=10, cross_pair=True):
        report = validate(store, ["leak_cross"], samples=0, save=False)
    res = report.family("leak_cross")
    assert res.verdict == "leak" and res.checks["sweep"].status == "fail"
    f = res.checks["sweep"].failures[0]
    assert f.column == "leak_cross_x" and datetime.fromisoformat(f.ts).hour == 9


def ewm_like(frame, ctx):
    # x_t = 0.95 x_{t-1} + 0.05 c_t; 0.95^600 < 1e-13: context 600
    return frame.select(C.ewm_mean(alpha=0.05, adjust=False).alias("clean_rec_x"))


def expanding_day(frame, ctx):
    # the mean close since the UTC day's first bar: expanding within the day, at most 1,440 rows back
    day = TS.dt.date()
    return frame.select(C.cum_sum().over(day).truediv(C.cum_count().over(day)).cast(pl.Float64).alias("clean_day_x"))


def expanding_warmup(frame, ctx):
    # a rolling mean over up to 120 bars that starts with 1 (expanding in its warm-up)
    return frame.select(C.rolling_mean(120, min_samples=1).alias("clean_grow_x"))


def volume_and_spread(frame, ctx):
    spread = (pl.col("ask_close") - pl.col("bid_close")) / C
    return frame.select((spread.rolling_mean(30) * pl.col("volume").log1p().rolling_sum(30)).alias("clean_vs_x"))


@pytest.mark.parametrize("name,fn,context", [
    ("clean_rec", ewm_like, 600),
    ("clean_day", expanding_day, 1440),
    ("clean_grow", expanding_warmup, 119),
    ("clean_vs", volume_and_spread, 29),
])
def test_clean_families_raise_no_alarm(store, name, fn, context):
    with user_family(store, name, fn, context=context):
        report = validate(store, [name], save=False)
    res = report.family(name)
    assert report.passed and res.verdict == "pass", report.summary()
    assert res.checks["sweep"].status == "pass" and res.checks["sweep"].samples > 0
    assert res.checks["sweep"].compared > 0


def test_a_context_too_short_for_the_sweep_is_a_context_error_not_a_leak(store):
    def needs_200(frame, ctx):
        return frame.select(C.rolling_mean(200).alias("short_sw_x"))

    with user_family(store, "short_sw", needs_200, context=20):
        report = validate(store, ["short_sw"], samples=0, boundary_months=0, save=False)
    res = report.family("short_sw")
    assert res.verdict == "context error", report.summary()
    assert res.checks["sweep"].status == "pass"
    f = res.checks["boundary"].failures[0]
    assert f.column == "short_sw_x" and "declared context 20" in f.detail


def _frame(n: int, start: datetime) -> pl.DataFrame:
    ts = [start + timedelta(minutes=i) for i in range(n)]
    c = 1.1 + np.cumsum(np.full(n, 1e-5))
    return pl.DataFrame({"ts": ts, "open": c - 2e-5, "high": c + 5e-5, "low": c - 5e-5, "close": c,
                         "volume": np.full(n, 10.0), "bid_open": c - 3e-5, "bid_high": c + 4e-5, "bid_low": c - 6e-5,
                         "bid_close": c - 1e-5, "ask_open": c - 1e-5, "ask_high": c + 6e-5, "ask_low": c - 4e-5,
                         "ask_close": c + 1e-5}).with_columns(pl.col("ts").dt.replace_time_zone("UTC").dt.cast_time_unit("us"))


def test_cuts_are_spaced_beyond_the_context_and_checked_rows_lie_between():
    frame = _frame(5000, datetime(2024, 7, 1))
    cuts = plan_cuts({"EURUSD": frame}, 50, np.random.default_rng(1))
    assert len(cuts) > 5000 // (50 + MAX_GAP)
    gaps = (cuts.at[1:] - cuts.end[:-1]) // 60_000_000
    assert gaps.min() >= 2 and gaps.max() <= MAX_GAP
    assert np.all((cuts.end - cuts.at)[:-1] // 60_000_000 == 50)  # the last may end with the data
    ts = frame["ts"].dt.epoch("us").to_numpy()
    influenced = cuts.influenced(ts)
    first = int(np.searchsorted(ts, cuts.at[0]))
    assert not influenced[:first].any() and influenced[first: first + 51].all()


def test_perturbed_bars_stay_valid_and_every_column_changes():
    frame = _frame(400, datetime(2024, 7, 1))
    at = frame["ts"].dt.epoch("us").to_numpy()[[100, 200, 300]]
    cuts = Cuts(at, at - np.array([0, 0, 30_000_000]), at + 10, np.array([0, 1, 2]))
    out = perturb(frame, cuts, np.random.default_rng(0))
    assert out.height == frame.height + 1 - 1  # one removed, one inserted
    assert out["ts"].is_sorted()
    changed = out.filter(pl.col("ts") == frame["ts"][100])
    inserted = out.filter(pl.col("ts") == frame["ts"][300] - timedelta(seconds=30))
    assert frame["ts"][200] not in out["ts"].to_list()
    for row in (changed, inserted):
        o, h, l, c = (row[k][0] for k in ("open", "high", "low", "close"))
        assert l <= min(o, c) and h >= max(o, c)
        for side in ("open", "high", "low", "close"):
            assert row[f"bid_{side}"][0] < row[f"ask_{side}"][0]
    for col in frame.columns:
        if col != "ts":
            assert changed[col][0] != frame[col][100], col
    assert out.filter(pl.col("ts") < frame["ts"][100]).equals(frame.slice(0, 100))
    assert KINDS == ("values", "removed", "inserted")


def test_detection_probability_formula():
    assert detection_probability(0.01, 500) == pytest.approx(1 - 0.99 ** 500)
    assert detection_probability(0.01, 500) > 0.99
    assert detection_probability(1.0, 1) == 1.0 and detection_probability(0.0, 100) == 0.0


def slow_ewm(frame, ctx):
    # x_t = 0.95 x_{t-1} + 0.05 c_t, declared with a context (2,000) far longer than its perturbations reach
    return frame.select(C.ewm_mean(alpha=0.05, adjust=False).alias("clean_long_x"))


def test_a_long_context_family_gets_the_target_cuts_and_a_leak_in_it_is_caught(store):
    """Cuts are spaced by how far perturbations reach (about 330 rows here), not by the declared 2,000 rows:
    the family gets its 500 cuts; the same context with a 1-bar lookahead on ~1 % of rows is caught."""
    with user_family(store, "clean_long", slow_ewm, context=2000):
        report = validate(store, ["clean_long"], samples=0, save=False)
    sweep = report.family("clean_long").checks["sweep"]
    assert report.passed and sweep.status == "pass", report.summary()
    assert sweep.samples >= 500 and "reach of the last cuts" in sweep.note, sweep.note
    with user_family(store, "leak_ahead1", RARE["leak_ahead1"], context=2000):
        report = validate(store, ["leak_ahead1"], samples=0, save=False)
    sweep = report.family("leak_ahead1").checks["sweep"]
    assert sweep.status == "fail" and sweep.failures[0].column == "leak_ahead1_x"
