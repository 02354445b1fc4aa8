"""advanced (stage S2.3, cross-pair): peer structure on the union timeline, ADX regime, higher moments.

Peers come from bqx.universe: base_peers / quote_peers (6 each), related (12) and Pair.side. A peer
q's return oriented towards p is s·r_q, s = +1 when the shared currency is on the same side of
both pairs (oriented to the shared currency and, for quote peers, negated).
"""

from __future__ import annotations

from typing import Any, Mapping

import numba as nb
import numpy as np
import polars as pl

from bqx.kernels.aligned import CARRY_MARGIN, align, peer_corr, rank_scaled, shift_rows
from bqx.kernels.rolling import rolling_corr, rolling_regression_slope
from bqx.core.declaration import Column, Ctx, series
from bqx.core.registry import family
from bqx.kernels.rolling import (
    EPS_ABS_STD, EPS_REL_STD, EPS_SCALE, TIE_REL, rolling_central_moments, rolling_mean, rolling_std, shift, sign_eps,
)
from bqx.universe import PAIR_NAMES, base_peers, pair, pairs_of, quote_peers, related

ADX_LOOKBACK, DI_LOOKBACK = 27, 14  # TA-Lib ADX(14) / PLUS_DI(14) lookbacks (technical's warm-up)
TREND_CAP = 1440
UNION = ("a pair involved is absent from the run, or a union-bar return or close in the window is undefined "
         "(a close missing now or on the previous union row)")


def columns(p: Mapping[str, Any]) -> list[Column]:
    def c(name, kind, warmup, text, when=UNION, bounded=False):
        return Column(name, kind, warmup, text, nullable_when=when, bounded=bounded)

    cols = []
    for side in ("base", "quote"):
        ccy = "B" if side == "base" else "Q"
        for n in (15, 60):
            cols.append(c(f"adv_corr_{side}_{n}", "continuous", n,
                          f"mean over the 6 {side} peers of corr(r_p, r_q), both oriented to {ccy}, over the last {n} "
                          "union-bar returns", UNION + ", or a std is zero", True))
    for side in ("base", "quote"):
        cols.append(c(f"adv_rs_{side}_60", "continuous", 60,
                      f"(R_p − mean R_q)/std R_q over the 6 {side} peers, every 60-union-bar log return R oriented to "
                      "the shared currency (R_p enters as −R_p for quote peers)", UNION + ", or the peers' std is zero"))
    for side in ("base", "quote"):
        cols.append(c(f"adv_disp_{side}_60", "continuous", 60,
                      f"population std of the 6 {side} peers' 60-union-bar log returns oriented to the shared currency"))
    cols += [
        c("adv_lead_lag_5", "continuous", 245,
          "among k = 1..5, corr over the last 240 union bars of r_p(t) with m(t−k), m = mean of the 12 related pairs' "
          "returns oriented towards p, with the largest |corr| (ties within 1e-9 · the largest: the smaller k)", UNION + ", or a std is zero", True),
        c("adv_beta_usd_240", "continuous", 240,
          "OLS slope over the last 240 union bars of r_p on the 1-bar change of ccy_USD, computed as "
          "(100/7)·Σ σ_{USD,q}·r_q over the 7 USD pairs (independent of the origin t0)",
          UNION + ", a USD pair is absent, or the std of the ccy_USD change is zero"),
        c("adv_corr_stability", "continuous", 299, "population std of adv_corr_base_60 over the last 240 union bars",
          UNION + ", or adv_corr_base_60 is NULL in the window", True),
        c("adv_vol_ratio_peers", "continuous", 60,
          "std of r_p / mean over the 12 related pairs of their std of r, over the last 60 union bars",
          UNION + ", or the mean of the peers' std is zero"),
        c("adv_mom_divergence_60", "continuous", 60,
          "R_p − mean over the 12 related pairs of their 60-union-bar log return oriented towards p"),
        c("adv_mom_rank_60", "ordinal", 60,
          "rank of |R_p| among the 28 pairs' |60-union-bar log returns|, (average rank − 1)/27, ties (within 1e-9 · the largest) averaged",
          UNION + " (NULL throughout unless all 28 pairs are present)", True),
        c("adv_peer_breadth_60", "continuous", 60,
          "fraction of the 12 related pairs whose R oriented towards p has the sign of R_p (sign 0 when |R| ≤ 1e-10, "
          "and 0 matches 0)", UNION, True),
        c("adv_adx_regime", "ordinal", ADX_LOOKBACK, "1 if ti_adx_14 > 25, −1 if < 20, else 0", "ti_adx_14 is NULL"),
        c("adv_di_ratio", "continuous", DI_LOOKBACK, "(+DI − −DI) / (+DI + −DI) of ti_plus_di_14, ti_minus_di_14",
          "a DI is NULL or +DI + −DI is zero", True),
        c("adv_adx_slope_5", "continuous", ADX_LOOKBACK + 5, "ti_adx_14(t) − ti_adx_14(t−5), the pair's own bars",
          "ti_adx_14 is NULL now or 5 bars earlier"),
        c("adv_trend_bars", "count", ADX_LOOKBACK,
          "bars since ADX last rose above 25 (or since its first value, or since a NULL, if it started above), "
          f"at most {TREND_CAP}; 0 while ADX ≤ 25", "ti_adx_14 is NULL"),
        c("adv_di_cross", "ordinal", DI_LOOKBACK + 1,
          "+1 when +DI − −DI goes from ≤ 0 to > 0, −1 when it goes from ≥ 0 to < 0, else 0; |+DI − −DI| ≤ 1e-9 · max(+DI, −DI) "
          "counts as 0 (stable comparisons)",
          "a DI is NULL now or on the previous bar"),
    ]
    own = "the pair's own bars, r = ln(c_t/c_(t−1))"
    cols += [
        c("adv_skew_240", "continuous", 240, f"m3/m2^1.5 of r over L_240 ({own})", "std of r is zero"),
        c("adv_kurt_240", "continuous", 240, f"m4/m2² − 3 of r over L_240 ({own})", "std of r is zero"),
        c("adv_jb_240", "continuous", 240, "(240/6)(S² + K²/4), S, K = adv_skew_240, adv_kurt_240", "std of r is zero"),
        c("adv_downside_dev_60", "continuous", 60, f"sqrt(mean of min(r, 0)² over L_60) ({own})", None),
        c("adv_tail_ratio_240", "continuous", 240, f"q95(r)/|q05(r)| over L_240, linear interpolation ({own})",
          "|q05| is zero (≤ 1e-12 · max(|q95|, |q05|))"),
    ]
    return cols


@nb.njit(cache=True)
def _trend_bars(adx: np.ndarray, cap: int) -> np.ndarray:
    """Bars since ADX last rose above 25 (a run start after ≤ 25 or NULL), capped; 0 while ≤ 25."""
    out = np.full(adx.shape[0], np.nan)
    start = -1
    for i in range(adx.shape[0]):
        a = adx[i]
        if np.isnan(a):
            start = -1
            continue
        if a > 25.0:
            if start < 0:
                start = i
            out[i] = min(i - start, cap)
        else:
            start = -1
            out[i] = 0.0
    return out


def _std_zero(std: np.ndarray, mean_abs: np.ndarray) -> np.ndarray:
    return (std <= EPS_REL_STD * mean_abs) | (std <= EPS_ABS_STD)


def _own_bar_columns(frame: pl.DataFrame, rows: slice) -> dict[str, np.ndarray]:
    """Regime (from technical's ADX/DI) and higher moments (from the close) on one pair's own bars."""
    part = frame[rows]
    adx = part["ti_adx_14"].cast(pl.Float64).to_numpy()
    pdi = part["ti_plus_di_14"].cast(pl.Float64).to_numpy()
    mdi = part["ti_minus_di_14"].cast(pl.Float64).to_numpy()
    c = part["close"].cast(pl.Float64).to_numpy()
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        out["adv_adx_regime"] = np.where(np.isnan(adx), np.nan, np.where(adx > 25, 1.0, np.where(adx < 20, -1.0, 0.0)))
        den = pdi + mdi
        zero = np.abs(den) <= EPS_SCALE * np.maximum(np.abs(pdi), np.abs(mdi))
        out["adv_di_ratio"] = np.where(zero, np.nan, (pdi - mdi) / den)
        out["adv_adx_slope_5"] = adx - shift(adx, 5)
        out["adv_trend_bars"] = _trend_bars(adx, TREND_CAP)
        d = pdi - mdi
        tie = TIE_REL * np.maximum(np.abs(pdi), np.abs(mdi))  # stable comparison of +DI and −DI
        side = np.where(d > tie, 1.0, np.where(d < -tie, -1.0, 0.0))
        side[np.isnan(d)] = np.nan
        prev = shift(side, 1)
        cross = np.where((prev <= 0) & (side > 0), 1.0, np.where((prev >= 0) & (side < 0), -1.0, 0.0))
        out["adv_di_cross"] = np.where(np.isnan(d) | np.isnan(prev), np.nan, cross)
        r = np.full_like(c, np.nan)
        r[1:] = np.log(c[1:] / c[:-1])
        m = rolling_central_moments(r, 240)
        std = np.sqrt(m[1])
        flat = _std_zero(std, rolling_mean(np.abs(r), 240))
        skew = np.where(flat, np.nan, m[2] / m[1] ** 1.5)
        kurt = np.where(flat, np.nan, m[3] / m[1] ** 2 - 3.0)
        out["adv_skew_240"], out["adv_kurt_240"] = skew, kurt
        out["adv_jb_240"] = (240.0 / 6.0) * (skew ** 2 + kurt ** 2 / 4.0)
        out["adv_downside_dev_60"] = np.sqrt(rolling_mean(np.minimum(r, 0.0) ** 2, 60))
        qs = pl.DataFrame({"r": pl.Series(r, nan_to_null=True)}).select(  # both quantiles in parallel
            pl.col("r").rolling_quantile(0.95, "linear", window_size=240).alias("q95"),
            pl.col("r").rolling_quantile(0.05, "linear", window_size=240).alias("q05"))
        q95, q05 = qs["q95"].to_numpy(), qs["q05"].to_numpy()
        tail_zero = np.abs(q05) <= EPS_SCALE * np.maximum(np.abs(q95), np.abs(q05))
        out["adv_tail_ratio_240"] = np.where(tail_zero, np.nan, q95 / np.abs(q05))
    return out


def _stats(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row mean, population std and mean |value| of a (T, k) matrix (NaN rows stay NaN)."""
    return m.mean(axis=1), m.std(axis=1), np.abs(m).mean(axis=1)


@family(name="advanced", stage="advanced", inputs=("bars", "technical", "statistics", "currency_indices"),
        columns=columns, context=TREND_CAP + 1 + CARRY_MARGIN, cross_pair=True)
def advanced(frame: pl.DataFrame, ctx: Ctx) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """Cross-pair peer correlations, relative strength, dispersion, lead-lag, USD beta, breadth on the
    union timeline; ADX regime and higher moments on the pair's own bars."""
    al = align(frame)
    t, npairs = al.n, len(al.pairs)
    nan = np.full(t, np.nan)
    r = np.asfortranarray(al.returns())  # column (pair) slices contiguous
    lc = np.log(al.close)
    big_r = np.asfortranarray(lc - shift_rows(lc, 60))
    u = {}
    u["adv_corr_base_15"], u["adv_corr_quote_15"] = peer_corr(al, r, 15)
    u["adv_corr_base_60"], u["adv_corr_quote_60"] = peer_corr(al, r, 60)

    usd = [al.col(q) for q in pairs_of("USD")]
    if any(j is None for j in usd):
        d_usd = nan
    else:
        d_usd = (100.0 / 7.0) * sum(pair(q).side("USD") * r[:, j] for q, j in zip(pairs_of("USD"), usd))

    if npairs == len(PAIR_NAMES):
        mom_rank = rank_scaled(np.abs(big_r))
    else:
        mom_rank = np.full((t, npairs), np.nan)

    names = [c.name for c in columns(ctx.params)]
    union_names = [n for n in names if n in (
        "adv_rs_base_60", "adv_rs_quote_60", "adv_disp_base_60", "adv_disp_quote_60", "adv_lead_lag_5",
        "adv_beta_usd_240", "adv_corr_stability", "adv_vol_ratio_peers", "adv_mom_divergence_60",
        "adv_peer_breadth_60")]
    for n in union_names:
        u[n] = np.full((t, npairs), np.nan)
    u["adv_mom_rank_60"] = mom_rank
    col_of = {name: j for j, name in enumerate(al.pairs)}
    std60 = {}
    for j, name in enumerate(al.pairs):
        std60[j] = rolling_std(r[:, j], 60)
    for j, name in enumerate(al.pairs):
        p = pair(name)
        for side, ccy, group in (("base", p.base, base_peers(name)), ("quote", p.quote, quote_peers(name))):
            ks = [col_of.get(q) for q in group]
            if any(k is None for k in ks):
                continue
            oriented = np.column_stack([pair(q).side(ccy) * big_r[:, k] for q, k in zip(group, ks)])
            own = p.side(ccy) * big_r[:, j]
            mean, std, mabs = _stats(oriented)
            with np.errstate(invalid="ignore", divide="ignore"):
                u[f"adv_rs_{side}_60"][:, j] = np.where(_std_zero(std, mabs), np.nan, (own - mean) / std)
            u[f"adv_disp_{side}_60"][:, j] = std
        rel = related(name)
        ks = [col_of.get(q.pair) for q in rel]
        if all(k is not None for k in ks):
            s = np.array([1.0 if q.same_side else -1.0 for q in rel])
            towards = r[:, ks] * s
            m = towards.mean(axis=1)
            corrs = np.column_stack([rolling_corr(r[:, j], shift_rows(m, k), 240, dimensionless=True) for k in range(1, 6)])
            a = np.abs(np.nan_to_num(corrs, nan=0.0))
            top = a.max(axis=1, keepdims=True)
            pick = np.argmax(a >= top - TIE_REL * top, axis=1)  # ties within 1e-9 · the max: the smaller k
            lead = corrs[np.arange(t), pick]
            lead[np.isnan(corrs).any(axis=1)] = np.nan
            u["adv_lead_lag_5"][:, j] = lead
            peer_std = np.column_stack([std60[k] for k in ks]).mean(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                zero = peer_std <= EPS_SCALE * np.column_stack([std60[k] for k in ks]).max(axis=1)
                u["adv_vol_ratio_peers"][:, j] = np.where(zero, np.nan, std60[j] / peer_std)
            big_towards = big_r[:, ks] * s
            u["adv_mom_divergence_60"][:, j] = big_r[:, j] - big_towards.mean(axis=1)
            with np.errstate(invalid="ignore"):
                agree = (sign_eps(big_towards) == sign_eps(big_r[:, j])[:, None]).mean(axis=1)
            agree[np.isnan(big_towards).any(axis=1) | np.isnan(big_r[:, j])] = np.nan
            u["adv_peer_breadth_60"][:, j] = agree
        u["adv_beta_usd_240"][:, j] = rolling_regression_slope(r[:, j], d_usd, 240)
        u["adv_corr_stability"][:, j] = rolling_std(u["adv_corr_base_60"][:, j], 240)

    values = {n: al.at_rows(m) for n, m in u.items()}
    own_cols = [n for n in names if n not in values]
    for n in own_cols:
        values[n] = np.full(frame.height, np.nan)
    for _, _, rows in al.segments():
        for n, v in _own_bar_columns(frame, rows).items():
            values[n][rows] = v
    return pl.DataFrame([series(n, values[n]) for n in names]), {}
