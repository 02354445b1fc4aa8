"""ADX, ADXR, +DI, −DI, MFI, SAR and AROONOSC with FEATURES.md's stable comparisons.

The oracle is a plain Python loop per indicator, written from the recurrences (TA-Lib's seeding and
start-up conventions) with the rule "values within ε = 1e-9 · x_t are equal, then the indicator's tie
rule"; it shares no code with the numba kernels. With ε = 0 the loops are TA-Lib exactly, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
import talib

from bqx.kernels.recursions import dmi, mfi
from bqx.kernels.technical import aroonosc, sar
from tests.conftest import sample_bars

TIE = 1e-9
ROWS = 5000


# -- the loops -------------------------------------------------------------------------------------
def loop_dmi(h, l, c, n, tie):
    """TA-Lib's PLUS_DI, MINUS_DI, ADX, ADXR(n) as values (TA-Lib's 0 for a zero range kept), NaN in warm-up."""
    size = len(c)
    pdi, mdi, adx, adxr = (np.full(size, np.nan) for _ in range(4))
    pdm = mdm = tr = 0.0
    dxs = []
    for t in range(1, size):
        eps = tie * c[t]
        up, down = h[t] - h[t - 1], l[t - 1] - l[t]
        if t >= n:  # Wilder: drop 1/n of the running sums from bar n on
            pdm -= pdm / n
            mdm -= mdm / n
        if down > eps and down > up + eps:
            mdm += down
        elif up > eps and up > down + eps:
            pdm += up
        true_range = max(h[t] - l[t], abs(h[t] - c[t - 1]), abs(l[t] - c[t - 1]))
        if true_range <= eps:
            true_range = 0.0
        if t < n:  # the seed: n − 1 ranges from bar 1
            tr += true_range
            continue
        tr = tr - tr / n + true_range
        if abs(tr) < 1e-14:  # TA-Lib's zero
            p = m = 0.0
            dx = None
        else:
            p, m = 100.0 * (pdm / tr), 100.0 * (mdm / tr)
            dx = 100.0 * (abs(m - p) / (m + p)) if abs(m + p) >= 1e-14 else None
        pdi[t], mdi[t] = p, m
        dxs.append(dx)
        if t == 2 * n - 1:  # the first ADX: the mean of the n DX values from bar n
            adx[t] = sum(d for d in dxs if d is not None) / n
        elif t > 2 * n - 1:
            adx[t] = adx[t - 1] if dx is None else (adx[t - 1] * (n - 1) + dx) / n
        if t >= 3 * n - 2:
            adxr[t] = (adx[t] + adx[t - (n - 1)]) / 2.0
    return pdi, mdi, adx, adxr


def loop_mfi(h, l, c, v, n, tie, talib08=False):
    """MFI(n): 100 · positive / (positive + negative) money flow over the n flows up to t (TA-Lib 0.6's 0 when the
    sum is below 1); a flow is positive when tp rises by more than ε = tie · c_t, negative when it falls by more.
    `talib08`: TA-Lib 0.8's rules instead (its #107 and #244): no flow when |Δtp| ≤ 1e-14 · (|tp_t| + |tp_(t−1)|),
    the sums reset to 0 after n bars without flow, 0 only for a window without flow, the ratio clamped."""
    tp = [(h[i] + l[i] + c[i]) / 3.0 for i in range(len(c))]
    flows = [(0.0, 0.0)]
    for t in range(1, len(c)):
        eps = tie * c[t]
        mf = tp[t] * v[t]
        d = tp[t] - tp[t - 1]
        if talib08:
            mf = 0.0 if abs(d) <= 1e-14 * (abs(tp[t]) + abs(tp[t - 1])) else mf
            flows.append((0.0, mf) if d < 0.0 else (mf, 0.0))
            continue
        flows.append((mf, 0.0) if tp[t] > tp[t - 1] + eps else (0.0, mf) if tp[t] < tp[t - 1] - eps else (0.0, 0.0))
    out = np.full(len(c), np.nan)
    pos = neg = 0.0
    idle = 0
    for t in range(1, len(c)):  # running sums as TA-Lib keeps them: the oldest flow out, the new one in
        if t > n:
            pos, neg = pos - flows[t - n][0], neg - flows[t - n][1]
        pos, neg = pos + flows[t][0], neg + flows[t][1]
        if talib08:
            idle = idle + 1 if flows[t] == (0.0, 0.0) else 0
            if idle >= n:
                idle, pos, neg = n, 0.0, 0.0
        if t >= n:
            if talib08:
                tot = pos + neg
                out[t] = 0.0 if tot <= 0.0 else 100.0 * (min(max(pos, 0.0), tot) / tot)
            else:
                out[t] = 0.0 if pos + neg < 1.0 else 100.0 * (pos / (pos + neg))
    return out


def loop_sar(h, l, c, acc, top, tie):
    """Wilder's parabolic SAR as TA-Lib starts it: short only if bar 1's down move counts as −DM; the SAR of
    bar t is output before it is moved on; reversal on touching; EP and af step on a new extreme."""
    out = np.full(len(c), np.nan)
    up, down = h[1] - h[0], l[0] - l[1]
    e = tie * c[1]
    long = not (down > e and down > up + e)
    ep, s = (h[1], l[0]) if long else (l[1], h[0])
    af = acc
    hi = lo = None
    for t in range(1, len(c)):
        prev_hi, prev_lo = (h[1], l[1]) if t == 1 else (hi, lo)
        hi, lo, eps = h[t], l[t], tie * c[t]
        if long and lo <= s + eps or not long and hi >= s - eps:  # reversal: the SAR jumps to the old EP
            long = not long
            s = max(ep, prev_hi, hi) if not long else min(ep, prev_lo, lo)
            out[t] = s
            af, ep = acc, (lo if not long else hi)
            s = s + af * (ep - s)
            s = max(s, prev_hi, hi) if not long else min(s, prev_lo, lo)
            continue
        out[t] = s
        if long and hi > ep + eps or not long and lo < ep - eps:
            ep = hi if long else lo
            af = min(af + acc, top)
        s = s + af * (ep - s)
        s = min(s, prev_lo, lo) if long else max(s, prev_hi, hi)
    return out


def loop_aroonosc(h, l, c, n, tie):
    """(100/n) · (index of the highest high − index of the lowest low) over the last n + 1 bars, the most recent
    of the values within ε = tie · c_t of the extreme."""
    out = np.full(len(c), np.nan)
    for t in range(n, len(c)):
        hs, ls = h[t - n:t + 1], l[t - n:t + 1]
        eps = tie * c[t]
        i_hi = max(i for i, v in enumerate(hs) if v >= max(hs) - eps)
        i_lo = max(i for i, v in enumerate(ls) if v <= min(ls) + eps)
        out[t] = (100.0 / n) * (i_hi - i_lo)
    return out


# -- inputs ----------------------------------------------------------------------------------------
def _sample(pair: str):
    """Rate-index OHLC and volume of the first ROWS bars of a sample pair-month (quantised prices: many ties)."""
    b = sample_bars((pair,), "2024-07", 1).head(ROWS)
    base = b["close"][0]
    x, xh, xl = (100.0 * b[k].to_numpy() / base for k in ("close", "high", "low"))
    return x, xh, xl, b["volume"].to_numpy()


def _random(seed: int, n: int = 600):
    """Unquantised random bars with flat stretches and exact ties."""
    rng = np.random.default_rng(seed)
    x = 100.0 + np.cumsum(rng.standard_normal(n) * rng.choice([0.0, 0.01, 0.05], n))
    x = np.round(x, 2) if seed % 2 else x
    xh = x + np.abs(rng.standard_normal(n)) * rng.choice([0.0, 0.02], n)
    xl = x - np.abs(rng.standard_normal(n)) * rng.choice([0.0, 0.02], n)
    return x, xh, xl, rng.uniform(1.0, 50.0, n)


CASES = [("EURUSD", lambda: _sample("EURUSD")), ("USDJPY", lambda: _sample("USDJPY"))] + [
    (f"random{s}", (lambda s=s: _random(s))) for s in range(4)]


def _perturbed(arrays, seed=3):
    rng = np.random.default_rng(seed)
    return [a * (1.0 + rng.uniform(-1e-13, 1e-13, a.shape[0])) for a in arrays]


# -- ε = 0: the loops are TA-Lib ---------------------------------------------------------------------
@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_loops_with_eps_zero_are_talib_exactly(name, make):
    x, xh, xl, v = make()
    for got, want in zip(loop_dmi(xh, xl, x, 14, 0.0), (talib.PLUS_DI(xh, xl, x, 14), talib.MINUS_DI(xh, xl, x, 14),
                                                         talib.ADX(xh, xl, x, 14), talib.ADXR(xh, xl, x, 14))):
        assert np.array_equal(got, want, equal_nan=True)
    # the pinned TA-Lib (0.8) classifies flows with its own dead zone, not an exact comparison (its #107)
    assert np.array_equal(loop_mfi(xh, xl, x, v, 14, 0.0, talib08=True), talib.MFI(xh, xl, x, v, 14), equal_nan=True)
    # TA-Lib 0.8 fuses SAR's step (last bits); a different reversal would differ by far more than this
    sar_loop, sar_talib = loop_sar(xh, xl, x, 0.02, 0.2, 0.0), talib.SAR(xh, xl, 0.02, 0.2)
    assert np.array_equal(np.isnan(sar_loop), np.isnan(sar_talib))
    np.testing.assert_allclose(sar_loop, sar_talib, rtol=1e-14, equal_nan=True)
    assert np.array_equal(loop_aroonosc(xh, xl, x, 14, 0.0), talib.AROONOSC(xh, xl, 14), equal_nan=True)


# -- the kernels equal the loops, with the rule and without ---------------------------------------------
def _agree(got, want, atol):
    defined = ~np.isnan(got)
    assert defined.sum() > 0.8 * got.shape[0] - 50
    np.testing.assert_allclose(got[defined], want[defined], rtol=0, atol=atol)


@pytest.mark.parametrize("tie", [TIE, 0.0])
@pytest.mark.parametrize("name,make", CASES, ids=[c[0] for c in CASES])
def test_kernels_equal_the_loops(name, make, tie):
    x, xh, xl, v = make()
    for got, want in zip(dmi(xh, xl, x, 14, 1e-12, tie), loop_dmi(xh, xl, x, 14, tie)):
        _agree(got, want, 1e-9)
    tp = (xh + xl + x) / 3.0
    got = mfi(tp, v, x, 14, 1e-12, tie)
    want = loop_mfi(xh, xl, x, v, 14, tie)
    _agree(got, want, 1e-9)
    np.testing.assert_array_equal(sar(xh, xl, x, 0.02, 0.2, tie), loop_sar(xh, xl, x, 0.02, 0.2, tie))
    np.testing.assert_array_equal(aroonosc(xh, xl, x, 14, tie), loop_aroonosc(xh, xl, x, 14, tie))


def test_the_rule_changes_the_quantised_sample_and_removes_noise_dependence():
    """On quantised M1 bars up and down moves tie in decimal: TA-Lib's exact comparison lets 1e-13 noise pick
    a side (whole points of ADX), the rule does not (rounding only)."""
    x, xh, xl, v = _sample("EURUSD")
    px, pxh, pxl = _perturbed([x, xh, xl])
    exact, noisy = talib.ADX(xh, xl, x, 14), talib.ADX(pxh, pxl, px, 14)
    assert np.nanmax(np.abs(exact - noisy)) > 1.0  # the defect of issue 12
    stable, stable_noisy = loop_dmi(xh, xl, x, 14, TIE)[2], loop_dmi(pxh, pxl, px, 14, TIE)[2]
    assert np.nanmax(np.abs(stable - stable_noisy)) < 1e-6  # Agreement for bounded columns
    assert np.nanmax(np.abs(stable - exact)) > 1.0  # so bqx's ADX is not TA-Lib's on such data (catalog says so)
    for f in (lambda a, b, c: loop_sar(b, c, a, 0.02, 0.2, TIE), lambda a, b, c: loop_aroonosc(b, c, a, 14, TIE)):
        np.testing.assert_allclose(f(x, xh, xl), f(px, pxh, pxl), rtol=1e-9, atol=1e-12)
    tp_noise = np.nanmax(np.abs(loop_mfi(xh, xl, x, v, 14, TIE) - loop_mfi(pxh, pxl, px, v, 14, TIE)))
    assert tp_noise < 1e-6


def test_hand_case_ties():
    """Equal up and down moves count for neither side; a move of 1e-12 (noise) counts for none."""
    h = np.array([10.0, 10.5, 10.5 + 1e-12, 11.0])
    lo = np.array([9.0, 8.5, 8.5, 8.5 - 1e-12])
    c = np.array([9.5, 9.5, 9.5, 9.5])
    p_tie = loop_dmi(h, lo, c, 2, TIE)
    p_exact = loop_dmi(h, lo, c, 2, 0.0)
    # bar 1: up 0.5 = down 0.5 -> neither; bar 2: up 1e-12 -> none under the rule, +DM under TA-Lib's
    # bar 3: up 0.5 − 1e-12, down 1e-12 -> +DM in both.  +DI(2) at bar 2 = 100 · (+DM sum) / TR sum
    tr1, tr2 = 2.0, 2.0 + 1e-12  # h − l of bars 1 and 2 (the seed is bar 1 only for n = 2)
    assert p_tie[0][2] == 0.0
    assert p_exact[0][2] == pytest.approx(100 * 1e-12 / (tr1 - tr1 / 2 + tr2), rel=1e-3)
    got = dmi(h, lo, c, 2, 1e-12, TIE)
    assert got[0][2] == 0.0 and got[0][3] > 0.0
