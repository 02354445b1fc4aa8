"""advanced: peer structure and orientation against pandas oracles, regime hand cases, moments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from bqx.families.advanced import _trend_bars, advanced as FAM
from bqx.core.declaration import Ctx, PairInfo
from bqx.core.runner import run_cross_family
from bqx.universe import PAIR_NAMES, base_peers, pair, quote_peers, related
from tests.families.test_currency_indices import START, latent_market, run as run_ccy

N = 420


def with_technical(frame: pl.DataFrame, seed: int = 5) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    n = frame.height
    return frame.with_columns(ti_adx_14=pl.Series(rng.uniform(10, 40, n)), ti_plus_di_14=pl.Series(rng.uniform(0, 40, n)),
                              ti_minus_di_14=pl.Series(rng.uniform(0, 40, n)))


def run(frame: pl.DataFrame) -> pl.DataFrame:
    ctx = Ctx(params=FAM.resolve_params(), baseline_time=START, pairs={p: PairInfo(p) for p in frame["pair"].unique()})
    cols, tables = run_cross_family(FAM, frame, ctx)
    assert tables == {}
    return pl.concat([frame.select("pair", "ts"), cols], how="horizontal")


@pytest.fixture(scope="module")
def market():
    # every pair gets its own idiosyncratic noise so peers are not perfectly consistent; a 3-minute gap is carried
    noise = np.random.default_rng(11).normal(0.0, 0.5, N)
    frame, _ = latent_market(n=N, seed=2, bump=("GBPJPY", np.arange(N), noise), drop={"EURJPY": [200, 201, 202]})
    frame = with_technical(frame)
    out = run(frame)
    wide = frame.pivot(on="pair", index="ts", values="close").sort("ts").to_pandas().set_index("ts").ffill()
    return frame, out, np.log(wide).diff(), np.log(wide) - np.log(wide).shift(60)


def col(out: pl.DataFrame, name: str, column: str) -> np.ndarray:
    """The column on the union timeline (every minute of the fixture), NaN where the pair has no bar."""
    got = out.filter(pl.col("pair") == name)
    minute = ((got["ts"] - START).dt.total_minutes()).to_numpy()
    full = np.full(N if got.height > 12 else got.height, np.nan)
    full[minute] = got[column].to_numpy()
    return full


def on_bars(out: pl.DataFrame, name: str, expect) -> np.ndarray:
    """An oracle on the union timeline, NaN where the pair has no bar of its own (no output row)."""
    bars = np.isfinite(col(out, name, "adv_adx_regime"))  # the fixture's ADX is never NULL
    return np.where(bars, np.asarray(expect, dtype=np.float64), np.nan)


def test_peers_and_orientation_hand_cases():
    assert base_peers("GBPJPY") == ("EURGBP", "GBPAUD", "GBPCAD", "GBPCHF", "GBPNZD", "GBPUSD")
    assert quote_peers("GBPJPY") == ("AUDJPY", "CADJPY", "CHFJPY", "EURJPY", "NZDJPY", "USDJPY")
    # GBP is the quote of EURGBP: oriented to GBP its return is −r; JPY is the quote of every JPY pair
    assert pair("EURGBP").side("GBP") == -1 and pair("GBPAUD").side("GBP") == 1
    same = {r.pair: r.same_side for r in related("GBPJPY")}
    assert same["EURGBP"] is False and same["GBPUSD"] is True and same["USDJPY"] is True


def test_peer_correlations_against_pandas(market):
    _, out, r, _ = market
    for p in ("GBPJPY", "EURJPY", "AUDNZD"):
        pp = pair(p)
        for side, ccy, peers in (("base", pp.base, base_peers(p)), ("quote", pp.quote, quote_peers(p))):
            mine = pp.side(ccy) * r[p]
            for n in (15, 60):
                expect = sum(mine.rolling(n).corr(pair(q).side(ccy) * r[q]) for q in peers) / 6.0
                np.testing.assert_allclose(col(out, p, f"adv_corr_{side}_{n}"), on_bars(out, p, expect), atol=1e-9)
        base60 = sum(pp.side(pp.base) * r[p].rolling(60).corr(pair(q).side(pp.base) * r[q]) for q in base_peers(p)) / 6
        stab = on_bars(out, p, base60.rolling(240).std(ddof=0))
        np.testing.assert_allclose(col(out, p, "adv_corr_stability"), stab, atol=1e-9)


def test_relative_strength_dispersion_breadth_divergence(market):
    _, out, r, big = market
    p = "GBPJPY"
    pp = pair(p)
    t = N - 1
    for side, ccy, peers in (("base", pp.base, base_peers(p)), ("quote", pp.quote, quote_peers(p))):
        vals = np.array([pair(q).side(ccy) * big[q].iloc[t] for q in peers])
        own = pp.side(ccy) * big[p].iloc[t]
        assert col(out, p, f"adv_rs_{side}_60")[t] == pytest.approx((own - vals.mean()) / vals.std(), rel=1e-9)
        assert col(out, p, f"adv_disp_{side}_60")[t] == pytest.approx(vals.std(), rel=1e-9)
    # towards p: oriented to the shared currency, negated for quote peers
    towards = {q.pair: (pair(q.pair).side(q.shared) * (1 if q.shared == pp.base else -1)) for q in related(p)}
    rt = np.array([towards[q] * big[q].iloc[t] for q in towards])
    assert col(out, p, "adv_mom_divergence_60")[t] == pytest.approx(big[p].iloc[t] - rt.mean(), rel=1e-9)
    assert col(out, p, "adv_peer_breadth_60")[t] == pytest.approx(np.mean(np.sign(rt) == np.sign(big[p].iloc[t])))
    std_p = r[p].iloc[t - 59:t + 1].std(ddof=0)
    std_q = np.mean([r[q].iloc[t - 59:t + 1].std(ddof=0) for q in towards])
    assert col(out, p, "adv_vol_ratio_peers")[t] == pytest.approx(std_p / std_q, rel=1e-9)
    ranks = (big.abs().rank(axis=1, method="average") - 1.0) / 27.0
    np.testing.assert_allclose(col(out, p, "adv_mom_rank_60"), ranks[p].to_numpy(), atol=1e-12)
    assert np.isnan(col(out, p, "adv_mom_rank_60")[:60]).all()


def test_lead_lag_and_usd_beta(market):
    frame, out, r, _ = market
    p = "EURJPY"
    pp = pair(p)
    m = sum(pair(q.pair).side(q.shared) * (1 if q.shared == pp.base else -1) * r[q.pair] for q in related(p)) / 12.0
    corrs = pd.concat([r[p].rolling(240).corr(m.shift(k)) for k in range(1, 6)], axis=1).to_numpy()
    pick = np.nanargmax(np.abs(np.nan_to_num(corrs, nan=-1.0)), axis=1)
    expect = np.where(np.isnan(corrs).any(axis=1), np.nan, corrs[np.arange(N), pick])
    np.testing.assert_allclose(col(out, p, "adv_lead_lag_5"), on_bars(out, p, expect), atol=1e-9)
    assert np.isnan(expect[244]) and np.isfinite(expect[245])
    # beta against the 1-bar change of ccy_USD from the currency_indices table (an independent path)
    _, table = run_ccy(frame.drop("ti_adx_14", "ti_plus_di_14", "ti_minus_di_14"))
    d_usd = table["ccy_USD"].to_numpy()
    d_usd = np.diff(d_usd, prepend=np.nan)
    for t in (300, N - 1):
        b = np.polyfit(d_usd[t - 239:t + 1], r[p].to_numpy()[t - 239:t + 1], 1)[0]
        assert col(out, p, "adv_beta_usd_240")[t] == pytest.approx(b, rel=1e-7)


def test_regime_hand_case():
    frame, _ = latent_market(n=12, pairs=("EURUSD", "GBPUSD"))
    nan = np.nan
    adx = [nan, nan, 30, 31, 20, 26, 27, 19, 22, 26, 24, 25]
    pdi = [nan, 10, 20, 15, 15, 10, 0, 5, 5, 5, 5, 5]
    mdi = [nan, 15, 15, 15, 20, 10, 0, 5, 5, 5, 5, 5]
    tech = pl.DataFrame({"ti_adx_14": adx * 2, "ti_plus_di_14": pdi * 2, "ti_minus_di_14": mdi * 2}, strict=False)
    out = run(pl.concat([frame, tech.fill_nan(None)], how="horizontal"))
    e = lambda c: col(out, "EURUSD", c)  # noqa: E731
    np.testing.assert_array_equal(e("adv_adx_regime"), [nan, nan, 1, 1, 0, 1, 1, -1, 0, 1, 0, 0])
    np.testing.assert_array_equal(e("adv_trend_bars"), [nan, nan, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(e("adv_adx_slope_5")[7:], [19 - 30, 22 - 31, 26 - 20, 24 - 26, 25 - 27])
    np.testing.assert_array_equal(e("adv_di_cross")[:7], [nan, nan, 1, 0, -1, 0, 0])
    np.testing.assert_allclose(e("adv_di_ratio")[:7], [nan, -5 / 25, 5 / 35, 0, -5 / 35, 0, nan])
    np.testing.assert_array_equal(_trend_bars(np.full(8, 30.0), 4), [0, 1, 2, 3, 4, 4, 4, 4])


def test_higher_moments_against_numpy(market):
    frame, out, _, _ = market
    c = frame.filter(pl.col("pair") == "GBPJPY")["close"].to_numpy()
    r = np.diff(np.log(c))
    w = r[-240:]
    d = w - w.mean()
    m2, m3, m4 = (d ** 2).mean(), (d ** 3).mean(), (d ** 4).mean()
    skew, kurt = m3 / m2 ** 1.5, m4 / m2 ** 2 - 3
    got = lambda c_: col(out, "GBPJPY", c_)[-1]  # noqa: E731
    assert got("adv_skew_240") == pytest.approx(skew, rel=1e-7)
    assert got("adv_kurt_240") == pytest.approx(kurt, rel=1e-7)
    assert got("adv_jb_240") == pytest.approx(40.0 * (skew ** 2 + kurt ** 2 / 4), rel=1e-7)
    assert got("adv_downside_dev_60") == pytest.approx(np.sqrt((np.minimum(r[-60:], 0) ** 2).mean()), rel=1e-9)
    tail = np.quantile(w, 0.95) / abs(np.quantile(w, 0.05))
    assert got("adv_tail_ratio_240") == pytest.approx(tail, rel=1e-9)
    assert np.isnan(col(out, "GBPJPY", "adv_skew_240")[239]) and np.isfinite(col(out, "GBPJPY", "adv_skew_240")[240])


def test_partial_pairs_null_what_needs_absent_peers():
    frame, _ = latent_market(n=80, pairs=[p for p in PAIR_NAMES if p != "AUDNZD"])
    out = run(with_technical(frame))
    audusd = out.filter(pl.col("pair") == "AUDUSD")
    eurusd = out.filter(pl.col("pair") == "EURUSD")
    assert audusd["adv_corr_base_15"].null_count() == 80  # AUDNZD is a base peer of AUDUSD and absent
    assert audusd["adv_corr_quote_15"].null_count() == 15  # its USD peers are all present: only the warm-up
    assert audusd["adv_peer_breadth_60"].null_count() == 80  # needs all 12 related pairs
    assert eurusd["adv_rs_base_60"].null_count() == 60 and eurusd["adv_peer_breadth_60"].null_count() == 60
    assert out["adv_mom_rank_60"].null_count() == out.height  # needs all 28 pairs
