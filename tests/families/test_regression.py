"""regression: hand-computed fits, per-window numpy least squares as the oracle, NULL rules, no drift."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest

from bqx.core.declaration import Ctx
from bqx.families.regression import DEFAULTS, DOMAINS, columns, regression
from bqx.kernels.regression import METRICS, rolling_fits, window_std_from_fit
from bqx.core.runner import compute
from bqx.numerics import mismatches

NAN = np.nan
COLUMNS = {c.name: c for c in columns(DEFAULTS)}


def oracle(y: np.ndarray, w: int, t: int, dimensionless: bool) -> list[float]:
    """The 15 metrics at row t from numpy least squares on the centred window (y − ȳ; ȳ added back to a0)."""
    win = y[t - w + 1: t + 1]
    u = (np.arange(w) - (w - 1)) / (w - 1)
    ybar = win.mean()
    yc = win - ybar
    quad = np.column_stack([u * u, u, np.ones(w)])
    (a2, a1, c0), *_ = np.linalg.lstsq(quad, yc, rcond=None)
    lin = np.column_stack([u, np.ones(w)])
    (b1, d0), *_ = np.linalg.lstsq(lin, yc, rcond=None)
    ss_q = ((yc - quad @ [a2, a1, c0]) ** 2).sum()
    ss_l = ((yc - lin @ [b1, d0]) ** 2).sum()
    ss_tot = (yc ** 2).sum()
    std = np.sqrt(ss_tot / w)
    const = std <= 1e-9 * np.abs(win).mean() or (dimensionless and std <= 1e-12)
    a0 = ybar + c0
    rmse = np.sqrt(ss_q / w)
    resid = yc[-1] - c0  # y_t − a0, on the centred data
    rmse_zero = const or rmse <= 1e-9 * std
    lin_zero = const or np.sqrt(ss_l / w) <= 1e-9 * std
    se_b1 = np.sqrt(ss_l / (w - 2) / ((u - u.mean()) ** 2).sum())
    r2 = NAN if const else min(max(1 - ss_q / ss_tot, 0.0), 1.0)
    lin_r2 = NAN if const else min(max(1 - ss_l / ss_tot, 0.0), 1.0)
    delta = 1 / (w - 1)
    lo, hi = win.min(), win.max()
    return [
        a2, a1, a0, r2, rmse, resid,
        NAN if rmse_zero else resid / rmse,
        b1, lin_r2, r2 - lin_r2,
        a2 * delta ** 2 + a1 * delta + a0,
        NAN if const or abs(a2) <= 1e-9 * std else -a1 / (2 * a2),
        NAN if lin_zero else b1 / se_b1,
        NAN if hi - lo <= 1e-12 * max(abs(hi), abs(lo)) else (win[-1] - lo) / (hi - lo),
        NAN if rmse_zero else a1 / rmse,
    ]


def precise_vertex(win: np.ndarray) -> float:
    """vertex_u = −a1/(2·a2) in extended precision (long double): the least-squares coefficient of a
    column is <q, y>/<q, column>, q = that column orthogonalised against the other two."""
    ld = np.longdouble
    w = win.size
    u = (np.arange(w, dtype=ld) - (w - 1)) / (w - 1)
    yc = win.astype(ld) - win.astype(ld).mean()

    def coefficient(col: np.ndarray, others: list[np.ndarray]) -> ld:
        basis: list[np.ndarray] = []
        for o in others:
            v = o.copy()
            for q in basis:
                v = v - (q @ v) * q
            basis.append(v / np.sqrt(v @ v))
        q = col.copy()
        for b in basis:
            q = q - (b @ q) * b
        return (q @ yc) / (q @ col)

    one = np.ones(w, dtype=ld)
    a2 = coefficient(u * u, [one, u])
    a1 = coefficient(u, [one, u * u])
    return float(-a1 / (2 * a2))


def check_against_oracle(y: np.ndarray, rows: np.ndarray, domain: str = "idx") -> None:
    """All 15 metrics against numpy least squares. Where |a2| ≤ 1e-6·std(y), −a1/(2·a2) is so ill-conditioned
    that float64 lstsq's own error exceeds 1e-7 relative: there vertex_u is checked against an
    extended-precision fit instead."""
    dimensionless = DOMAINS[domain][2]
    vertex = METRICS.index("vertex_u")
    for w in DEFAULTS["windows"]:
        got = rolling_fits(y, w, dimensionless=dimensionless)
        rows_w = rows[rows >= w - 1]
        want = np.array([oracle(y, w, t, dimensionless) for t in rows_w])
        std = np.array([y[t - w + 1: t + 1].std() for t in rows_w])
        frail = ~np.isnan(want[:, vertex]) & (np.abs(want[:, 0]) <= 1e-6 * std)
        want[frail, vertex] = [precise_vertex(y[t - w + 1: t + 1]) for t in rows_w[frail]]
        for j, m in enumerate(METRICS):
            bad = mismatches(COLUMNS[f"reg_{domain}_w{w}_{m}"], want[:, j], got[j, rows_w])
            assert not bad.any(), (w, m, rows_w[bad][:5], want[bad, j][:5], got[j, rows_w][bad][:5])


def run(y: dict[str, np.ndarray], windows: tuple[int, ...]) -> pl.DataFrame:
    frame = pl.DataFrame({k: pl.Series(v, dtype=pl.Float64, nan_to_null=True) for k, v in y.items()})
    ctx = Ctx(params={"windows": windows, "domains": ("idx", "bqx")}, baseline_time=datetime(2024, 7, 1, tzinfo=timezone.utc))
    return regression(frame, ctx)


def test_hand_computed_quadratic_window():
    # W = 5, u = [-1, -0.75, -0.5, -0.25, 0], y = u² exactly: a2 = 1, a1 = 0, a0 = 0.
    # Linear fit: ū = -0.5, Σ(u-ū)² = 0.625, ȳ = 1.875/5 = 0.375, Σ(u-ū)(y-ȳ) = -0.625 -> b1 = -1;
    # residuals [.125, -.0625, -.125, -.0625, .125] -> SSres_lin = 7/128; SStot = 87/128.
    u = np.array([-1, -0.75, -0.5, -0.25, 0.0])
    out = run({"rate_index": u * u, "bqx_w15_return": u * u}, (5,)).row(4, named=True)
    expected = {
        "a2": 1.0, "a1": 0.0, "a0": 0.0, "r2": 1.0, "rmse": 0.0, "resid": 0.0, "resid_z": None,
        "lin_slope": -1.0, "lin_r2": 1 - 7 / 87, "r2_gain": 7 / 87,
        "forecast": (1 / 4) ** 2,  # a2·δ² with δ = 1/(W-1)
        "vertex_u": -0.0 / 2.0,  # -a1 / (2·a2)
        "lin_tstat": -1.0 / np.sqrt((7 / 128) / 3 / 0.625),  # b1 / sqrt(SSres_lin/(W-2) / Σ(u-ū)²)
        "range_pos": (0.0 - 0.0) / (1.0 - 0.0), "snr": None,
    }
    for d in ("idx", "bqx"):
        for m, want in expected.items():
            got = out[f"reg_{d}_w5_{m}"]
            if want is None:
                assert got is None, (d, m, got)
            else:
                assert got == pytest.approx(want, abs=1e-12), (d, m, got)


def test_hand_computed_linear_window():
    # W = 4, y = [1, 2, 3, 4] = 4 + 3u with u = [-1, -2/3, -1/3, 0]: a2 = 0, a1 = b1 = 3, a0 = 4,
    # forecast = 4 + 3 · (1/3) = 5; exact fit: rmse = 0, so resid_z, snr, lin_tstat are NULL; a2 = 0: vertex_u NULL.
    y = np.array([1.0, 2.0, 3.0, 4.0])
    out = run({"rate_index": y, "bqx_w15_return": y}, (4,))
    row = out.row(3, named=True)
    assert row["reg_idx_w4_a2"] == pytest.approx(0.0, abs=1e-12)
    assert row["reg_idx_w4_a1"] == pytest.approx(3.0)
    assert row["reg_idx_w4_a0"] == pytest.approx(4.0)
    assert row["reg_idx_w4_forecast"] == pytest.approx(4.0 + 3.0 / 3)
    assert row["reg_idx_w4_r2"] == pytest.approx(1.0) and row["reg_idx_w4_lin_r2"] == pytest.approx(1.0)
    assert row["reg_idx_w4_range_pos"] == (4.0 - 1.0) / (4.0 - 1.0)
    for m in ("resid_z", "snr", "lin_tstat", "vertex_u"):
        assert row[f"reg_idx_w4_{m}"] is None, m
    assert out["reg_idx_w4_a0"][:3].null_count() == 3  # warm-up W - 1 = 3 rows


def test_noisy_window_matches_hand_arithmetic():
    # W = 4, y = [0, 1, 0, 1]: linear fit on u = [-1, -2/3, -1/3, 0]: ū = -1/2, Σ(u-ū)² = 5/9,
    # Σ(u-ū)(y-ȳ) = (-1/2)(-1/2) + (-1/6)(1/2) + (1/6)(-1/2) + (1/2)(1/2) = 1/3 -> b1 = (1/3)/(5/9) = 3/5.
    # SStot = 4 · 1/4 = 1; SSres_lin = 1 - b1² · 5/9 = 1 - 1/5 = 4/5 -> lin_r2 = 1/5.
    y = np.array([0.0, 1.0, 0.0, 1.0])
    row = run({"rate_index": y + 100, "bqx_w15_return": y}, (4,)).row(3, named=True)
    assert row["reg_bqx_w4_lin_slope"] == pytest.approx(3 / 5)
    assert row["reg_bqx_w4_lin_r2"] == pytest.approx(1 / 5)
    assert row["reg_idx_w4_lin_r2"] == pytest.approx(1 / 5)
    # t = b1 / sqrt(SSres_lin/(W-2) / Σ(u-ū)²) = (3/5) / sqrt((4/5)/2 / (5/9))
    assert row["reg_bqx_w4_lin_tstat"] == pytest.approx((3 / 5) / np.sqrt((4 / 5) / 2 / (5 / 9)))
    # the quadratic through 4 points leaves a residual: compare with the oracle
    for j, m in enumerate(METRICS):
        want = oracle(y, 4, 3, True)[j]
        got = row[f"reg_bqx_w4_{m}"]
        assert (got is None and np.isnan(want)) or got == pytest.approx(want, rel=1e-9, abs=1e-12), m


def test_constant_window_is_null_where_undefined():
    # y constant: a2 = a1 = 0, a0 = forecast = y, rmse = resid = 0; every ratio of a zero scale is NULL.
    out = run({"rate_index": np.full(30, 101.25), "bqx_w15_return": np.zeros(30)}, (15,))
    row = out.row(29, named=True)
    for d, level in (("idx", 101.25), ("bqx", 0.0)):
        assert row[f"reg_{d}_w15_a0"] == pytest.approx(level, abs=1e-12)
        assert row[f"reg_{d}_w15_forecast"] == pytest.approx(level, abs=1e-12)
        for m in ("a2", "a1", "rmse", "resid", "lin_slope"):
            assert abs(row[f"reg_{d}_w15_{m}"]) <= 1e-12, (d, m)
        for m in ("r2", "lin_r2", "r2_gain", "resid_z", "snr", "vertex_u", "lin_tstat", "range_pos"):
            assert row[f"reg_{d}_w15_{m}"] is None, (d, m)


def test_all_columns_match_least_squares_on_sample_bars(sample):
    bars = sample(("EURUSD",), "2024-07", 1)
    out = compute(bars, ["rate_index", "bqx", "regression"])
    rng = np.random.default_rng(0)
    rows = np.unique(np.r_[np.arange(100, 110), rng.integers(110, out.height, 60)])
    for d in ("idx", "bqx"):
        y = out[DOMAINS[d][0]].fill_null(np.nan).to_numpy()
        dimensionless = DOMAINS[d][2]
        for w in DEFAULTS["windows"]:
            want = np.array([oracle(y, w, t, dimensionless) for t in rows])
            for j, m in enumerate(METRICS):
                name = f"reg_{d}_w{w}_{m}"
                got = out[name].to_numpy()[rows]
                bad = mismatches(COLUMNS[name], want[:, j], got)
                assert not bad.any(), (name, rows[bad][:3], want[bad, j][:3], got[bad][:3])


def test_nearly_exact_and_flat_windows_match_least_squares():
    # Special windows follow 800 random-walk bars, so that each column's median |value| (which sets
    # the 1e-9 tolerance floor of Numerics) is that of ordinary data, not of the special windows.
    # Their noise is either far below the 1e-9·std(y) residual-scale threshold (ratios NULL) or well
    # above it: a ratio like resid_z is only known to about 1e-16·std(y)/rmse absolute, whatever the method.
    rng = np.random.default_rng(1)
    t = np.arange(200.0)
    walk = 100 + np.cumsum(rng.normal(0, 2e-3, 800))
    parts = [
        walk,
        walk[-1] + 0.01 * t + 1e-13 * rng.standard_normal(200),  # a nearly exact line
        102 + 1e-6 * (t + 100) ** 2 + 1e-13 * rng.standard_normal(200),  # a nearly exact parabola
        103 - 0.01 * t + 1e-6 * rng.standard_normal(200),  # a line with a little noise: rmse/std ≈ 1e-5
        np.full(100, 101.37),  # flat
        np.round(101.37 + np.cumsum(rng.normal(0, 2e-4, 100)), 5),  # quantised: some flat runs
    ]
    y = np.concatenate(parts)
    check_against_oracle(y, np.arange(89, y.size))
    fits = rolling_fits(y, 15, dimensionless=False)
    flat = np.arange(1415, 1500)  # windows inside the flat block
    assert np.isnan(fits[METRICS.index("r2"), flat]).all()
    assert np.isnan(fits[METRICS.index("range_pos"), flat]).all()
    line = np.arange(820, 1000)  # nearly exact: rmse ≈ 1e-13 ≤ 1e-9·std, so resid_z is NULL, r2 ≈ 1
    assert np.isnan(fits[METRICS.index("resid_z"), line]).all()
    assert np.isnan(fits[METRICS.index("lin_tstat"), line]).all()
    assert np.allclose(fits[METRICS.index("r2"), line], 1.0, atol=1e-12)
    parabola = np.arange(1020, 1200)  # nearly exact quadratic, but not linear: lin_tstat is defined
    assert np.isnan(fits[METRICS.index("snr"), parabola]).all()
    assert not np.isnan(fits[METRICS.index("lin_tstat"), parabola]).any()
    noisy = np.arange(1220, 1400)  # above the 1e-9 threshold: ratios are defined (and matched the oracle)
    assert not np.isnan(fits[METRICS.index("resid_z"), noisy]).any()
    # the same shapes as bqx values (dimensionless, around 0, flat = exactly 0)
    check_against_oracle(np.where(np.arange(y.size) // 100 == 14, 0.0, (y - 101.37) * 1e-3), np.arange(89, y.size), "bqx")


def test_null_inputs_make_their_windows_null():
    y = 100 + np.arange(60.0) * 0.01
    y[30] = np.nan
    fits = rolling_fits(y, 15, dimensionless=False)
    assert np.isnan(fits[:, 30:45]).all()  # every window holding row 30
    assert not np.isnan(fits[METRICS.index("a0"), [29, 45]]).any()


def test_year_of_bars_does_not_drift():
    # 400,000 one-minute steps of a random walk around 100 (about a year of bars): windows near the end
    rng = np.random.default_rng(2)
    y = 100 + np.cumsum(rng.normal(0, 0.002, 400_000))
    rows = np.r_[np.arange(89, 120), np.arange(y.size - 40, y.size), rng.integers(y.size - 50_000, y.size, 40)]
    check_against_oracle(y, np.unique(rows))


def test_bqx_domain_is_dimensionless():
    # std ≤ 1e-12 counts as zero for bqx values (not for the rate index, whose mean |y| rule applies)
    y = np.r_[np.zeros(20), 1e-13 * np.arange(20)]
    bqx = rolling_fits(y, 15, dimensionless=True)
    idx = rolling_fits(y, 15, dimensionless=False)
    assert np.isnan(bqx[METRICS.index("r2"), 39]) and not np.isnan(idx[METRICS.index("r2"), 39])


def test_warmup_and_nulls_follow_the_declaration(sample):
    bars = sample(("EURUSD",), "2024-07", 1)
    out = compute(bars, ["regression"])
    for col in columns(DEFAULTS):
        s = out[col.name]
        assert s.head(col.warmup).null_count() == col.warmup, col.name
        if col.nullable_when is None:
            assert s.slice(col.warmup).null_count() == 0, col.name
        else:
            assert s[col.warmup] is not None, col.name


def test_window_std_is_recovered_from_the_stored_fit():
    rng = np.random.default_rng(3)
    y = 100 + np.cumsum(rng.normal(0, 0.01, 300))
    fits = rolling_fits(y, 30, dimensionless=False)
    std = window_std_from_fit(30, fits[METRICS.index("rmse")], fits[METRICS.index("lin_slope")], fits[METRICS.index("a2")])
    want = pl.Series(y).rolling_std(30, ddof=0).to_numpy()
    assert np.allclose(std[29:], want[29:], rtol=1e-9)
