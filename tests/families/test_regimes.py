"""regimes (FEATURES.md stage 2.9): rule tables, brute-force order statistics, crafted trend/range/volatility series."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import polars as pl
import pytest

from bqx.core.declaration import Ctx, PairInfo
from bqx.kernels.order_stats import trailing_order_stats
from bqx.families.regimes import capped_age, regimes, trend_regime
from bqx.core.runner import compute

T0 = datetime(2024, 7, 1, tzinfo=timezone.utc)
SMALL = {"vol_window": 50, "lookback": 20}


def _ctx(params=None) -> Ctx:
    return Ctx(params=regimes.resolve_params(params), baseline_time=T0, pair=PairInfo("EURUSD"))


def _inputs(n: int, seed: int = 0, adx=None, pdi=None, mdi=None, std=None, width=None, close=None) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    c = close if close is not None else 1.1 * np.exp(np.cumsum(rng.normal(0, 1e-4, n)))
    return pl.DataFrame({
        "ts": [T0 + timedelta(minutes=i) for i in range(n)],
        "close": c, "rate_index": 100 * c / c[0],
        "ti_adx_14": adx if adx is not None else np.full(n, 30.0),
        "ti_plus_di_14": pdi if pdi is not None else np.full(n, 30.0),
        "ti_minus_di_14": mdi if mdi is not None else np.full(n, 10.0),
        "stat_std_60": std if std is not None else rng.uniform(1e-5, 2e-4, n),
        "bbr_width_20": width if width is not None else rng.uniform(0.01, 0.05, n),
    }).with_columns(pl.all().exclude("ts").fill_nan(None))


def test_trend_rule_table():
    #                ADX   +DI  −DI  -> rg_trend
    cases = [(30, 35, 20, 2), (30, 25, 20, 1), (22, 25, 20, 1), (30, 20, 35, -2), (22, 18, 20, -1),
             (18, 40, 10, 0), (26, 20, 20, 0), (25, 40, 10, 1), (20.5, 21, 20, 1), (np.nan, 30, 10, np.nan)]
    adx, pdi, mdi, want = (np.array(col, dtype=float) for col in zip(*cases))
    np.testing.assert_array_equal(trend_regime(adx, pdi, mdi), want)


def test_capped_age_rules():
    change = np.array([0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    valid = np.array([0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], dtype=bool)
    # cap 4: NULL until 4 earlier valid values (rows 1..4 before row 5), then 4; 0 on the change, then 1, 2, 3, 4, 4
    want = [np.nan, np.nan, np.nan, np.nan, np.nan, 4, 0, 1, 2, 3, 4, 4, 4, 4]
    np.testing.assert_array_equal(capped_age(change, valid, 4), want)


def test_trailing_order_stats_against_numpy():
    rng = np.random.default_rng(3)
    v = np.round(rng.lognormal(0, 1, 700), 2)  # rounded: many ties
    v[:30] = np.nan
    v[400] = np.nan
    w = 50
    got = trailing_order_stats(v, w, (1 / 3, 2 / 3))
    for t in range(v.size):
        prev = v[t - w:t] if t >= w else np.array([np.nan])
        if np.isnan(prev).any():
            assert np.isnan(got[:, t]).all(), t
            continue
        if np.isnan(v[t]):  # the quantiles of the previous values exist; the fraction <= v_t does not
            assert np.isnan(got[2, t]) and not np.isnan(got[:2, t]).any(), t
            continue
        assert got[0, t] == pytest.approx(np.quantile(prev, 1 / 3), abs=1e-12)
        assert got[1, t] == pytest.approx(np.quantile(prev, 2 / 3), abs=1e-12)
        assert got[2, t] == (prev <= v[t]).sum() / w


def test_volatility_jump_sets_rg_vol_and_pctile():
    n = 400
    std = np.r_[np.full(60, np.nan), np.linspace(1e-4, 1.1e-4, 240), np.full(100, 5e-4)]  # jump at row 300
    out = regimes(_inputs(n, std=std), _ctx(SMALL))
    vol, pct = out["rg_vol"].to_numpy(), out["rg_vol_pctile"].to_numpy()
    assert np.isnan(vol[:110]).all() and not np.isnan(vol[110:]).any()  # 60 NULL std + 50 previous values
    assert (vol[110:300] == 2).all()  # a slowly rising std sits above its trailing 2/3 quantile
    assert vol[300] == 2 and pct[300] == 1.0  # the jump: above every previous value
    # after 50 bars at the new level the window is constant: v = q1/3 = q2/3, so neither < nor >: 1
    assert (vol[351:] == 1).all() and (pct[351:] == 1.0).all()


def test_change_age_transitions_state_persistence():
    n = 200
    adx = np.full(n, 30.0)
    pdi = np.where((np.arange(n) // 30) % 2 == 0, 40.0, 10.0)  # trend flips +2 / −2 every 30 bars
    mdi = 50.0 - pdi
    std = np.r_[np.full(60, np.nan), np.full(n - 60, 1e-4)]  # constant: rg_vol = 1 once it exists
    out = regimes(_inputs(n, adx=adx, pdi=pdi, mdi=mdi, std=std), _ctx(SMALL)).to_pandas()
    trend = np.where((np.arange(n) // 30) % 2 == 0, 2.0, -2.0)
    np.testing.assert_array_equal(out["rg_trend"], trend)
    first = 110  # first bar where rg_vol exists (60 + 50)
    ch = out["rg_change"].to_numpy()
    assert np.isnan(ch[:first + 1]).all()  # NULL on the first bar where both exist
    want_change = (trend[first + 1:] != trend[first:-1]).astype(float)
    np.testing.assert_array_equal(ch[first + 1:], want_change)
    # flips at rows 120, 150, 180: age counts from them, capped at 20
    age = out["rg_age"].to_numpy()
    assert np.isnan(age[first + 1:120]).all()  # fewer than 20 earlier values and no change seen
    assert age[120] == 0 and age[139] == 19 and age[140] == 20 and age[150] == 0
    trend_age = out["rg_trend_age"].to_numpy()
    assert trend_age[30] == 0 and trend_age[45] == 15 and trend_age[59] == 20 and np.isnan(trend_age[10])
    trans = out["rg_transitions_1440"].to_numpy()
    s = pd.Series(ch).rolling(20).sum().to_numpy()
    np.testing.assert_array_equal(trans, s)
    state = out["rg_state"].to_numpy()
    np.testing.assert_array_equal(state[first:], 3 * (trend[first:] + 2) + 1)
    pers = out["rg_persistence"].to_numpy()
    t = 170  # previous 240 bars needed: with 200 rows only the rule's NULL shows
    assert np.isnan(pers[t])


def test_persistence_against_brute_force():
    from bqx.families.regimes import persistence

    rng = np.random.default_rng(5)
    state = rng.integers(0, 15, 600).astype(float)
    state[:40] = np.nan
    state[500] = np.nan
    got = persistence(state, 240)
    for t in range(600):
        prev = state[t - 240:t] if t >= 240 else np.array([np.nan])
        want = np.nan if np.isnan(prev).any() or np.isnan(state[t]) else (prev == state[t]).mean()
        assert got[t] == pytest.approx(want, nan_ok=True), t


def _window_oracles(c: np.ndarray):
    s = pd.Series(np.log(c))
    r = s.diff()
    ac = [np.nan] * len(c)
    for t in range(240, len(c), 37):
        w = r.iloc[t - 239:t + 1].to_numpy()
        ac[t] = np.corrcoef(w[:-1], w[1:])[0, 1]
    vr = (s - s.shift(4)).rolling(240).var(ddof=0) / (4 * r.rolling(240).var(ddof=0))
    eff = (s - s.shift(60)).abs() / r.abs().rolling(60).sum()
    cs = pd.Series(c)
    z = (cs - cs.rolling(240).mean()) / cs.rolling(240).std(ddof=0)
    return np.array(ac), vr.to_numpy(), eff.to_numpy(), z.to_numpy()


@pytest.mark.parametrize("kind", ["trend", "range", "random"])
def test_return_structure_on_crafted_series(kind):
    n = 3000
    rng = np.random.default_rng(11)
    e = rng.normal(0, 1e-4, n)
    if kind == "trend":
        r = 2e-4 + 0.3 * e  # a clean up-trend
    elif kind == "range":
        r = e.copy()  # strongly mean-reverting: r_t = −0.6 r_(t−1) + e_t
        for t in range(1, n):
            r[t] = -0.6 * r[t - 1] + e[t]
    else:
        r = e
    c = 1.1 * np.exp(np.cumsum(np.r_[0.0, r[1:]]))
    out = regimes(_inputs(n, close=c), _ctx(SMALL)).to_pandas()
    ac, vr, eff, z = _window_oracles(c)
    rows = ~np.isnan(ac)
    np.testing.assert_allclose(out["rg_autocorr_240"].to_numpy()[rows], ac[rows], atol=1e-9)
    np.testing.assert_allclose(out["rg_variance_ratio_240"], vr, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(out["rg_efficiency_60"], eff, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(out["rg_breakout_z"], z, rtol=1e-6, atol=1e-7)
    mr = out["rg_mean_reverting"].to_numpy()
    if kind == "trend":
        assert np.nanmin(out["rg_efficiency_60"]) > 0.9 and np.nanmin(out["rg_breakout_z"]) > 1.5
    if kind == "range":
        assert (mr[240:] == 1).all() and np.nanmax(out["rg_variance_ratio_240"]) < 0.5
    if kind == "random":
        assert np.nanmean(mr[240:]) < 0.2  # sampling sd of a 239-pair autocorrelation ≈ 0.065


def test_squeeze_is_width_over_its_trailing_minimum():
    n = 100
    width = np.r_[np.full(19, np.nan), np.linspace(0.05, 0.01, 40), np.linspace(0.01, 0.04, 41)]
    width[70] = 0.0  # a zero width in the window: the ratio is undefined until it leaves
    out = regimes(_inputs(n, width=width), _ctx(SMALL))["rg_squeeze"].to_numpy()
    want = (pd.Series(width) / pd.Series(width).rolling(20).min()).to_numpy().copy()  # pandas 3: read-only view
    want[70:90] = np.nan
    np.testing.assert_allclose(out, want, rtol=1e-12)
    assert np.isnan(out[:38]).all() and not np.isnan(out[38])  # 19 NULL widths + 20-bar window


def _trending_bars(n: int) -> pl.DataFrame:
    rng = np.random.default_rng(2)
    drift = np.where(np.arange(n) < n // 2, 3e-5, -3e-5)  # up, then down
    c = np.round(1.1 * np.exp(np.cumsum(drift + rng.normal(0, 3e-5, n))), 5)
    o = np.r_[c[0], c[:-1]]
    return pl.DataFrame({
        "pair": ["EURUSD"] * n, "ts": [T0 + timedelta(minutes=i) for i in range(n)], "open": o,
        "high": np.maximum(o, c) + 1e-5, "low": np.minimum(o, c) - 1e-5, "close": c, "volume": np.ones(n),
    })


def test_through_the_runner_a_clean_trend_reads_as_trend():
    """All inputs (technical ADX/DI, statistics, bollinger_rate) computed by their families."""
    out = compute(_trending_bars(3000), ["regimes"], params={"regimes": {"vol_window": 500, "lookback": 200}})
    trend = out["rg_trend"].to_numpy()
    assert np.isnan(trend[:27]).all() and not np.isnan(trend[27:]).any()
    assert np.mean(trend[300:1500] > 0) > 0.8 and np.mean(trend[1800:] < 0) > 0.8
    vol = out["rg_vol"].to_numpy()
    assert np.isnan(vol[:560]).all() and not np.isnan(vol[560:]).any()  # 60 + 500 previous std values
    assert out["rg_transitions_1440"].is_null().sum() == 561 + 199
