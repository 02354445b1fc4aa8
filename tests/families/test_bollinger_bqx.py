"""bollinger_bqx: hand-computed bands, pandas rolling mean/std as the oracle, the σ-zero rule, warm-up."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import polars as pl
import pytest

from bqx.core.declaration import Ctx
from bqx.families.bollinger_bqx import DEFAULTS, bollinger_bqx, columns
from bqx.core.runner import compute
from bqx.numerics import mismatches

NAN = np.nan


def run(y: np.ndarray, windows=(3, 4)) -> pl.DataFrame:
    frame = pl.DataFrame({"bqx_w15_return": pl.Series(y, dtype=pl.Float64, nan_to_null=True)})
    ctx = Ctx(params={"windows": windows, "k": 2.0}, baseline_time=datetime(2024, 7, 1, tzinfo=timezone.utc))
    return bollinger_bqx(frame, ctx)


def test_hand_computed_bands():
    # last 3 values [0.001, 0.002, 0.003]: mid = 0.002, σ = sqrt((1e-6 + 0 + 1e-6)/3) = 0.001·sqrt(2/3)
    # last 4 values [0.004, 0.001, 0.002, 0.003]: mid = 0.0025, σ = sqrt((2.25 + 2.25 + 0.25 + 0.25)e-6/4) = 0.001·sqrt(1.25)
    y = np.array([0.004, 0.001, 0.002, 0.003])
    row = run(y).row(3, named=True)
    s3, s4 = 0.001 * np.sqrt(2 / 3), 0.001 * np.sqrt(1.25)
    assert row["bbq_mid_3"] == pytest.approx(0.002, rel=1e-12)
    assert row["bbq_upper_3"] == pytest.approx(0.002 + 2 * s3, rel=1e-12)
    assert row["bbq_lower_3"] == pytest.approx(0.002 - 2 * s3, rel=1e-12)
    assert row["bbq_width_3"] == pytest.approx(4 * s3, rel=1e-12)
    assert row["bbq_pctb_3"] == pytest.approx((0.003 - (0.002 - 2 * s3)) / (4 * s3), rel=1e-12)
    assert row["bbq_mid_4"] == pytest.approx(0.0025, rel=1e-12)
    assert row["bbq_pctb_4"] == pytest.approx((0.003 - (0.0025 - 2 * s4)) / (4 * s4), rel=1e-12)
    assert row["bbq_squeeze"] == pytest.approx((4 * s3) / (4 * s4), rel=1e-12)


def test_constant_window_has_zero_width_and_null_ratios():
    # y = 0 on flat prices: σ = 0 (≤ 1e-12), so width = 0, upper = lower = mid, pctb and squeeze NULL
    out = run(np.r_[0.001, 0.0, 0.0, 0.0, 0.0, 0.0])
    row = out.row(5, named=True)
    assert row["bbq_width_3"] == 0.0 and row["bbq_upper_3"] == row["bbq_lower_3"] == row["bbq_mid_3"]
    assert row["bbq_pctb_3"] is None and row["bbq_squeeze"] is None
    # σ_3 = 0 but σ_4 > 0 at row 3 ([0.001, 0, 0, 0] is not constant): squeeze = 0 / width_4 = 0
    assert out.row(3, named=True)["bbq_squeeze"] == 0.0
    # tiny noise around a constant is also zero: σ ≈ 4.7e-15 ≤ 1e-9 · mean |y| = 1e-12
    noisy = run(np.r_[1e-3, 1e-3 + 1e-14, 1e-3 - 1e-14, 1e-3])
    assert noisy["bbq_pctb_3"][3] is None and noisy["bbq_width_3"][3] == 0.0


def test_warmup(sample):
    out = compute(sample(("EURUSD",), "2024-07", 1), ["bollinger_bqx"])
    for col in columns(DEFAULTS):
        s = out[col.name]
        assert col.warmup == 15 + (120 if col.name == "bbq_squeeze" else int(col.name.rsplit("_", 1)[1])) - 1
        assert s.head(col.warmup).null_count() == col.warmup, col.name
        assert s[col.warmup] is not None, col.name


def test_matches_pandas_on_sample_bars(sample):
    out = compute(sample(("EURUSD", "USDJPY"), "2024-07", 1), ["bqx", "bollinger_bqx"])
    cols = {c.name: c for c in columns(DEFAULTS)}
    for _, part in out.group_by("pair"):
        y = part["bqx_w15_return"].to_pandas()
        expected: dict[str, np.ndarray] = {}
        for n in DEFAULTS["windows"]:
            mid = y.rolling(n).mean()
            sd = y.rolling(n).std(ddof=0)
            zero = (sd <= 1e-9 * y.abs().rolling(n).mean()) | (sd <= 1e-12)
            sd = sd.where(~zero, 0.0)
            expected[f"bbq_mid_{n}"] = mid
            expected[f"bbq_upper_{n}"] = mid + 2 * sd
            expected[f"bbq_lower_{n}"] = mid - 2 * sd
            expected[f"bbq_width_{n}"] = 4 * sd
            expected[f"bbq_pctb_{n}"] = ((y - (mid - 2 * sd)) / (4 * sd)).where(~zero)
        expected["bbq_squeeze"] = (expected["bbq_width_20"] / expected["bbq_width_120"]).where(expected["bbq_width_120"] > 0)
        for name, want in expected.items():
            bad = mismatches(cols[name], pd.Series(want).to_numpy(dtype=float), part[name].to_numpy())
            assert not bad.any(), (name, np.flatnonzero(bad)[:5])
