"""volume: against per-window numpy computations, by hand, and NULL without volume."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from bqx.families import REGISTRY
from bqx.core.runner import compute
from bqx.numerics import mismatches

W = 60
ZERO = (300, 400)  # volume 0 (windows inside: zero mean)
CONST = (500, 600)  # volume 7 and flat prices (windows inside: zero std of v and of |r|)


def make_bars(n: int = 700, seed: int = 11) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    steps = rng.choice([-2, -1, 0, 0, 1, 3], size=n)
    steps[0] = 0
    steps[CONST[0]:CONST[1]] = 0
    c = (15000 + np.cumsum(steps)) / 1e4
    o = np.r_[c[0], c[:-1]]
    v = rng.integers(0, 40, size=n).astype(float)
    v[ZERO[0]:ZERO[1]] = 0.0
    v[CONST[0]:CONST[1]] = 7.0
    ts = [datetime(2024, 7, 1, tzinfo=timezone.utc) + timedelta(minutes=k) for k in range(n)]
    return pl.DataFrame({"pair": "GBPUSD", "ts": ts, "open": o, "high": np.maximum(o, c),
                         "low": np.minimum(o, c), "close": c, "volume": v})


def _std_zero(win: np.ndarray, dimensionless: bool) -> bool:
    s = np.std(win)
    return bool(s <= 1e-9 * np.mean(np.abs(win)) or (dimensionless and s <= 1e-12))


def oracle(c: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
    n = len(c)
    r = np.r_[np.nan, np.log(c[1:] / c[:-1])]
    out = {col.name: np.full(n, np.nan) for col in REGISTRY.get("volume").columns()}
    for w in (15, 30, 60):
        for t in range(w - 1, n):
            mean = v[t - w + 1:t + 1].mean()
            if mean > 0:
                out[f"vol_ratio_{w}"][t] = v[t] / mean
    k = np.arange(W)
    for t in range(W - 1, n):
        win = v[t - W + 1:t + 1]
        mean = win.mean()
        out["vol_sum_60"][t] = win.sum()
        if mean > 0:  # v >= 0: the mean is zero only when every volume is
            out["vol_spike"][t] = float(v[t] > 2 * mean)
            out["vol_slope_60"][t] = np.polyfit(k, win, 1)[0] / mean
            out["vol_cv_60"][t] = np.std(win) / mean
        if win.max() > win.min():
            out["vol_pos_60"][t] = (v[t] - win.min()) / (win.max() - win.min())
        if t >= W:  # r exists on the whole window
            rw = r[t - W + 1:t + 1]
            if win.sum() > 0:
                out["vol_wret_60"][t] = (rw * win).sum() / win.sum()
            if not (_std_zero(win, False) or _std_zero(np.abs(rw), True)):
                out["vol_absret_corr_60"][t] = np.corrcoef(win, np.abs(rw))[0, 1]
    return out


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return make_bars()


@pytest.fixture(scope="module")
def got(bars) -> pl.DataFrame:
    return compute(bars, ["volume"])


def test_matches_numpy_per_window(bars, got):
    want = oracle(bars["close"].to_numpy(), bars["volume"].to_numpy())
    for col in REGISTRY.get("volume").columns():
        a = got[col.name].to_numpy().astype(np.float64)
        bad = mismatches(col, want[col.name], a)
        assert not bad.any(), f"{col.name}: {int(bad.sum())} rows differ, first at row {int(np.argmax(bad))}"


def test_zero_volume_windows(got):
    row = got.row(ZERO[1] - 1, named=True)  # L_60 inside the zero-volume stretch
    assert row["vol_sum_60"] == 0.0
    for name in ("vol_ratio_15", "vol_ratio_30", "vol_ratio_60", "vol_spike", "vol_slope_60", "vol_wret_60",
                 "vol_absret_corr_60", "vol_pos_60", "vol_cv_60"):
        assert row[name] is None, name


def test_constant_volume_windows(got):
    row = got.row(CONST[1] - 1, named=True)  # v = 7 sixty times, flat prices
    assert row["vol_ratio_60"] == 1.0 and row["vol_spike"] == 0.0
    assert row["vol_slope_60"] == 0.0 and row["vol_cv_60"] == 0.0
    assert row["vol_sum_60"] == 420.0 and row["vol_wret_60"] == 0.0
    assert row["vol_pos_60"] is None and row["vol_absret_corr_60"] is None


def test_no_volume_gives_null(bars):
    """A pair with no volume at all (HistData): every column NULL."""
    out = compute(bars.with_columns(pl.lit(0.0).alias("volume")), ["volume"])
    assert all(out[c.name].null_count() == out.height for c in REGISTRY.get("volume").columns())
    out = compute(bars.drop("volume"), ["volume"])  # no volume column: conformed to 0
    assert out["vol_sum_60"].null_count() == out.height


def test_by_hand():
    """Windows 2 and 4 over v = (1, 2, 3, 4, 10), row 4: the window (2, 3, 4, 10), mean 19/4 = 4.75."""
    c = np.array([1.0, 1.1, 1.0, 1.2, 1.0])
    v = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    bars = pl.DataFrame({"pair": "GBPUSD", "ts": [datetime(2024, 7, 1, 0, k, tzinfo=timezone.utc) for k in range(5)],
                         "open": c, "high": c, "low": c, "close": c, "volume": v})
    row = compute(bars, ["volume"], params={"volume": {"ratio_windows": (2, 4), "window": 4}}).row(4, named=True)
    assert row["vol_ratio_2"] == pytest.approx(10 / 7)  # (4 + 10)/2 = 7
    assert row["vol_ratio_4"] == pytest.approx(10 / 4.75)
    assert row["vol_spike"] == 1.0  # 10 > 2·4.75 = 9.5
    # positions centred (−1.5, −0.5, 0.5, 1.5): Σ(k − k̄)v = −3 − 1.5 + 2 + 15 = 12.5; Σ(k − k̄)² = 5
    assert row["vol_slope_4"] == pytest.approx(12.5 / 5 / 4.75)
    assert row["vol_sum_4"] == 19.0
    r = np.log(c[1:] / c[:-1])  # (ln 1.1, ln(1/1.1), ln 1.2, ln(1/1.2)), aligned with v[1:]
    assert row["vol_wret_4"] == pytest.approx((r * v[1:]).sum() / 19)
    assert row["vol_absret_corr_4"] == pytest.approx(np.corrcoef(v[1:], np.abs(r))[0, 1])
    assert row["vol_pos_4"] == 1.0  # (10 − 2)/(10 − 2)
    # deviations (−2.75, −1.75, −0.75, 5.25): squares sum to 38.75, var 9.6875
    assert row["vol_cv_4"] == pytest.approx(np.sqrt(38.75 / 4) / 4.75)
