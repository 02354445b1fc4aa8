"""technical (FEATURES.md stage S2.2): oracles from the `ta` package, pandas and hand cases; NULL rules."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import polars as pl
import pytest
import ta
import talib

from bqx.core.runner import compute
from tests.conftest import sample_bars

PAIRS = ("EURUSD", "USDJPY", "GBPNZD")
ROWS = 6000
CONVERGED = 2000  # compare recursive indicators with differently seeded oracles after this many rows


def _frames(bars: pl.DataFrame) -> dict[str, pd.DataFrame]:
    out = compute(bars, ["rate_index", "technical"])
    return {p: f.drop("pair").to_pandas() for (p,), f in out.partition_by("pair", as_dict=True).items()}


@pytest.fixture(scope="module")
def market() -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """(bars, rate index + technical) per pair: the first ROWS bars of July 2024."""
    bars = sample_bars(PAIRS, "2024-07", 1).group_by("pair", maintain_order=True).head(ROWS)
    res = _frames(bars)
    return {p: (bars.filter(pl.col("pair") == p).to_pandas(), res[p]) for p in PAIRS}


def _close(a, b, atol, rows=slice(CONVERGED, None)):
    a = np.asarray(a, dtype=float)[rows]
    b = np.asarray(b, dtype=float)[rows]
    assert np.isnan(a).sum() == 0 and np.isnan(b).sum() == 0
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=atol)


def _ohlc(f: pd.DataFrame):
    return f["rate_index_high"], f["rate_index_low"], f["rate_index"]


@pytest.mark.parametrize("pair", PAIRS)
def test_momentum_against_ta(market, pair):
    bars, f = market[pair]
    h, l, c = _ohlc(f)
    _close(f["ti_rsi_14"], ta.momentum.RSIIndicator(c, 14).rsi(), 1e-6)
    _close(f["ti_rsi_21"], ta.momentum.RSIIndicator(c, 21).rsi(), 1e-6)
    fast = ta.momentum.StochasticOscillator(h, l, c, 14, 3)
    _close(f["ti_stoch_k"], fast.stoch_signal(), 1e-8)  # slowk = SMA3 of fast %K
    _close(f["ti_stoch_d"], fast.stoch_signal().rolling(3).mean(), 1e-8)  # slowd = SMA3 of slowk
    rsi = ta.momentum.RSIIndicator(c, 14).rsi()  # ta's StochRSI uses one window for both: build fastk by hand
    lo, hi = rsi.rolling(5).min(), rsi.rolling(5).max()
    _close(f["ti_stochrsi_k"], 100 * (rsi - lo) / (hi - lo), 1e-5)
    _close(f["ti_willr_14"], ta.momentum.WilliamsRIndicator(h, l, c, 14).williams_r(), 1e-8)
    _close(f["ti_cci_20"], ta.trend.CCIIndicator(h, l, c, 20).cci(), 1e-7)
    _close(f["ti_roc_12"], ta.momentum.ROCIndicator(c, 12).roc(), 1e-9)
    _close(f["ti_trix_15"], ta.trend.TRIXIndicator(c, 15).trix(), 1e-9)
    _close(f["ti_ultosc"], ta.momentum.UltimateOscillator(h, l, c, 7, 14, 28).ultimate_oscillator(), 1e-7)
    # MFI compares typical prices with FEATURES.md's stable rule, which ta's exact comparison is not:
    # tests/families/test_stable_comparisons.py checks it against a loop oracle and TA-Lib


@pytest.mark.parametrize("pair", PAIRS)
def test_trend_and_volatility_against_ta(market, pair):
    _, f = market[pair]
    h, l, c = _ohlc(f)
    macd = ta.trend.MACD(c, 26, 12, 9)
    _close(f["ti_macd"], macd.macd(), 1e-10)
    _close(f["ti_macd_signal"], macd.macd_signal(), 1e-10)
    _close(f["ti_macd_hist"], macd.macd_diff(), 1e-10)
    _close(f["ti_atr_14"], ta.volatility.AverageTrueRange(h, l, c, 14).average_true_range(), 1e-10)
    _close(f["ti_ulcer_14"], ta.volatility.UlcerIndex(c, 14).ulcer_index(), 1e-9)
    _close(f["ti_mass_25"], ta.trend.MassIndex(h, l, 9, 25).mass_index(), 1e-7)
    hband = ta.volatility.DonchianChannel(h, l, c, 20).donchian_channel_hband()
    _close(f["ti_dc_high_dist"], (hband - c) / c, 1e-12)
    _close(f["ti_ema20_dist"], (c - ta.trend.EMAIndicator(c, 20).ema_indicator()) / c, 1e-12)


@pytest.mark.parametrize("pair", PAIRS)
def test_talib_columns_are_talib_where_defined(market, pair):
    """RSI and CCI are redone in numba to see their zero denominators: they must equal TA-Lib's own."""
    _, f = market[pair]
    h, l, c = (s.to_numpy() for s in _ohlc(f))
    for col, want in (("ti_rsi_14", talib.RSI(c, 14)), ("ti_rsi_21", talib.RSI(c, 21)), ("ti_cci_20", talib.CCI(h, l, c, 20)),
                      ("ti_willr_14", talib.WILLR(h, l, c, 14))):  # ADX: stable comparisons, not TA-Lib's
        got = f[col].to_numpy(dtype=float)
        assert np.array_equal(np.isnan(got), np.isnan(want)), col  # no flat windows in the sample: same warm-up
        # CCI: (tp − mean) cancels ~5 digits and TA-Lib sums its window in another order: 1e-8 absolute of ±100
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-8 if col == "ti_cci_20" else 1e-12, err_msg=col)


def _wilder(x: pd.Series, n: int) -> pd.Series:
    return x.ewm(alpha=1 / n, adjust=False).mean()


@pytest.mark.parametrize("pair", PAIRS)
def test_adx_and_di_against_a_pandas_wilder(market, pair):
    """ta's ADX is off by one bar, so the oracle is Wilder's definition written in pandas, with FEATURES.md's
    stable comparison (moves within ε = 1e-9 · x_t are equal)."""
    _, f = market[pair]
    h, l, c = _ohlc(f)
    up, down, eps = h.diff(), -l.diff(), 1e-9 * c
    pdm = np.where((up > down + eps) & (up > eps), up, 0.0)
    mdm = np.where((down > up + eps) & (down > eps), down, 0.0)
    tr = pd.concat([h - l, (h - c.shift()).abs(), (l - c.shift()).abs()], axis=1).max(axis=1)
    atr = _wilder(tr.iloc[1:], 14)
    pdi = 100 * _wilder(pd.Series(pdm[1:], atr.index), 14) / atr
    mdi = 100 * _wilder(pd.Series(mdm[1:], atr.index), 14) / atr
    adx = _wilder(100 * (pdi - mdi).abs() / (pdi + mdi), 14)
    rows = slice(CONVERGED - 1, None)
    _close(f["ti_plus_di_14"].iloc[1:], pdi, 1e-7, rows)
    _close(f["ti_minus_di_14"].iloc[1:], mdi, 1e-7, rows)
    _close(f["ti_adx_14"].iloc[1:], adx, 1e-7, rows)
    _close(f["ti_adxr_14"].iloc[1:], (adx + adx.shift(13)) / 2, 1e-7, rows)


@pytest.mark.parametrize("pair", PAIRS)
def test_own_definitions_against_pandas(market, pair):
    _, f = market[pair]
    h, l, c = _ohlc(f)
    o = f["rate_index_open"]
    every = slice(200, None)
    d = c.diff()
    cmo = 100 * (d.clip(lower=0).rolling(14).sum() - (-d).clip(lower=0).rolling(14).sum()) / d.abs().rolling(14).sum()
    _close(f["ti_cmo_14"], cmo, 1e-8, every)
    hl2 = np.log(h / l) ** 2
    _close(f["ti_parkinson_20"], np.sqrt(hl2.rolling(20).mean() / (4 * np.log(2))), 1e-12, every)
    gk = (0.5 * hl2 - (2 * np.log(2) - 1) * np.log(c / o) ** 2).rolling(20).mean()
    _close(f["ti_gk_20"], np.sqrt(gk), 1e-12, every)
    ema20 = c.ewm(span=20, adjust=False).mean()
    atr10 = _wilder(pd.concat([h - l, (h - c.shift()).abs(), (l - c.shift()).abs()], axis=1).max(axis=1).iloc[1:], 10)
    upper, lower = ema20 + 2 * atr10, ema20 - 2 * atr10
    _close(f["ti_kc_upper_dist"], (upper - c) / c, 1e-11)
    _close(f["ti_kc_pos"], (c - lower) / (upper - lower), 1e-8)
    hh, ll = h.rolling(20).max(), l.rolling(20).min()
    _close(f["ti_dc_low_dist"], (c - ll) / c, 1e-12, every)
    _close(f["ti_dc_pos"], (c - ll) / (hh - ll), 1e-10, every)
    e = (h - l).ewm(span=10, adjust=False).mean()
    _close(f["ti_chaikin_vol_10"], 100 * (e / e.shift(10) - 1), 1e-6)
    sma20 = c.rolling(20).mean()
    _close(f["ti_sma20_slope"], sma20.diff() / c, 1e-12, every)
    _close(f["ti_sma50_slope"], c.rolling(50).mean().diff() / c, 1e-12, every)
    _close(f["ti_ppo"], 100 * (c.rolling(12).mean() - c.rolling(26).mean()) / c.rolling(26).mean(), 1e-8, every)
    _close(f["ti_tenkan_dist"], (c - (h.rolling(9).max() + l.rolling(9).min()) / 2) / c, 1e-12, every)
    _close(f["ti_atr_ratio"], f["ti_atr_14"] / talib.ATR(h.to_numpy(), l.to_numpy(), c.to_numpy(), 100), 1e-12)
    # Aroon with TA-Lib's tie rule: the most recent extreme of the 15 bars counts
    up = h.rolling(15).apply(lambda w: 14 - np.argmax(w[::-1]), raw=True) / 14 * 100
    dn = l.rolling(15).apply(lambda w: 14 - np.argmin(w[::-1]), raw=True) / 14 * 100
    _close(f["ti_aroonosc_14"], up - dn, 1e-9, every)


def test_cmo_and_donchian_by_hand():
    # x_0 = 100 and 20 changes; CMO over the last 14 changes = 100 · (Σ up − Σ down) / (Σ up + Σ down)
    deltas = np.array([0.5, 0.5, -1, 0.25, 0.25, 0.5, 1, -0.5, 1.5, -1, 2, 0.5, -0.25, 0.75, -1.5, 1, 0.25, -0.5, 1, 0.5])
    x = 100 + np.r_[0, np.cumsum(deltas)]
    out = _technical_on_closes(x)
    last14 = deltas[-14:]
    up, down = last14[last14 > 0].sum(), -last14[last14 < 0].sum()
    assert (up, down) == (1 + 1.5 + 2 + 0.5 + 0.75 + 1 + 0.25 + 1 + 0.5, 0.5 + 1 + 0.25 + 1.5 + 0.5)  # 8.5, 3.75
    assert out["ti_cmo_14"][20] == pytest.approx(100 * (8.5 - 3.75) / (8.5 + 3.75))
    assert np.isnan(out["ti_cmo_14"][13]) and not np.isnan(out["ti_cmo_14"][14])
    # bars have high = close + 0.1, low = close − 0.1 (rate index = 100 · c / c_0 = c here)
    hh, ll = (x[-20:] + 0.1).max(), (x[-20:] - 0.1).min()  # rows 1 .. 20
    assert out["ti_dc_pos"][20] == pytest.approx((x[20] - ll) / (hh - ll))
    assert out["ti_dc_high_dist"][20] == pytest.approx((hh - x[20]) / x[20])


def _technical_on_closes(closes, highs=None, lows=None, start=datetime(2024, 7, 1, tzinfo=timezone.utc), step=None):
    c = np.asarray(closes, dtype=float)
    n = len(c)
    ts = [start + (step[i] if step is not None else timedelta(minutes=i)) for i in range(n)]
    bars = pl.DataFrame({
        "pair": ["EURUSD"] * n, "ts": ts, "open": np.r_[c[0], c[:-1]],
        "high": c + 0.1 if highs is None else highs, "low": c - 0.1 if lows is None else lows,
        "close": c, "volume": np.full(n, 3.0),
    })
    out = compute(bars, ["technical"])
    return {k: out[k].to_numpy().astype(float) for k in out.columns if k.startswith("ti_")}


def _rough_series(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.round(1.10 * np.exp(np.cumsum(rng.normal(0, 1e-4, n))), 5)


def test_flat_start_is_null_where_talib_returns_zero():
    """100 flat bars, then a quantised walk: TA-Lib's 0 for 0/0 becomes NULL (FEATURES.md technical)."""
    walk = _rough_series(900, 1)
    c = np.r_[np.full(100, 1.1), walk]
    out = _technical_on_closes(c, highs=np.r_[np.full(100, 1.1), walk + 2e-5], lows=np.r_[np.full(100, 1.1), walk - 2e-5])
    x = 100 * c / c[0]
    assert (talib.RSI(x, 14)[14:100] == 0).all()  # TA-Lib's placeholder on the flat start
    for col in ("ti_rsi_14", "ti_rsi_21", "ti_stoch_k", "ti_stoch_d", "ti_stochrsi_k", "ti_willr_14", "ti_cci_20",
                "ti_cmo_14", "ti_mfi_14", "ti_ultosc", "ti_plus_di_14", "ti_minus_di_14", "ti_adx_14", "ti_adxr_14",
                "ti_kc_pos", "ti_dc_pos", "ti_chaikin_vol_10", "ti_mass_25"):
        assert np.isnan(out[col][:100]).all(), col
        assert not np.isnan(out[col][400:]).any(), col
    # ADX takes TA-Lib's values from the first bar whose smoothed true range is positive (bar 100)
    adx = talib.ADX(100 * np.r_[np.full(100, 1.1), walk + 2e-5] / 1.1, 100 * np.r_[np.full(100, 1.1), walk - 2e-5] / 1.1, x, 14)
    assert np.isnan(out["ti_adx_14"][99]) and out["ti_adx_14"][100] == pytest.approx(adx[100], abs=1e-9)
    assert out["ti_atr_14"][50] == 0.0 and out["ti_sma20_slope"][50] == 0.0  # defined zeros stay zeros


def test_flat_stretch_gaps_and_spike():
    """A 500-bar flat stretch, week-end gaps in ts and a 2 % spike: never NaN/inf, NULL only where undefined."""
    c = _rough_series(4000, 2)
    c[1500:2000] = c[1499]
    c[3000] *= 1.02
    step = [timedelta(minutes=i + (2880 if i >= 1000 else 0) + (2880 if i >= 2500 else 0)) for i in range(4000)]
    out = _technical_on_closes(c, highs=c + 2e-5, lows=c - 2e-5, step=step)
    for col, v in out.items():
        assert np.isfinite(v[~np.isnan(v)]).all(), col
    # inside the flat stretch: the 14-bar range is 2e-5 wide (h − l of each bar), stoch stays defined;
    # the close-to-close changes are 0, so Chande's CMO is NULL once 14 flat changes fill its window
    assert np.isnan(out["ti_cmo_14"][1513:2000]).all() and not np.isnan(out["ti_cmo_14"][2100:]).any()
    # RSI's Wilder averages decay geometrically ((13/14)^k) and fall below 1e-12 · x inside the stretch
    assert np.isnan(out["ti_rsi_14"][1990]) and not np.isnan(out["ti_rsi_14"][1510])
    assert not np.isnan(out["ti_rsi_14"][2300:]).any()
    assert out["ti_trange"][3000] > 50 * np.nanmedian(out["ti_trange"])
    assert not np.isnan(out["ti_stoch_k"][1500:2000]).any()


def test_fully_flat_bars_null_the_range_ratios():
    c = np.r_[_rough_series(300, 3), np.full(600, 1.2)]  # ATR10 decays as 0.9^k after the jump: zero within 600
    out = _technical_on_closes(c, highs=c, lows=c)
    for col in ("ti_stoch_k", "ti_willr_14", "ti_dc_pos", "ti_cci_20", "ti_ultosc", "ti_kc_pos"):
        assert np.isnan(out[col][-50:]).all(), col
    assert (out["ti_parkinson_20"][-50:] == 0).all() and (out["ti_ulcer_14"][-50:] == 0).all()


def test_context_covers_sar_and_seeds():
    """Starting the series 3,000 bars (the declared context) earlier or later does not change the last rows."""
    c = _rough_series(9000, 4)
    whole = _technical_on_closes(c)
    part = _technical_on_closes(c[4000:], start=datetime(2024, 7, 1, tzinfo=timezone.utc) + timedelta(minutes=4000))
    # rate index of the part is rebased on its own first bar: compare scale-free columns
    for col in ("ti_sar_dist", "ti_rsi_14", "ti_adx_14", "ti_atr_ratio", "ti_trix_15", "ti_mass_25", "ti_ema50_dist"):
        np.testing.assert_allclose(part[col][3000:], whole[col][7000:], rtol=1e-9, atol=1e-12, err_msg=col)


# -- the kernels that redo TA-Lib (and the old from-scratch loops) must give the very same bits ----------
def _kernel_cases():
    rng = np.random.default_rng(7)
    cases = []
    for k in range(40):
        n = int(rng.integers(1, 260))
        step = rng.choice([0.0, 1e-13, 1e-11, 0.01], n)  # flat stretches and tiny moves hit TA-Lib's epsilons
        x = 100.0 + np.cumsum(rng.standard_normal(n) * step)
        if k % 4 == 0:
            x[: n // 2] = 100.0
        if k % 5 == 0:
            x = np.round(x, 2)  # ties for MAX/MIN
        xh = x + np.abs(rng.standard_normal(n)) * rng.choice([0.0, 1e-12, 0.01], n)
        xl = x - np.abs(rng.standard_normal(n)) * rng.choice([0.0, 0.01], n)
        cases.append((x, xh, xl))
    return cases


def _same(a, b):
    assert np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


def _wilder_atr(tr, n, fused=False):
    """ATR(n) as a plain loop: the mean of tr[1..n], then Wilder's step. `fused=False`: three statements
    (× (n − 1), + tr, ÷ n), TA-Lib ≤ 0.7 and bqx's kernel; `fused=True`: TA-Lib 0.8's two-coefficient step
    fma(β, prev, α · tr) with β = (n − 1)/n, α = 1 − β (its #338), which needs math.fma (Python ≥ 3.13)."""
    out = np.full(tr.shape[0], np.nan)
    if tr.shape[0] <= n:
        return out
    s = 0.0
    for i in range(1, n + 1):
        s += tr[i]
    prev = out[n] = s / n
    beta = (n - 1) / n
    alpha = 1.0 - beta
    for i in range(n + 1, tr.shape[0]):
        prev = math.fma(beta, prev, alpha * tr[i]) if fused else (prev * (n - 1) + tr[i]) / n
        out[i] = prev
    return out


def _fresh_slope(x, n):
    """LINEARREG_SLOPE(n) with both sums taken afresh over each window from its oldest value (TA-Lib ≤ 0.7 and
    bqx's kernel; TA-Lib 0.8 slides running sums instead, its #103, so its last bits depend on where the series starts)."""
    out = np.full(x.shape[0], np.nan)
    sx = n * (n - 1) * 0.5
    div = sx * sx - n * float(n * (n - 1) * (2 * n - 1) // 6)
    for t in range(n - 1, x.shape[0]):
        sy = sxy = 0.0
        for j in range(n):
            v = x[t - n + 1 + j]
            sy += v
            sxy += float(n - 1 - j) * v
        out[t] = (n * sxy - sx * sy) / div
    return out


def _near(a, b, rtol=0.0, atol=0.0):
    a, b = np.asarray(a), np.asarray(b)
    assert np.array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=rtol, atol=atol)


def test_kernels_equal_talib_bit_for_bit():
    """bqx's kernels are TA-Lib's arithmetic, bit for bit; where TA-Lib 0.8 changed its own arithmetic (ATR,
    LINEARREG_SLOPE, SAR: fused multiply-adds and running sums, docs/DEPENDENCIES.md) they keep the unfused
    order, equal a plain loop bit for bit and TA-Lib 0.8 to a few ulps."""
    from bqx.kernels.recursions import dmi, rsi, stochrsi_k, window_any
    from bqx.kernels.technical import aroonosc, atr, linreg_slope, sar, stoch, window_max, window_min

    for x, xh, xl in _kernel_cases():
        tr = talib.TRANGE(xh, xl, x)
        for n in (10, 14, 100):
            _same(atr(tr, n), _wilder_atr(tr, n))
            _near(atr(tr, n), talib.ATR(xh, xl, x, n), rtol=1e-14)
            if hasattr(math, "fma"):  # the cause of the difference: TA-Lib 0.8's fused step, bit for bit
                _same(_wilder_atr(tr, n, fused=True), talib.ATR(xh, xl, x, n))
        for n in (2, 9, 14, 20, 26):
            _same(window_max(xh, n), talib.MAX(xh, n))
            _same(window_min(xl, n), talib.MIN(xl, n))
            _same((window_max(xh, n) + window_min(xl, n)) / 2.0, talib.MIDPRICE(xh, xl, n))
        _same(linreg_slope(x, 14), _fresh_slope(x, 14))
        _near(linreg_slope(x, 14), talib.LINEARREG_SLOPE(x, 14), atol=1e-13 * np.abs(x).max(initial=1.0))
        hh, ll = talib.MAX(xh, 14), talib.MIN(xl, 14)
        for got, want in zip(stoch(hh, ll, x, 14, 3, 3), talib.STOCH(xh, xl, x, 14, 3, 0, 3, 0)):
            _near(got, want, atol=1e-12)  # 0 .. 100; TA-Lib 0.8 reorders STOCH's arithmetic (last bits only)
        with np.errstate(divide="ignore", invalid="ignore"):
            # -100 .. 0; TA-Lib 0.8 computes WILLR with a reordered division (last bits only)
            _near(np.where(hh - ll != 0, (hh - x) / ((hh - ll) / -100.0), 0.0), talib.WILLR(xh, xl, x, 14), atol=1e-12)
        # DI/ADX/ADXR in one pass = TA-Lib's four functions with the NULL rules applied afterwards
        if x.shape[0] > 1:  # stable comparisons off (ε = 0): TA-Lib's own SAR and AROONOSC
            # TA-Lib 0.8 fuses SAR's step; a different reversal would differ by far more than this
            _near(sar(xh, xl, x, 0.02, 0.2, 0.0), talib.SAR(xh, xl, 0.02, 0.2), atol=1e-13 * np.abs(x).max())
        _same(aroonosc(xh, xl, x, 14, 0.0), talib.AROONOSC(xh, xl, 14))
        pdi, mdi, adx, adxr = dmi(xh, xl, x, 14, 1e-12, 0.0)
        str14 = np.full(x.shape[0], np.nan)
        if x.shape[0] > 14:
            s = 0.0
            for i in range(1, 14):
                s += tr[i]
            for i in range(14, x.shape[0]):
                s = s - s / 14 + tr[i]
                str14[i] = s
        zero = np.abs(str14) <= 1e-12 * x
        _same(pdi, np.where(zero, np.nan, talib.PLUS_DI(xh, xl, x, 14)))
        _same(mdi, np.where(zero, np.nan, talib.MINUS_DI(xh, xl, x, 14)))
        pos = np.flatnonzero(str14 > 1e-12 * x)
        started = np.arange(x.shape[0]) >= (pos[0] if pos.size else x.shape[0])
        want_adx = np.where(started, talib.ADX(xh, xl, x, 14), np.nan)
        _same(adx, want_adx)
        lag = np.full(x.shape[0], np.nan)
        lag[13:] = want_adx[: max(x.shape[0] - 13, 0)]
        _same(adxr, np.where(np.isnan(lag) | np.isnan(want_adx), np.nan, talib.ADXR(xh, xl, x, 14)))
        # STOCHRSI fastk from our RSI = TA-Lib's wherever none of the 5 RSI values is NULL
        r = rsi(x, 14, 1e-12)
        r0 = np.nan_to_num(r, nan=0.0)
        bad = (talib.MAX(r0, 5) - talib.MIN(r0, 5) <= 1e-9) | window_any(np.isnan(r), 5)
        # TA-Lib 0.8 smooths its own RSI with a fused step (last bits), which fastk divides by the RSI range of
        # the 5 bars: the agreement is 1e-12 in RSI units, scaled by 100 / range
        got, want = stochrsi_k(r, 5, 20, 1e-9), np.where(bad, np.nan, talib.STOCHRSI(x, 14, 5, 3, 0)[0])
        assert np.array_equal(np.isnan(got), np.isnan(want))
        spread = talib.MAX(r0, 5) - talib.MIN(r0, 5)
        ok = np.isnan(got) | (np.abs(got - want) <= 1e-12 * (1.0 + 100.0 / np.where(bad, 1.0, spread)))
        assert ok.all(), (got[~ok], want[~ok], spread[~ok])


def _from_scratch_mean(x, n):
    out = np.full(x.shape[0], np.nan)
    for i in range(n - 1, x.shape[0]):
        s = 0.0
        for j in range(i - n + 1, i + 1):
            s += x[j]
        out[i] = s / n
    return out


def test_swept_window_sums_equal_the_from_scratch_loops():
    """The window sums are swept one offset at a time; each window must still be summed in time order."""
    from bqx.kernels.recursions import cci, cmo, mfi, range_vol, window_mean

    rng = np.random.default_rng(3)
    for x, xh, xl in _kernel_cases():
        v = np.abs(rng.standard_normal(x.shape[0])) * 1000
        for n in (7, 14, 20):
            _same(window_mean(x, n), _from_scratch_mean(x, n))
        hl2, co2 = np.log(xh / xl) ** 2, np.log(x / np.roll(x, 1)) ** 2
        k = 2.0 * np.log(2.0) - 1.0
        park, gk = range_vol(hl2, co2, 20, k)
        _same(park, _from_scratch_mean(hl2, 20))
        _same(gk, _from_scratch_mean(0.5 * hl2 - k * co2, 20))
        tp = (xh + xl + x) / 3.0
        size = x.shape[0]
        want_cci = np.full(size, np.nan)
        want_cmo = np.full(size, np.nan)
        want_mfi = np.full(size, np.nan)
        for i in range(19, size):
            m = 0.0
            for j in range(i - 19, i + 1):
                m += tp[j]
            m /= 20
            d = 0.0
            for j in range(i - 19, i + 1):
                d += abs(tp[j] - m)
            if d / 20 > 1e-12 * abs(tp[i]):
                want_cci[i] = (tp[i] - m) / (0.015 * (d / 20))
        for i in range(14, size):
            s = 0.0
            pos = neg = sv = 0.0
            for j in range(i - 13, i + 1):
                s += abs(x[j] - x[j - 1])
                mf = tp[j] * v[j]
                pos += mf if tp[j] > tp[j - 1] else 0.0
                neg += mf if tp[j] < tp[j - 1] else 0.0
                sv += v[j]
            if s > 1e-12 * abs(x[i]):
                want_cmo[i] = min(100.0, max(-100.0, 100.0 * (x[i] - x[i - 14]) / s))
            if pos + neg > 1e-12 * abs(tp[i]) * sv:
                want_mfi[i] = min(100.0, 100.0 * (pos / (pos + neg)))
        _same(cci(tp, 20, 1e-12), want_cci)
        _same(cmo(x, 14, 1e-12), want_cmo)
        _same(mfi(tp, v, x, 14, 1e-12, 0.0), want_mfi)  # stable comparisons off: the exact loop


def test_window_max_falls_back_to_talib_on_nan():
    from bqx.kernels.technical import window_max, window_min

    x = 100.0 + np.cumsum(np.random.default_rng(1).standard_normal(200))
    x[50] = np.nan
    _same(window_max(x, 14), talib.MAX(x, 14))
    _same(window_min(x, 14), talib.MIN(x, 14))


def test_check_output_stays_strict_about_nan_and_inf():
    """check_output screens with column sums; a column whose sum is not finite gets the exact check."""
    from types import SimpleNamespace

    from bqx.core.declaration import FamilyOutputError, check_output

    fam = SimpleNamespace(name="t", column_names=lambda p: ("a", "b"))
    ok = [[1.0, None, 2.0], [None, None, None], [1e308, 1e308, None], [-0.0, 0.0, None]]  # an overflowing sum is fine
    bad = [[1.0, float("nan"), None], [float("inf"), 1.0, None], [None, -float("inf"), None], [1e308, 1e308, float("nan")]]
    for vals in ok:
        frame = pl.DataFrame({"a": [1.0, 2.0, 3.0], "b": pl.Series(vals, dtype=pl.Float64)})
        assert check_output(fam, frame, 3, {}) is frame
    for vals in bad:
        frame = pl.DataFrame({"a": [1.0, 2.0, 3.0], "b": pl.Series(vals, dtype=pl.Float64)})
        with pytest.raises(FamilyOutputError, match=r"\['b'\] contain NaN"):
            check_output(fam, frame, 3, {})
