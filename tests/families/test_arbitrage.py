"""arbitrage: closure on a latent-price market, a planted mispricing, hand round trips, the z-score oracle."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pandas as pd
import polars as pl
import pytest

from bqx.bar_schema import conform
from bqx.families.arbitrage import arbitrage as FAM
from bqx.core.declaration import Ctx, PairInfo
from bqx.core.runner import run_cross_family
from bqx.universe import PAIR_NAMES, TRIANGLES, pairs_of, related, triangles_of
from tests.families.test_currency_indices import START, latent_market


def run(frame: pl.DataFrame, infos=None, **params):
    infos = infos or {p: PairInfo(p) for p in frame["pair"].unique().to_list()}
    ctx = Ctx(params=FAM.resolve_params(params), baseline_time=START, pairs=infos)
    cols, tables = run_cross_family(FAM, frame, ctx)
    return pl.concat([frame.select("pair", "ts"), cols], how="horizontal"), tables["triangles"]


def resid_of(out: pl.DataFrame, name: str) -> np.ndarray:
    return out.filter(pl.col("pair") == name)["arb_resid_bps"].to_numpy()


def test_consistent_market_closes_every_triangle():
    frame, _ = latent_market(n=200)
    out, table = run(frame)
    tri = table.drop("ts").to_numpy()
    assert tri.shape == (200, 56) and np.isfinite(tri).all()
    assert np.abs(tri).max() < 1e-9
    assert out["arb_resid_bps"].abs().max() < 1e-9
    # spread 1e-5 on each side: every round trip loses 3e-5 = 0.3 bp, so no opportunity
    np.testing.assert_allclose(out["arb_exec_bps"].to_numpy(), -0.3, atol=1e-9)
    assert out["arb_opportunity"].sum() == 0


def test_planted_mispricing_shows_where_the_law_says():
    rows = np.arange(100, 160)
    frame, _ = latent_market(n=200, bump=("EURUSD", rows, 5.0))
    out, table = run(frame)
    inside = np.zeros(200, dtype=bool)
    inside[rows] = True
    # the pair itself: +5 bp (its price minus the implied one), 0 outside the stretch
    np.testing.assert_allclose(resid_of(out, "EURUSD")[inside], 5.0, atol=1e-8)
    assert np.abs(resid_of(out, "EURUSD")[~inside]).max() < 1e-9
    # its 6 triangles: ε_T = ω·5 (EURUSD is c1c3 of EUR-X-USD for X before USD, c1c2 of EUR-USD-X after)
    mine = {t.name: t.omega("EURUSD") for t in triangles_of("EURUSD")}
    assert mine == {"EURGBPUSD": -1, "EURAUDUSD": -1, "EURNZDUSD": -1, "EURUSDCAD": 1, "EURUSDCHF": 1, "EURUSDJPY": 1}
    for t in TRIANGLES:
        v = table[f"tri_{t.name}"].to_numpy()
        np.testing.assert_allclose(v[inside], 5.0 * mine.get(t.name, 0), atol=1e-8)
        assert np.abs(v[~inside]).max() < 1e-9
    # the 12 related pairs: one shared triangle of 6, so ±5/6 bp; the 15 others: 0
    rel = {q.pair for q in related("EURUSD")}
    for name in PAIR_NAMES:
        v = resid_of(out, name)
        if name in rel:
            (shared,) = [t for t in triangles_of(name) if "EURUSD" in t.pairs]
            expect = shared.omega(name) * shared.omega("EURUSD") * 5.0 / 6.0
            np.testing.assert_allclose(v[inside], expect, atol=1e-8)
            assert abs(expect) == pytest.approx(5.0 / 6.0)
        elif name != "EURUSD":
            assert np.abs(v).max() < 1e-9, name


def three_pair_frame(asks_eurusd=(1.1040, 1.1050)) -> pl.DataFrame:
    ts = [START, START + timedelta(minutes=1)]
    quotes = {  # pair: (bid, ask) per row
        "EURGBP": [(0.8499, 0.8501), (0.8499, 0.8501)],
        "GBPUSD": [(1.2999, 1.3001), (1.2999, 1.3001)],
        "EURUSD": [(asks_eurusd[0] - 0.0002, asks_eurusd[0]), (asks_eurusd[1] - 0.0002, asks_eurusd[1])],
    }
    parts = []
    for name, q in quotes.items():
        bid = [b for b, _ in q]
        ask = [a for _, a in q]
        mid = [(b + a) / 2 for b, a in q]
        parts.append(pl.DataFrame({"pair": name, "ts": ts, "open": mid, "high": mid, "low": mid, "close": mid,
                                   "bid_close": bid, "ask_close": ask}))
    return conform(pl.concat(parts), with_pair=True).sort("pair", "ts")


def test_round_trips_by_hand():
    out, table = run(three_pair_frame(), threshold_bps=1.0)
    # triangle EUR-GBP-USD: c1c2 = EURGBP, c2c3 = GBPUSD, c1c3 = EURUSD
    a0 = (math.log(0.8499) + math.log(1.2999) - math.log(1.1040)) * 1e4  # sell EURGBP, sell GBPUSD, buy EURUSD
    b0 = (math.log(1.1038) - math.log(1.3001) - math.log(0.8501)) * 1e4
    a1 = (math.log(0.8499) + math.log(1.2999) - math.log(1.1050)) * 1e4
    b1 = (math.log(1.1048) - math.log(1.3001) - math.log(0.8501)) * 1e4
    assert a0 > 1.0 and max(a1, b1) < 1.0
    for name in ("EURGBP", "GBPUSD", "EURUSD"):
        got = out.filter(pl.col("pair") == name)
        np.testing.assert_allclose(got["arb_exec_bps"].to_numpy(), [max(a0, b0), max(a1, b1)], rtol=1e-12)
        assert got["arb_opportunity"].to_list() == [1.0, 0.0]
    mid = {"EURGBP": 0.85, "GBPUSD": 1.30, "EURUSD": 1.1039}
    eps0 = (math.log(mid["EURGBP"]) + math.log(mid["GBPUSD"]) - math.log(mid["EURUSD"])) * 1e4
    assert table["tri_EURGBPUSD"][0] == pytest.approx(eps0, rel=1e-12)
    assert resid_of(out, "EURUSD")[0] == pytest.approx(-eps0, rel=1e-12)  # ω = −1 for c1c3
    assert table["tri_EURAUDUSD"].null_count() == 2  # AUD pairs absent: NULL throughout


def test_no_bid_ask_gives_null_round_trips():
    frame = three_pair_frame()
    infos = {p: PairInfo(p, has_bidask=(p != "EURUSD")) for p in ("EURGBP", "GBPUSD", "EURUSD")}
    out, _ = run(frame, infos)
    assert out["arb_exec_bps"].null_count() == out.height and out["arb_opportunity"].null_count() == out.height
    assert out["arb_resid_bps"].null_count() == 0


def test_triangle_needs_own_bars_not_carried_closes():
    frame, _ = latent_market(n=30, bump=("GBPUSD", np.arange(30), 2.0), drop={"GBPUSD": [10]})
    out, table = run(frame)
    assert table["tri_EURGBPUSD"][10] is None and table["tri_GBPUSDJPY"][10] is None
    assert table["tri_EURGBPUSD"][9] == pytest.approx(2.0, abs=1e-8)  # GBPUSD is c2c3: ε = ω·2 = +2
    # EURUSD at minute 10: 5 of its 6 triangles evaluated, the sixth (via GBP) left out of the mean
    assert resid_of(out, "EURUSD")[10] == pytest.approx(0.0, abs=1e-9)
    assert resid_of(out, "EURUSD")[9] == pytest.approx(-2.0 / 6.0, abs=1e-8)  # EURUSD is c1c3 there: ω = −1


def test_zscore_over_last_240_non_null_values():
    n = 700
    noise = np.random.default_rng(3).normal(0.0, 1.0, n)
    eur_crosses = [p for p in pairs_of("EUR") if p != "EURUSD"]
    gaps = {p: list(range(300, 330)) + [400, 401] for p in eur_crosses}  # EURUSD: no triangle evaluated there
    frame, _ = latent_market(n=n, bump=("EURUSD", np.arange(n), noise), drop=gaps)
    out, _ = run(frame)
    got = out.filter(pl.col("pair") == "EURUSD")
    v = pd.Series(got["arb_resid_bps"].to_numpy())
    assert v.isna().sum() == 32
    dense = v.dropna()
    z = (dense - dense.rolling(240).mean()) / dense.rolling(240).std(ddof=0)
    expect = z.reindex(v.index).to_numpy()
    np.testing.assert_allclose(got["arb_resid_z_240"].to_numpy(), expect, rtol=1e-7, atol=1e-9)
    assert np.isfinite(expect[-1]) and np.isnan(expect[238]) and np.isfinite(expect[239])
