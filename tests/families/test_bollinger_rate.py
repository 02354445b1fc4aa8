"""bollinger_rate: Bollinger bands of the rate index against numpy, by hand, and on constant windows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from bqx.families import REGISTRY
from bqx.core.runner import compute
from bqx.numerics import mismatches

FLAT = (300, 450)


def make_bars(n: int = 600, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    steps = rng.choice([-2, -1, 0, 0, 1, 2], size=n)
    steps[FLAT[0]:FLAT[1]] = 0
    c = (9000 + np.cumsum(steps)) / 1e4
    ts = [datetime(2024, 7, 1, tzinfo=timezone.utc) + timedelta(minutes=k) for k in range(n)]
    return pl.DataFrame({"pair": "AUDUSD", "ts": ts, "open": c, "high": c, "low": c, "close": c})


@pytest.fixture(scope="module")
def got() -> pl.DataFrame:
    return compute(make_bars(), ["rate_index", "bollinger_rate"])


def test_matches_numpy_per_window(got):
    x = got["rate_index"].to_numpy()
    assert x[0] == pytest.approx(100.0, rel=1e-15)  # the baseline is the first bar of the month
    for col in REGISTRY.get("bollinger_rate").columns():
        n = int(col.name.rsplit("_", 1)[1])
        want = np.full(len(x), np.nan)
        for t in range(n - 1, len(x)):
            win = x[t - n + 1:t + 1]
            mid, sigma = win.mean(), np.std(win)
            upper, lower = mid + 2 * sigma, mid - 2 * sigma
            if col.name.startswith("bbr_pctb"):
                if sigma > 1e-9 * np.abs(win).mean():
                    want[t] = (x[t] - lower) / (upper - lower)
            else:
                want[t] = {"mid": mid, "upper": upper, "lower": lower,
                           "width": (upper - lower) / mid * 100}[col.name.split("_")[1]]
        if col.name.startswith("bbr_width"):
            want[np.isclose(want, 0.0, atol=1e-12)] = 0.0  # numpy's σ of a constant window is rounding noise
        bad = mismatches(col, want, got[col.name].to_numpy().astype(float))
        assert not bad.any(), f"{col.name}: {int(bad.sum())} rows differ, first at {int(np.argmax(bad))}"


def test_constant_window(got):
    row = got.row(FLAT[1] - 1, named=True)  # 150 flat bars: every window up to 120 is constant
    for n in (20, 30, 60, 120):
        assert row[f"bbr_upper_{n}"] == row[f"bbr_mid_{n}"] == row[f"bbr_lower_{n}"] == row["rate_index"]
        assert row[f"bbr_width_{n}"] == 0.0
        assert row[f"bbr_pctb_{n}"] is None


def test_by_hand():
    """n = 4 over x = 100 · (1, 1.02, 0.98, 1.04, 0.96) at row 4: window (102, 98, 104, 96)."""
    c = np.array([1.0, 1.02, 0.98, 1.04, 0.96])
    bars = pl.DataFrame({"pair": "AUDUSD", "ts": [datetime(2024, 7, 1, 0, k, tzinfo=timezone.utc) for k in range(5)],
                         "open": c, "high": c, "low": c, "close": c})
    row = compute(bars, ["bollinger_rate"], params={"bollinger_rate": {"windows": (4,)}}).row(4, named=True)
    # mean 400/4 = 100; deviations (2, −2, 4, −4): var (4 + 4 + 16 + 16)/4 = 10, σ = √10
    sigma = np.sqrt(10.0)
    assert row["bbr_mid_4"] == pytest.approx(100.0, rel=1e-12)
    assert row["bbr_upper_4"] == pytest.approx(100 + 2 * sigma, rel=1e-12)
    assert row["bbr_lower_4"] == pytest.approx(100 - 2 * sigma, rel=1e-12)
    assert row["bbr_width_4"] == pytest.approx(4 * sigma / 100 * 100, rel=1e-12)
    assert row["bbr_pctb_4"] == pytest.approx((96 - (100 - 2 * sigma)) / (4 * sigma), rel=1e-12)
