"""bqx.validate on a store built by the engine: built-ins pass; leaky user families are caught by the
check that should catch them, with the offending column named; clean ones pass; a short context is a
context error."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from bqx.core.registry import REGISTRY
from bqx.validate import latest_validation, require_passed, validate
from bqx.errors import TaskError, UsageError
from tests.validate.conftest import user_family


def test_every_builtin_family_passes(store):
    report = validate(store)
    assert report.passed, report.summary()
    verdicts = {f.family: f.verdict for f in report.families}
    assert set(verdicts) == set(REGISTRY.names())
    assert verdicts.pop("targets") == verdicts.pop("labels") == "exempt"
    assert set(verdicts.values()) == {"pass"}, verdicts
    rate = report.family("rate_index")
    assert rate.checks["truncation"].samples == 2 * 6  # both stored pairs (fewer than 3 partitions), 6 bars each
    assert rate.checks["truncation"].compared == 12 * 4  # 4 columns at each sampled bar
    assert rate.checks["boundary"].samples == 2  # 2024-08 on both pairs
    assert rate.checks["perturbation"].compared > 12 * 4
    latest = latest_validation(store)
    assert latest["passed"] and latest["complete"] and latest["current"]
    assert require_passed(store)["fingerprint"] == report.fingerprint


def _close(frame: pl.DataFrame, name: str, expr: pl.Expr) -> pl.DataFrame:
    return frame.select(expr.cast(pl.Float64).alias(f"{name}_x"))


# leaky families: name -> (compute, the check that must catch it)
def next_bar(frame, ctx):
    return _close(frame, "leak_next", pl.col("close").shift(-1))


def centred(frame, ctx):
    return _close(frame, "leak_centred", pl.col("close").rolling_mean(21, center=True))


def backfill(frame, ctx):
    every5 = pl.when(pl.col("ts").dt.minute() % 5 == 0).then(pl.col("close"))
    return _close(frame, "leak_bfill", every5.backward_fill())


def whole_frame_z(frame, ctx):
    c = pl.col("close")
    return _close(frame, "leak_z", (c - c.mean()) / c.std())


def month_mean(frame, ctx):
    month = pl.col("ts").dt.strftime("%Y-%m")
    return _close(frame, "leak_month", pl.col("close") - pl.col("close").mean().over(month))


LEAKS = {
    "leak_next": (next_bar, "truncation"),
    "leak_centred": (centred, "truncation"),
    "leak_bfill": (backfill, "truncation"),
    "leak_z": (whole_frame_z, "perturbation"),
    "leak_month": (month_mean, "perturbation"),
}


@pytest.mark.parametrize("name", sorted(LEAKS))
def test_leaky_family_is_caught(store, name):
    fn, check = LEAKS[name]
    with user_family(store, name, fn, context=30):
        report = validate(store, [name])
    res = report.family(name)
    assert not report.passed and report.exit_code == 1
    assert res.verdict == "leak"
    caught = res.checks[check]
    assert caught.status == "fail" and caught.mismatches > 0
    first = caught.failures[0]
    assert first.column == f"{name}_x"
    assert first.pair in ("EURUSD", "USDJPY") and first.ts is not None
    assert name in report.summary() and "leak" in report.summary()


def test_whole_frame_statistics_pass_truncation_only_at_the_last_bar(store):
    """At the month's last bar the truncated frame is the whole frame: only perturbation sees the leak there."""
    with user_family(store, "leak_z", whole_frame_z, context=30):
        report = validate(store, ["leak_z"], samples=2)  # the first and the last bar of each month
    res = report.family("leak_z")
    assert res.checks["perturbation"].status == "fail"
    firsts = [f for f in res.checks["truncation"].failures]
    assert all("last bar" not in f.detail for f in firsts)


def reads_targets(frame, ctx):
    return _close(frame, "leak_target", pl.col("target_bqx_h15"))


def looks_ahead(frame, ctx):
    return _close(frame, "leak_look", pl.col("close").rolling_mean(5))


def test_reading_a_target_is_a_static_leak(store):
    with user_family(store, "leak_target", reads_targets, inputs=("targets",), compute=False):
        report = validate(store, ["leak_target"], save=False)
    res = report.family("leak_target")
    assert res.verdict == "leak"
    assert res.checks["static"].status == "fail"
    assert "reads targets: leak_target -> targets" in res.checks["static"].failures[0].detail
    assert set(res.checks) == {"static"}  # no data checks for it


def test_reading_a_target_through_an_input_is_a_static_leak(store):
    def through(frame, ctx):
        return _close(frame, "leak_via", pl.col("leak_target_x"))

    with user_family(store, "leak_target", reads_targets, inputs=("targets",), compute=False):
        with user_family(store, "leak_via", through, inputs=("leak_target",), compute=False):
            report = validate(store, ["leak_via"], save=False)
    detail = report.family("leak_via").checks["static"].failures[0].detail
    assert detail == "reads targets: leak_via -> leak_target -> targets"


def test_declared_lookahead_is_a_static_leak(store):
    with user_family(store, "leak_look", looks_ahead, context=4, lookahead=5, compute=False):
        report = validate(store, ["leak_look"], save=False)
    res = report.family("leak_look")
    assert res.verdict == "leak" and res.checks["static"].status == "fail"
    assert "declares lookahead 5" in res.checks["static"].failures[0].detail


def clean_mean(frame, ctx):
    return _close(frame, "clean_mean", pl.col("close").rolling_mean(30))


def clean_ewm(frame, ctx):
    # x_t = 0.9 x_{t-1} + 0.1 c_t; the seed's weight 0.9^n < 1e-12 after n = 263 rows (context 300)
    return _close(frame, "clean_ewm", pl.col("close").ewm_mean(alpha=0.1, adjust=False))


def clean_on_input(frame, ctx):
    return _close(frame, "clean_input", pl.col("bqx_w15_return").rolling_std(20) * 2.0)


@pytest.mark.parametrize("name,fn,inputs,context", [
    ("clean_mean", clean_mean, ("bars",), 29),
    ("clean_ewm", clean_ewm, ("bars",), 300),
    ("clean_input", clean_on_input, ("bqx",), 19),
])
def test_clean_user_family_passes(store, name, fn, inputs, context):
    with user_family(store, name, fn, inputs=inputs, context=context):
        report = validate(store, [name], samples=8)
    res = report.family(name)
    assert report.passed, report.summary()
    assert res.verdict == "pass"
    for check in ("truncation", "perturbation", "boundary"):
        assert res.checks[check].status == "pass" and res.checks[check].compared > 0
    assert not (store / "validation" / "partial.json").read_text() == ""


def short_context(frame, ctx):
    return _close(frame, "short_ctx", pl.col("close").rolling_mean(200))


def test_short_declared_context_is_a_context_error(store):
    with user_family(store, "short_ctx", short_context, context=10):  # needs 199
        report = validate(store, ["short_ctx"])
    res = report.family("short_ctx")
    assert res.verdict == "context error"
    assert res.checks["truncation"].status == "pass"
    assert res.checks["perturbation"].status == "pass"
    b = res.checks["boundary"]
    assert b.status == "fail"
    first = b.failures[0]
    assert first.column == "short_ctx_x"
    assert first.stored is not None and first.recomputed is None  # continuous has a value, the month with 10 rows none
    assert "declared context 10" in first.detail
    assert "context error" in report.summary()


def test_partial_validation_does_not_replace_the_complete_one(store):
    before = latest_validation(store)
    validate(store, ["rate_index"])
    after = latest_validation(store)
    assert before is None or before["fingerprint"] == after["fingerprint"]
    partial = json.loads((store / "validation" / "partial.json").read_text())
    assert partial["complete"] is False and partial["settings"]["families"] == ["rate_index"]


def test_unknown_family_is_a_usage_error(store):
    with pytest.raises(UsageError, match="unknown family 'nope'"):
        validate(store, ["nope"])


def test_missing_store_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="not a bqx store"):
        validate(tmp_path)
    assert latest_validation(tmp_path) is None
    with pytest.raises(TaskError, match="has not been validated"):
        require_passed(tmp_path)


def test_same_seed_same_samples(store):
    a = validate(store, ["time"], samples=3, save=False)
    b = validate(store, ["time"], samples=3, save=False)
    c = validate(store, ["time"], samples=3, seed=7, save=False)
    assert a.family("time").partitions == b.family("time").partitions
    assert a.family("time").checks["perturbation"].compared == b.family("time").checks["perturbation"].compared
    assert np.isfinite(c.seconds)
