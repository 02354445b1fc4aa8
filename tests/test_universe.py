"""The universe is derived from the currency list: counts and orientation laws."""

from collections import Counter

import pytest

from bqx import universe as u


def test_currencies_in_priority_order():
    assert u.CURRENCIES == ("EUR", "GBP", "AUD", "NZD", "USD", "CAD", "CHF", "JPY")


def test_28_pairs_in_market_orientation():
    assert len(u.PAIRS) == 28 == 8 * 7 // 2
    assert u.PAIR_NAMES == tuple(sorted(u.PAIR_NAMES))
    for p in u.PAIRS:
        assert u.CURRENCIES.index(p.base) < u.CURRENCIES.index(p.quote)
    assert {"EURUSD", "USDJPY", "GBPUSD", "AUDNZD", "CADCHF", "NZDCAD"} <= set(u.PAIR_NAMES)
    assert "USDEUR" not in u.PAIR_NAMES


def test_seven_pairs_per_currency():
    counts = Counter(c for p in u.PAIRS for c in (p.base, p.quote))
    assert counts == {c: 7 for c in u.CURRENCIES}
    assert all(len(u.pairs_of(c)) == 7 for c in u.CURRENCIES)


def test_twelve_related_pairs_with_sides():
    for p in u.PAIRS:
        rel = u.related(p.name)
        assert len(rel) == 12 == 2 * 6
        assert len(u.base_peers(p.name)) == 6 and len(u.quote_peers(p.name)) == 6
        for r in rel:
            q = u.pair(r.pair)
            assert r.same_side == (p.side(r.shared) == q.side(r.shared))
    eurusd = {r.pair: r for r in u.related("EURUSD")}
    assert eurusd["EURJPY"].same_side and eurusd["EURJPY"].shared == "EUR"   # EUR base in both
    assert not eurusd["USDJPY"].same_side and eurusd["USDJPY"].shared == "USD"  # quote vs base
    assert eurusd["GBPUSD"].same_side                                         # USD quote in both
    assert eurusd["EURGBP"].same_side and eurusd["EURGBP"].shared == "EUR"   # EUR base in both


def test_56_triangles_in_market_orientation():
    assert len(u.TRIANGLES) == 56 == 8 * 7 * 6 // 6
    for t in u.TRIANGLES:
        for name in t.pairs:
            assert name in u.PAIR_NAMES
        assert [t.omega(p) for p in t.pairs] == [1, 1, -1]
    for p in u.PAIRS:
        assert len(u.triangles_of(p.name)) == 6
    for c in u.CURRENCIES:
        assert len(u.triangles_of_currency(c)) == 21 == 7 * 6 // 2


def test_unknown_pair_lists_the_known_ones():
    with pytest.raises(u.UnknownPairError, match="EURUSD"):
        u.pair("USDEUR")
    assert u.pair("eur/usd").name == "EURUSD"
    assert u.pair("USDJPY").pip == 0.01 and u.pair("EURUSD").pip == 0.0001
