"""currency_indices: strength laws on a latent-price market, hand cases, oracles, partial pair sets."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import polars as pl
import pytest

from bqx.bar_schema import conform
from bqx.kernels.aligned import align, coverage, rank_scaled
from bqx.core.declaration import Ctx, PairInfo
from bqx.families.currency_indices import currency_indices as FAM, origin
from bqx.core.runner import run_cross_family
from bqx.universe import CURRENCIES, PAIRS, pair, pairs_of, related

START = datetime(2024, 7, 1, tzinfo=timezone.utc)


def latent_market(n: int = 400, seed: int = 7, pairs=None, drop=None, bump=None, spread: float = 1e-5) -> tuple[pl.DataFrame, dict]:
    """28 pairs (or `pairs`) from 7 latent log-prices against USD, one bar a minute, no noise or rounding.

    c_BQ = exp(x_B − x_Q); bid/ask = mid · exp(∓spread). `drop` = {pair: row indices without a bar};
    `bump` = (pair, rows, bp): the pair's log price raised by bp basis points on those rows.
    """
    rng = np.random.default_rng(seed)
    x = {c: np.cumsum(rng.normal(0.0, 2e-4, n)) + rng.normal(0.0, 0.5) for c in CURRENCIES if c != "USD"}
    x["USD"] = np.zeros(n)
    ts = [START + timedelta(minutes=i) for i in range(n)]
    parts = []
    for p in PAIRS:
        if pairs is not None and p.name not in pairs:
            continue
        lc = x[p.base] - x[p.quote]
        if bump is not None and bump[0] == p.name:
            lc = lc.copy()
            lc[bump[1]] += bump[2] * 1e-4
        c = np.exp(lc)
        f = pl.DataFrame({"pair": p.name, "ts": ts, "open": c, "high": c, "low": c, "close": c, "volume": 1.0,
                          "bid_close": c * np.exp(-spread), "ask_close": c * np.exp(spread)})
        if drop and p.name in drop:
            keep = np.ones(n, dtype=bool)
            keep[list(drop[p.name])] = False
            f = f.filter(pl.Series(keep))
        parts.append(f)
    return conform(pl.concat(parts), with_pair=True).sort("pair", "ts"), x


def ctx_for(fam, frame: pl.DataFrame, anchor=None, **params) -> Ctx:
    infos = {p: PairInfo(p) for p in frame["pair"].unique().to_list()}
    return Ctx(params=fam.resolve_params(params), baseline_time=START, pairs=infos, anchor=anchor)


def run(frame: pl.DataFrame, anchor=None, **params):
    ctx = ctx_for(FAM, frame, anchor, **params)
    if anchor is None:
        ctx = ctx_for(FAM, frame, origin(frame, ctx), **params)
    cols, tables = run_cross_family(FAM, frame, ctx)
    return pl.concat([frame.select("pair", "ts", "close"), cols], how="horizontal"), tables["currency_index"]


def test_strengths_sum_to_zero_at_every_timestamp():
    frame, _ = latent_market(n=300, drop={"EURUSD": range(50, 53), "AUDNZD": [10, 200]})
    _, table = run(frame)
    s = table.select([f"ccy_{c}" for c in CURRENCIES]).to_numpy()
    assert np.isfinite(s).all()  # gaps of 3 minutes are carried: every currency is defined
    assert np.abs(s.sum(axis=1)).max() < 1e-12


def test_pair_log_return_is_seven_eighths_of_strength_gap():
    # ln c_p = x_B − x_Q ⇒ S_C = (100/7)(8·Δx_C − Σ_D Δx_D) ⇒ S_B − S_Q = (800/7)·ln(c_p/c_p(t0))
    frame, _ = latent_market(n=300)
    out, _ = run(frame)
    c0 = out.group_by("pair").agg(pl.col("close").first().alias("c0"))
    out = out.join(c0, on="pair")
    lhs = 100.0 * np.log(out["close"].to_numpy() / out["c0"].to_numpy())
    rhs = 7.0 / 8.0 * (out["ccy_base"].to_numpy() - out["ccy_quote"].to_numpy())
    assert np.abs(lhs - rhs).max() < 1e-9


def test_strength_hand_case_and_origin():
    # EUR's 7 pairs, EUR the base of all: S_EUR = (100/7)·Σ ln(c/c0). t0 = first minute where all 28 have a bar.
    frame, _ = latent_market(n=5, drop={"GBPJPY": [0]})
    ctx = ctx_for(FAM, frame)
    anchor = origin(frame, ctx)
    assert anchor["ts"] == (START + timedelta(minutes=1)).isoformat()
    _, table = run(frame, anchor)
    assert table["ccy_EUR"][0] is None  # before t0
    closes = {p: frame.filter(pl.col("pair") == p)["close"] for p in pairs_of("EUR")}
    expect = 100.0 / 7.0 * sum(np.log(closes[p][4] / anchor["closes"][p]) for p in pairs_of("EUR"))
    assert table["ccy_EUR"][4] == pytest.approx(expect, rel=1e-12, abs=1e-15)
    # USD is the quote of EURUSD, GBPUSD, AUDUSD, NZDUSD and the base of USDCAD, USDCHF, USDJPY
    sides = {p: pair(p).side("USD") for p in pairs_of("USD")}
    assert sides == {"AUDUSD": -1, "EURUSD": -1, "GBPUSD": -1, "NZDUSD": -1, "USDCAD": 1, "USDCHF": 1, "USDJPY": 1}


def test_rank_scaled_hand_cases():
    m = np.array([[3.0, 1.0, 2.0, 2.0], [1.0, 1.0, 1.0, 1.0], [0.0, np.nan, 1.0, 2.0]])
    got = rank_scaled(m)
    # ranks 4, 1, 2.5, 2.5 → (r − 1)/3; all tied → 2.5 each; NULL in a row → all NULL
    np.testing.assert_allclose(got[0], [3 / 3, 0 / 3, 1.5 / 3, 1.5 / 3])
    np.testing.assert_allclose(got[1], [0.5] * 4)
    assert np.isnan(got[2]).all()


def test_ranks_momentum_dispersion_against_pandas():
    frame, _ = latent_market(n=200)
    out, table = run(frame)
    s = table.to_pandas().set_index("ts")
    ds = s - s.shift(60)
    ranks = (ds.rank(axis=1, method="average") - 1.0) / 7.0
    disp = ds.std(axis=1, ddof=0)
    for name in ("EURUSD", "GBPJPY", "CADCHF"):
        p = pair(name)
        got = out.filter(pl.col("pair") == name)
        np.testing.assert_allclose(got["ccy_base_mom_60"].to_numpy(), ds[f"ccy_{p.base}"].to_numpy(), atol=1e-12)
        np.testing.assert_allclose(got["ccy_quote_rank"].to_numpy(), ranks[f"ccy_{p.quote}"].to_numpy(), atol=1e-12)
        np.testing.assert_allclose(got["ccy_dispersion_60"].to_numpy(), disp.to_numpy(), atol=1e-12)
        assert got["ccy_base_rank"].null_count() == 60  # ΔS needs 60 earlier union rows


def test_related_corr_against_pandas_with_carried_closes():
    frame, _ = latent_market(n=240, drop={"EURGBP": [100, 101], "USDJPY": [150]})
    out, _ = run(frame)
    wide = frame.pivot(on="pair", index="ts", values="close").sort("ts").to_pandas().set_index("ts")
    r = np.log(wide.ffill()).diff()  # carried closes (gaps ≤ 5 min): 0 return where carried
    p = "EURUSD"
    terms = [(1 if q.same_side else -1) * r[p].rolling(60).corr(r[q.pair]) for q in related(p)]
    expect = sum(terms) / 12.0
    got = out.filter(pl.col("pair") == p)["ccy_related_corr_60"].to_numpy()
    np.testing.assert_allclose(got, expect.to_numpy(), atol=1e-9)
    assert np.isnan(got[:60]).all() and np.isfinite(got[60:]).all()


def test_close_older_than_five_minutes_makes_currencies_null():
    frame, _ = latent_market(n=40, drop={"EURJPY": range(10, 16)})  # bars 10..15 missing: 6 minutes
    _, table = run(frame)
    eur = table["ccy_EUR"].to_numpy()
    usd = table["ccy_USD"].to_numpy()
    # minutes 10..14 carry the close of minute 9 (1..5 minutes old); minute 15 is 6 minutes old
    assert np.isfinite(eur[10:15]).all() and np.isnan(eur[15]) and np.isfinite(eur[16])
    assert table["ccy_JPY"][15] is None and np.isfinite(usd).all()


def test_usd_pairs_only(caplog):
    usd_pairs = pairs_of("USD")
    frame, _ = latent_market(n=100, pairs=usd_pairs)
    with caplog.at_level(logging.WARNING, logger="bqx.families.cross_pair"):
        out, table = run(frame)
    assert "7 currencies skipped" in caplog.text and "EUR (missing EURAUD" in caplog.text
    assert table["ccy_USD"].null_count() == 0
    assert all(table[f"ccy_{c}"].null_count() == 100 for c in CURRENCIES if c != "USD")
    eurusd = out.filter(pl.col("pair") == "EURUSD")
    assert eurusd["ccy_quote"].null_count() == 0 and eurusd["ccy_base"].null_count() == 100
    for col in ("ccy_base_rank", "ccy_dispersion_60", "ccy_related_corr_60"):
        assert out[col].null_count() == out.height  # needs all 8 currencies / all 12 related pairs
    cov = coverage(usd_pairs)
    assert cov["currencies"] == ["USD"] and sorted(cov["skipped_currencies"]) == sorted(set(CURRENCIES) - {"USD"})
    assert cov["triangles"] == [] and len(cov["skipped_triangles"]) == 56
    assert cov["skipped_currencies"]["JPY"] == ["AUDJPY", "CADJPY", "CHFJPY", "EURJPY", "GBPJPY", "NZDJPY"]


def test_aligned_returns_are_zero_where_carried():
    frame, _ = latent_market(n=20, pairs=("EURUSD", "GBPUSD"), drop={"GBPUSD": [5, 6]})
    al = align(frame)
    r = al.returns()
    g = al.col("GBPUSD")
    assert r[5, g] == 0.0 and r[6, g] == 0.0 and not al.own[5, g]
    lc = np.log(frame.filter(pl.col("pair") == "GBPUSD")["close"].to_numpy())
    assert r[7, g] == pytest.approx(lc[5] - lc[4], abs=1e-15)  # row 7 is GBPUSD's 6th bar, after bar 4
