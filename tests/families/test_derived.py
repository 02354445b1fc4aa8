"""derived: hand-computed signs, trend strength, terciles; pandas and numpy oracles on sample bars."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest

from bqx.core.declaration import Ctx
from bqx.families.derived import DEFAULTS, columns, derived
from bqx.core.runner import compute
from bqx.kernels.order_stats import trailing_order_stats
from bqx.numerics import mismatches

BQX_W = DEFAULTS["bqx_windows"]
REG_W = DEFAULTS["reg_windows"]


def frame_of(n: int, **cols: list[float]) -> pl.DataFrame:
    """A derived input frame of n rows: the given columns, every other input 0 (r2 0.5, rmse 1)."""
    data: dict[str, list[float]] = {}
    for w in BQX_W:
        data[f"bqx_w{w}_return"] = [0.0] * n
    for w in REG_W:
        for m, v in (("a1", 0.0), ("a2", 0.0), ("r2", 0.5), ("rmse", 1.0), ("lin_slope", 0.0)):
            data[f"reg_idx_w{w}_{m}"] = [v] * n
    data["bqx_agg_volatility"] = [1.0] * n
    data.update(cols)
    return pl.DataFrame({k: pl.Series(v, dtype=pl.Float64) for k, v in data.items()})


def run(frame: pl.DataFrame, **params) -> pl.DataFrame:
    p = dict(DEFAULTS, **params)
    return derived(frame, Ctx(params=p, baseline_time=datetime(2024, 7, 1, tzinfo=timezone.utc)))


def test_momentum_alignment_and_mtf_divergence():
    # row 0: signs +, −, 0 (|5e-11| ≤ 1e-10), +, − -> 1 − 1 + 0 + 1 − 1 = 0; w15 vs w60: +1 − (+1) = 0
    # row 1: all positive -> 5, except w15 negative: −1 + 4 = 3; mtf = −1 − 1 = −2
    cols = {
        "bqx_w15_return": [1e-3, -1e-3], "bqx_w30_return": [-2e-3, 1e-3], "bqx_w45_return": [5e-11, 1e-3],
        "bqx_w60_return": [3e-4, 2e-3], "bqx_w75_return": [-1e-4, 1e-3],
    }
    out = run(frame_of(2, **cols))
    assert out["drv_momentum_alignment"].to_list() == [0.0, 3.0]
    assert out["drv_mtf_divergence"].to_list() == [0.0, -2.0]


def test_trend_strength_and_slope_term():
    # r2 = [.5, .2, .1, .9, .4, .3], sign(a1) = [+, −, +, +, −, 0]: the w90 a1 = 1e-12 is ≤ 1e-9·std(x),
    # std(x) = sqrt(rmse² + ...) ≥ rmse = 1 -> sign 0. Mean = (.5 − .2 + .1 + .9 − .4 + 0)/6 = .9/6
    r2 = [0.5, 0.2, 0.1, 0.9, 0.4, 0.3]
    a1 = [0.3, -0.1, 0.2, 0.05, -0.4, 1e-12]
    cols = {f"reg_idx_w{w}_r2": [v] for w, v in zip(REG_W, r2)}
    cols.update({f"reg_idx_w{w}_a1": [v] for w, v in zip(REG_W, a1)})
    out = run(frame_of(1, **cols))
    assert out["drv_trend_strength"][0] == pytest.approx(0.9 / 6)
    assert out["drv_slope_term"][0] == pytest.approx(0.3 / 14 - 1e-12 / 89)
    # a NULL r2 (a constant window) makes the mean NULL
    cols["reg_idx_w30_r2"] = [None]
    assert run(frame_of(1, **cols))["drv_trend_strength"][0] is None


def test_volatility_regime_terciles_by_hand():
    # window 5, previous values [1, 2, 3, 4, 5]: q(1/3) at h = 4/3 -> 2 + (1/3)·1 = 2.333..,
    # q(2/3) at h = 8/3 -> 3 + (2/3)·1 = 3.666..; then v = 2.3 -> 0, 3.0 -> 1, 3.7 -> 2
    for v, regime in ((2.3, 0.0), (3.0, 1.0), (3.7, 2.0), (2.3334, 1.0)):
        out = run(frame_of(6, bqx_agg_volatility=[1, 2, 3, 4, 5, v]), regime_window=5)
        assert out["drv_volatility_regime"].to_list() == [None] * 5 + [regime]
    # a NULL among the previous values makes it NULL
    out = run(frame_of(7, bqx_agg_volatility=[1, 2, None, 4, 5, 6, 3.0]), regime_window=5)
    assert out["drv_volatility_regime"][5] is None and out["drv_volatility_regime"][6] is None


def test_trailing_quantiles_match_numpy():
    rng = np.random.default_rng(0)
    v = np.round(rng.standard_normal(3000), 2)  # ties on purpose
    v[1500] = np.nan
    got = trailing_order_stats(v, 200, (1 / 3, 2 / 3, 0.9))[:3]
    for t in range(3000):
        prev = v[t - 200: t] if t >= 200 else None
        if prev is None or np.isnan(prev).any():
            assert np.isnan(got[:, t]).all(), t
        else:
            assert np.allclose(got[:, t], np.quantile(prev, [1 / 3, 2 / 3, 0.9]), rtol=0, atol=1e-12), t


def test_matches_oracles_on_sample_bars(sample):
    out = compute(sample(("EURUSD", "USDJPY"), "2024-07", 1), ["rate_index", "bqx", "regression", "derived"])
    cols = {c.name: c for c in columns(DEFAULTS)}
    for _, part in out.group_by("pair"):
        pdf = part.to_pandas()
        sgn = lambda s: np.where(s.abs() <= 1e-10, 0.0, np.sign(s))  # noqa: E731
        expected = {
            "drv_momentum_alignment": sum(sgn(pdf[f"bqx_w{w}_return"]) for w in BQX_W),
            "drv_mtf_divergence": sgn(pdf["bqx_w15_return"]) - sgn(pdf["bqx_w60_return"]),
            "drv_slope_term": pdf["reg_idx_w15_a1"] / 14 - pdf["reg_idx_w90_a1"] / 89,
        }
        terms = []
        for w in REG_W:
            std = pdf["rate_index"].rolling(w).std(ddof=0)  # std(x) over L_W, independently of the fit
            a1 = pdf[f"reg_idx_w{w}_a1"]
            terms.append(np.where(a1.abs() <= 1e-9 * std, 0.0, np.sign(a1)) * pdf[f"reg_idx_w{w}_r2"])
        expected["drv_trend_strength"] = np.mean(terms, axis=0)
        vol = pdf["bqx_agg_volatility"]
        lo = vol.rolling(7200).quantile(1 / 3, interpolation="linear").shift(1)
        hi = vol.rolling(7200).quantile(2 / 3, interpolation="linear").shift(1)
        regime = np.where(vol < lo, 0.0, np.where(vol > hi, 2.0, 1.0))
        expected["drv_volatility_regime"] = np.where(lo.isna(), np.nan, regime)
        for name, want in expected.items():
            want = np.asarray(want, dtype=float)
            if name == "drv_volatility_regime":  # ordinal: exact unless v is within 1e-7 relative of a tercile
                near = (np.abs(vol - lo) <= 1e-7 * vol.abs()) | (np.abs(vol - hi) <= 1e-7 * vol.abs())
                want = np.where(near, part[name].to_numpy(), want)
            bad = mismatches(cols[name], want, part[name].to_numpy())
            assert not bad.any(), (name, np.flatnonzero(bad)[:5])
        first = cols["drv_volatility_regime"].warmup
        assert first == 75 + 7200 and part["drv_volatility_regime"].head(first).null_count() == first
        assert part["drv_volatility_regime"][first] is not None


def test_warmup(sample):
    out = compute(sample(("EURUSD",), "2024-07", 1), ["derived"])
    for col in columns(DEFAULTS):
        assert out[col.name].head(col.warmup).null_count() == col.warmup, col.name
        assert out[col.name][col.warmup] is not None, col.name
        if col.nullable_when is None:
            assert out[col.name].slice(col.warmup).null_count() == 0, col.name
