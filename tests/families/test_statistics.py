"""statistics: against per-window numpy computations of FEATURES.md's definitions, and by hand."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from bqx.families import REGISTRY
from bqx.core.runner import compute
from bqx.numerics import mismatches

W = 60
FLAT = (250, 400)  # rows with c_t = c_(t-1): r = 0 there, so windows inside are constant


def make_bars(n: int = 700, seed: int = 7) -> pl.DataFrame:
    """Mid bars on a 1e-4 tick grid: many flat bars (r = 0 exactly) and a flat stretch FLAT."""
    rng = np.random.default_rng(seed)
    steps = rng.choice([-3, -1, 0, 0, 0, 1, 2, 4], size=n)
    steps[0] = 0
    steps[FLAT[0]:FLAT[1]] = 0
    c = (11000 + np.cumsum(steps)) / 1e4
    o = np.r_[c[0], c[:-1]]
    ts = [datetime(2024, 7, 1, tzinfo=timezone.utc) + timedelta(minutes=k) for k in range(n)]
    return pl.DataFrame({"pair": "EURUSD", "ts": ts, "open": o, "high": np.maximum(o, c),
                         "low": np.minimum(o, c), "close": c})


def _r(c: np.ndarray) -> np.ndarray:
    return np.r_[np.nan, np.log(c[1:] / c[:-1])]


def _windows(x: np.ndarray, w: int):
    """(t, the window L_w(t)) for every row whose window lies inside the data and has no NaN."""
    for t in range(len(x)):
        win = x[max(0, t - w + 1):t + 1]
        if t >= w - 1 and not np.isnan(win).any():
            yield t, win


def _std_zero(win: np.ndarray) -> bool:
    s = np.std(win)
    return bool(s <= 1e-9 * np.mean(np.abs(win)) or s <= 1e-12)


def _entropy(win: np.ndarray) -> float:
    lo, hi = win.min(), win.max()
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi)):
        return 0.0
    counts, _ = np.histogram(win, bins=10, range=(lo, hi))
    p = counts[counts > 0] / len(win)
    return float(-(p * np.log2(p)).sum())


def oracle(c: np.ndarray) -> dict[str, np.ndarray]:
    """Each column from its FEATURES.md definition, one window at a time, NaN where undefined."""
    n = len(c)
    r = _r(c)
    cols = [col.name for col in REGISTRY.get("statistics").columns()]
    out = {name: np.full(n, np.nan) for name in cols}
    for name, w in (("stat_std_15", 15), ("stat_std_60", 60), ("stat_std_240", 240)):
        for t, win in _windows(r, w):
            out[name][t] = np.std(win)
    for t, win in _windows(r, W):
        mean, dev = win.mean(), win - win.mean()
        m2, m3, m4 = (dev ** 2).mean(), (dev ** 3).mean(), (dev ** 4).mean()
        zero = _std_zero(win)
        out["stat_absmean_60"][t] = np.abs(win).mean()
        if not zero:
            out["stat_skew_60"][t] = m3 / m2 ** 1.5
            out["stat_kurt_60"][t] = m4 / m2 ** 2 - 3
            out["stat_ret_z_60"][t] = (r[t] - mean) / np.std(win)
            out["stat_vol_ratio"][t] = np.std(win[-15:]) / np.std(win)
        out["stat_min_60"][t], out["stat_max_60"][t] = win.min(), win.max()
        for q in (10, 25, 50, 75, 90):
            out[f"stat_q{q}_60"][t] = np.quantile(win, q / 100)
        out["stat_mad_60"][t] = np.median(np.abs(win - np.median(win)))
        bpv = math.sqrt(math.pi / 2 * np.mean(np.abs(win[1:]) * np.abs(win[:-1])))
        out["stat_bpv_60"][t] = bpv
        if not (bpv <= 1e-9 * np.abs(win).mean() or bpv <= 1e-12):
            out["stat_jump"][t] = abs(r[t]) / bpv
        a, b = win[:-1], win[1:]
        if not (_std_zero(a) or _std_zero(b)):
            out["stat_autocorr_60"][t] = np.corrcoef(a, b)[0, 1]
        out["stat_entropy_60"][t] = _entropy(win)
        out["stat_up_ratio_60"][t] = np.mean(win > 1e-10)
    out["stat_mom_1"] = r
    out["stat_mom_5"][5:] = np.log(c[5:] / c[:-5])
    return out


def _assert_columns_agree(family: str, got: pl.DataFrame, want: dict[str, np.ndarray]) -> None:
    for col in REGISTRY.get(family).columns():
        a = got[col.name].to_numpy().astype(np.float64)
        bad = mismatches(col, want[col.name], a)
        assert not bad.any(), (
            f"{col.name}: {int(bad.sum())} rows differ, first at row {int(np.argmax(bad))}: "
            f"expected {want[col.name][np.argmax(bad)]!r}, got {a[np.argmax(bad)]!r}"
        )


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return make_bars()


@pytest.fixture(scope="module")
def got(bars) -> pl.DataFrame:
    return compute(bars, ["statistics"])


def test_matches_numpy_per_window(bars, got):
    _assert_columns_agree("statistics", got, oracle(bars["close"].to_numpy()))


def test_constant_windows_are_null_not_noise(got):
    row = got.row(FLAT[1] - 1, named=True)  # L_60 inside the flat stretch: r = 0 sixty times
    assert row["stat_std_15"] == row["stat_std_60"] == 0.0
    assert row["stat_absmean_60"] == row["stat_bpv_60"] == row["stat_mad_60"] == 0.0
    assert row["stat_q10_60"] == row["stat_q90_60"] == 0.0
    assert row["stat_entropy_60"] == 0.0  # min = max
    assert row["stat_up_ratio_60"] == 0.0  # r = 0 is not up
    for name in ("stat_skew_60", "stat_kurt_60", "stat_ret_z_60", "stat_autocorr_60", "stat_jump", "stat_vol_ratio"):
        assert row[name] is None, name
    assert row["stat_std_240"] > 0  # the 240-bar window still reaches moving prices


def test_warmup_rows_are_null(got):
    for col in REGISTRY.get("statistics").columns():
        assert got[col.name].head(col.warmup).null_count() == col.warmup, col.name
        assert got[col.name][col.warmup] is not None, col.name


def test_by_hand():
    """Window 4 over r = (0.01, −0.02, 0.03, 0.00) at row 4, std windows 2 and 4, momentum over 3 bars."""
    r = np.array([0.01, -0.02, 0.03, 0.0])
    c = 100 * np.exp(np.r_[0.0, np.cumsum(r)])
    bars = pl.DataFrame({"pair": "EURUSD", "ts": [datetime(2024, 7, 1, 0, k, tzinfo=timezone.utc) for k in range(5)],
                         "open": c, "high": c, "low": c, "close": c})
    params = {"statistics": {"window": 4, "std_windows": (2, 4), "short": 2, "mom": 3}}
    row = compute(bars, ["statistics"], params=params).row(4, named=True)
    u = 0.005  # mean = 0.02/4 = u; deviations (1, −5, 5, −1)·u; m2 = 52u²/4 = 13u², m3 = 0, m4 = 1252u⁴/4 = 313u⁴
    approx = lambda v: pytest.approx(v, rel=1e-9, abs=1e-15)  # noqa: E731
    assert row["stat_absmean_4"] == approx(0.06 / 4)
    assert row["stat_std_4"] == approx(math.sqrt(13) * u)
    assert row["stat_std_2"] == approx(0.015)  # last two: 0.03, 0.00 -> ±0.015
    assert row["stat_skew_4"] == pytest.approx(0.0, abs=1e-12)  # m3 = 0 up to rounding of the sums
    assert row["stat_kurt_4"] == approx(313 / 169 - 3)
    assert (row["stat_min_4"], row["stat_max_4"]) == (approx(-0.02), approx(0.03))
    # sorted (−0.02, 0, 0.01, 0.03); q at h = 3q: q10 h=0.3, q25 h=0.75, q50 h=1.5, q75 h=2.25, q90 h=2.7
    assert row["stat_q10_4"] == approx(-0.02 + 0.3 * 0.02)
    assert row["stat_q25_4"] == approx(-0.02 + 0.75 * 0.02)
    assert row["stat_q50_4"] == approx(0.005)
    assert row["stat_q75_4"] == approx(0.01 + 0.25 * 0.02)
    assert row["stat_q90_4"] == approx(0.01 + 0.7 * 0.02)
    assert row["stat_mad_4"] == approx(0.015)  # |r − 0.005| = (0.005, 0.025, 0.025, 0.005)
    bpv = math.sqrt(math.pi / 2 * (0.01 * 0.02 + 0.02 * 0.03 + 0.03 * 0.0) / 3)
    assert row["stat_bpv_4"] == approx(bpv)
    assert row["stat_jump"] == 0.0  # |r_t| = 0
    assert row["stat_ret_z_4"] == approx(-1 / math.sqrt(13))  # (0 − u) / (√13·u)
    # pairs (0.01, −0.02), (−0.02, 0.03), (0.03, 0): deviations ×300 are (1, −8, 7) and (−7, 8, −1)
    assert row["stat_autocorr_4"] == approx((-7 - 64 - 7) / 114)
    # 10 bins of 0.005 over [−0.02, 0.03]: −0.02 -> bin 0, 0 -> 4, 0.01 -> 6, 0.03 -> 9: four singletons
    assert row["stat_entropy_4"] == approx(2.0)
    assert row["stat_mom_1"] == 0.0
    assert row["stat_mom_3"] == approx(-0.02 + 0.03 + 0.0)
    assert row["stat_up_ratio_4"] == 0.5
    assert row["stat_vol_ratio"] == approx(0.015 / (math.sqrt(13) * u))


def test_entropy_bins_values_on_edges_as_numpy():
    """Values on bin edges land where numpy.histogram puts them; the maximum falls in the last bin."""
    from bqx.kernels.window_stats import rolling_entropy

    win = np.array([0.0, 0.1, 0.2, 0.2, 0.3, 0.6, 0.7, 1.0])  # edges k·0.1 (0.3 sits just below 3·0.1 in floats)
    counts, _ = np.histogram(win, bins=10, range=(0.0, 1.0))
    assert counts[-1] == 1 and counts[2] == 3  # 0.2, 0.2 and 0.3 share bin 2 in numpy's float edges
    p = counts[counts > 0] / len(win)
    assert rolling_entropy(win, len(win))[-1] == pytest.approx(-(p * np.log2(p)).sum(), rel=1e-12)
    assert rolling_entropy(np.full(8, 0.25), 8)[-1] == 0.0  # min = max


def test_partition_with_context_equals_whole(bars, got):
    fam = REGISTRY.get("statistics")
    start = 500
    part = compute(bars.slice(start - fam.context()), ["statistics"]).slice(fam.context())
    whole = got.slice(start)
    for col in fam.columns():
        bad = mismatches(col, whole[col.name].to_numpy().astype(float), part[col.name].to_numpy().astype(float))
        assert not bad.any(), col.name
