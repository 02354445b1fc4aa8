"""spread: against per-window numpy computations (and a Wilder ATR written out), by hand, NULL rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from fractions import Fraction

import numpy as np
import polars as pl
import pytest

from bqx.families import REGISTRY
from bqx.core.runner import compute
from bqx.numerics import mismatches

W, LONG = 60, 240
FLAT = (700, 800)  # flat prices and a constant spread: sb constant, Δb = Δa = Δm = 0
TICK = 1e-5


def make_bars(n: int = 1200, seed: int = 5) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Mid on a 1e-4 grid, spreads an even number of 1e-5 ticks (bid/ask on the grid); flat stretch FLAT."""
    rng = np.random.default_rng(seed)
    steps = rng.choice([-2, -1, 0, 0, 0, 1, 2], size=n)
    steps[0] = 0
    steps[FLAT[0]:FLAT[1]] = 0
    c = (13000 + np.cumsum(steps)) / 1e4
    o = np.r_[c[0], c[:-1]]
    wick = rng.integers(0, 2, size=n) / 1e4
    wick[FLAT[0]:FLAT[1]] = 0.0
    h, l = np.maximum(o, c) + wick, np.minimum(o, c) - wick
    s_ticks = 2 * rng.integers(1, 4, size=n)  # spread at the close, in ticks
    so_ticks = np.where(rng.random(n) < 0.7, s_ticks, 2 * rng.integers(1, 4, size=n))  # at the open
    s_ticks[FLAT[0]:FLAT[1]] = so_ticks[FLAT[0]:FLAT[1]] = 4
    ts = [datetime(2024, 7, 1, tzinfo=timezone.utc) + timedelta(minutes=k) for k in range(n)]
    bars = pl.DataFrame({
        "pair": "EURUSD", "ts": ts, "open": o, "high": h, "low": l, "close": c, "volume": 1.0,
        "bid_open": o - so_ticks / 2 * TICK, "ask_open": o + so_ticks / 2 * TICK,
        "bid_close": c - s_ticks / 2 * TICK, "ask_close": c + s_ticks / 2 * TICK,
    })
    return bars, s_ticks, so_ticks


def wilder_atr(h: np.ndarray, l: np.ndarray, c: np.ndarray, n: int = 14) -> np.ndarray:
    """ATR as Wilder defines it: TR from the second bar, the first ATR the mean of n TRs, then (13·ATR + TR)/14."""
    tr = np.r_[np.nan, np.maximum.reduce([h[1:] - l[1:], np.abs(h[1:] - c[:-1]), np.abs(l[1:] - c[:-1])])]
    atr = np.full(len(c), np.nan)
    atr[n] = tr[1:n + 1].mean()
    for t in range(n + 1, len(c)):
        atr[t] = ((n - 1) * atr[t - 1] + tr[t]) / n
    return atr


def _std_zero(win: np.ndarray) -> bool:
    return bool(np.std(win) <= 1e-9 * np.mean(np.abs(win)))


def oracle(bars: pl.DataFrame, s_ticks: np.ndarray, so_ticks: np.ndarray) -> dict[str, np.ndarray]:
    b, a = bars["bid_close"].to_numpy(), bars["ask_close"].to_numpy()
    h, l, c = bars["high"].to_numpy(), bars["low"].to_numpy(), bars["close"].to_numpy()
    n = len(c)
    m, s = (a + b) / 2, a - b
    sb = s / m * 1e4
    out = {col.name: np.full(n, np.nan) for col in REGISTRY.get("spread").columns()}
    out["spr_bps"] = sb
    out["spr_change"][1:] = np.diff(sb)
    k = np.arange(W)
    above = np.zeros(n, dtype=bool)
    db, da, dm = np.r_[np.nan, np.diff(b)], np.r_[np.nan, np.diff(a)], np.r_[np.nan, np.diff(m)]
    for t in range(W - 1, n):
        win = sb[t - W + 1:t + 1]
        mean = win.mean()
        out["spr_mean_60"][t], out["spr_std_60"][t] = mean, np.std(win)
        out["spr_min_60"][t], out["spr_max_60"][t] = win.min(), win.max()
        out["spr_range_60"][t] = win.max() - win.min()
        out["spr_pctile_60"][t] = np.mean(win <= sb[t])
        out["spr_slope_60"][t] = np.polyfit(k, win, 1)[0]
        exact_mean = sum(map(Fraction, win)) / W  # exact: a constant window equals its mean, not above it
        above[t] = Fraction(sb[t]) > exact_mean
        out["spr_spike"][t] = float(Fraction(sb[t]) > 2 * exact_mean)
        if not _std_zero(win):
            out["spr_z_60"][t] = (sb[t] - mean) / np.std(win)
        out["spr_ratio_5_60"][t] = win[-5:].mean() / mean
        if t >= W:
            wb, wa, wm = db[t - W + 1:t + 1], da[t - W + 1:t + 1], dm[t - W + 1:t + 1]
            if not (_std_zero(wb) or _std_zero(wa)):
                out["spr_bid_ask_corr_60"][t] = np.corrcoef(wb, wa)[0, 1]
            if not _std_zero(wm):
                out["spr_toxicity"][t] = np.std(wm[-5:]) / np.std(wm) * (win[-5:].mean() / mean)
    for t in range(LONG - 1, n):
        win = sb[t - LONG + 1:t + 1]
        out["spr_rel_240"][t] = sb[t] / win.mean()
        out["spr_q90_240"][t] = np.quantile(win, 0.9)
    out["spr_to_range"] = np.where(h > l, s / np.where(h > l, h - l, 1.0), np.nan)
    out["spr_to_atr"] = s / wilder_atr(h, l, c)
    for t in range(W - 1, n):
        run = 0
        while run < 60 and above[t - run]:
            run += 1
        # a run that reaches a row without spr_mean_60 (rows < 59) is NULL
        out["spr_streak"][t] = np.nan if run < 60 and t - run < W - 1 else run
    out["spr_oc_change_bps"] = (s_ticks - so_ticks) * TICK / m * 1e4  # exact spreads from their tick counts
    return out


@pytest.fixture(scope="module")
def data():
    return make_bars()


@pytest.fixture(scope="module")
def got(data) -> pl.DataFrame:
    return compute(data[0], ["spread"])


def test_matches_numpy_per_window(data, got):
    want = oracle(*data)
    for col in REGISTRY.get("spread").columns():
        a = got[col.name].to_numpy().astype(np.float64)
        bad = mismatches(col, want[col.name], a)
        assert not bad.any(), (f"{col.name}: {int(bad.sum())} rows differ, first at row {int(np.argmax(bad))}: "
                               f"expected {want[col.name][np.argmax(bad)]!r}, got {a[np.argmax(bad)]!r}")


def test_atr_is_talib_and_needs_its_context(data, got):
    """TA-Lib's ATR equals Wilder's; a partition with the declared context reproduces the whole series."""
    fam = REGISTRY.get("spread")
    assert fam.context() >= 14 * np.log(1e12)  # seed weight (13/14)^context < 1e-12
    bars = data[0]
    start = 1100
    part = compute(bars.slice(start - fam.context()), ["spread"]).slice(fam.context())
    for col in fam.columns():
        bad = mismatches(col, got[col.name].slice(start).to_numpy().astype(float), part[col.name].to_numpy().astype(float))
        assert not bad.any(), col.name
    short = compute(bars.slice(start - 100), ["spread"]).slice(100)  # too little context: the seed still shows
    assert not np.allclose(short["spr_to_atr"].to_numpy(), got["spr_to_atr"].slice(start).to_numpy(), rtol=1e-12, atol=0)


def test_constant_spread_window(got):
    row = got.row(FLAT[1] - 1, named=True)  # L_60 inside the flat stretch: sb the same sixty times
    assert row["spr_std_60"] == 0.0 and row["spr_range_60"] == 0.0 and row["spr_slope_60"] == 0.0
    assert row["spr_pctile_60"] == 1.0 and row["spr_ratio_5_60"] == 1.0 and row["spr_change"] == 0.0
    assert row["spr_streak"] == 0.0 and row["spr_spike"] == 0.0  # sb equals its mean: does not exceed it
    assert row["spr_oc_change_bps"] == 0.0
    assert row["spr_z_60"] is None and row["spr_bid_ask_corr_60"] is None and row["spr_toxicity"] is None
    assert row["spr_to_range"] is None  # h = l


def test_no_bidask_gives_null(data):
    bars = data[0].drop("bid_open", "ask_open", "bid_close", "ask_close")
    out = compute(bars, ["spread"])
    assert all(out[c.name].null_count() == out.height for c in REGISTRY.get("spread").columns())


def test_no_opens_nulls_only_oc_change(data, got):
    out = compute(data[0].drop("bid_open", "ask_open"), ["spread"])
    assert out["spr_oc_change_bps"].null_count() == out.height
    assert out.drop("spr_oc_change_bps").equals(got.drop("spr_oc_change_bps"))


def _frame(pair: str, sb: list[float]) -> pl.DataFrame:
    s = np.array(sb) * 1e-4  # mid 1: sb = s · 10^4
    n = len(sb)
    return pl.DataFrame({"pair": pair, "ts": [datetime(2024, 7, 1, 0, k, tzinfo=timezone.utc) for k in range(n)],
                         "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0,
                         "bid_close": 1.0 - s / 2, "ask_close": 1.0 + s / 2, "bid_open": 1.0 - s / 2, "ask_open": 1.0 + s / 2})


def test_streak_by_hand():
    """Window 3, cap 3. EURUSD sb = 1 1 1 2 3 4 5 1 2; GBPUSD sb = 1 1 2 3 (a run into the NULL means)."""
    params = {"spread": {"window": 3, "streak_cap": 3, "short": 2, "long": 4, "atr": 3, "atr_context": 50}}
    bars = pl.concat([_frame("EURUSD", [1, 1, 1, 2, 3, 4, 5, 1, 2]), _frame("GBPUSD", [1, 1, 2, 3])])
    out = compute(bars, ["spread"], params=params)
    eur = out.filter(pl.col("pair") == "EURUSD")
    # means over 3: t2 1 (1 > 1? no), t3 4/3 (2 > yes), t4 2 (3 > yes), t5 3 (4 > yes), t6 4 (5 > yes),
    # t7 10/3 (1 no), t8 8/3 (2 no): runs 0, 1, 2, 3, 3 (cap), 0, 0
    assert eur["spr_streak"].to_list() == [None, None, 0, 1, 2, 3, 3, 0, 0]
    assert eur["spr_mean_3"].to_list()[2:5] == pytest.approx([1.0, 4 / 3, 2.0])
    assert eur["spr_pctile_3"].to_list()[3] == 1.0 and eur["spr_pctile_3"].to_list()[7] == pytest.approx(1 / 3)
    # t2: 2 > 4/3, and the run reaches t1 whose mean is NULL; t3: 3 > 2, t2 above, then t1 again
    gbp = out.filter(pl.col("pair") == "GBPUSD")
    assert gbp["spr_streak"].to_list() == [None, None, None, None]
