"""Bad live bars are rejected with a reason and leave the cached state as it was; late and missing pairs."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest

import bqx
from bqx.errors import UsageError
from tests.live.conftest import minutes, stored_bars

START = datetime(2024, 7, 31, 23, 50, tzinfo=timezone.utc)


@pytest.fixture
def replay_minutes(live_store):
    return minutes(stored_bars(live_store, START))


def _same(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.drop("live_bar_ts").equals(b.drop("live_bar_ts"), null_equal=True)


def _bad(minute: pl.DataFrame, **changes) -> pl.DataFrame:
    return minute.head(1).with_columns(**{k: pl.lit(v) for k, v in changes.items()})


@pytest.mark.parametrize("change, rule", [
    ({"high": 0.5}, "high-below-low"),
    ({"close": -1.0}, "non-positive-price"),
    ({"open": float("nan")}, "non-finite-price"),
    ({"high": 1e308}, "price-out-of-bounds"),
    ({"high": float("inf")}, "non-finite-price"),
    ({"volume": -3.0}, "negative-volume"),
    ({"pair": "EURXXX"}, "unknown-pair"),
    ({"pair": "GBPUSD"}, "not-followed"),
])
def test_malformed_bar_is_rejected_and_changes_nothing(live_store, replay_minutes, change, rule):
    clean = bqx.Live(live_store, until=START)
    dirty = bqx.Live(live_store, until=START)
    m0, m1 = replay_minutes[0], replay_minutes[1]
    bad = _bad(m0, **change)
    out = dirty.update(pl.concat([bad, m0.slice(1)]) if "pair" not in change else pl.concat([m0, bad]))
    assert dirty.rejected["rule"].to_list() == [rule]
    assert dirty.rejected["detail"][0]
    if "pair" not in change:  # the bad bar's pair is missing at m0: it is carried, then the next minute agrees
        assert out.filter(pl.col("pair") == m0["pair"][0])["live_status"].to_list() == ["carried"]
        clean.update(m0.slice(1))
    else:
        _same(out, clean.update(m0))
    _same(dirty.update(m1), clean.update(m1))


def test_duplicates_and_out_of_order_are_rejected(live_store, replay_minutes):
    clean = bqx.Live(live_store, until=START)
    live = bqx.Live(live_store, until=START)
    m0, m1, m2 = replay_minutes[:3]
    _same(live.update(m0), clean.update(m0))
    assert live.update(m0).height == 0
    assert set(live.rejected["rule"]) == {"duplicate-identical"}
    conflict = m0.head(1).with_columns(pl.col("close") * 1.0001, pl.col("high") * 1.001)
    live.update(conflict)
    assert live.rejected["rule"].to_list() == ["duplicate-conflict"]
    _same(live.update(m2), clean.update(m2))  # m1 skipped: each pair's m1 bar now comes out of order
    live.update(m1)
    assert set(live.rejected["rule"]) == {"out-of-order"}
    assert live.rejected["detail"].str.contains("last bar is at").all()
    nxt = replay_minutes[3]
    _same(live.update(nxt), clean.update(nxt))


def test_naive_timestamps_and_missing_columns(live_store, replay_minutes):
    live = bqx.Live(live_store, until=START)
    naive = replay_minutes[0].with_columns(pl.col("ts").dt.replace_time_zone(None))
    assert live.update(naive).height == 0
    assert set(live.rejected["rule"]) == {"naive-timestamp"}
    with pytest.raises(UsageError, match="lack the columns"):
        live.update(replay_minutes[0].drop("close"))
    assert live.update(replay_minutes[0]).height == 2  # nothing was taken from the bad inputs


def test_carry_marks_the_missing_pair(live_store, replay_minutes):
    live = bqx.Live(live_store, until=START, on_missing="carry")
    m0, m1 = replay_minutes[:2]
    first = live.update(m0)
    eur_only = m1.filter(pl.col("pair") == "EURUSD")
    out = live.update(eur_only)
    jpy = out.filter(pl.col("pair") == "USDJPY")
    assert jpy["live_status"].to_list() == ["carried"]
    assert jpy["ts"][0] == m1["ts"][0] and jpy["live_bar_ts"][0] == m0["ts"][0]
    prev = first.filter(pl.col("pair") == "USDJPY")
    assert jpy.drop("ts", "live_status", "live_bar_ts").equals(prev.drop("ts", "live_status", "live_bar_ts"))
    late = m1.filter(pl.col("pair") == "USDJPY")
    assert live.update(late).height == 0
    assert live.rejected["rule"].to_list() == ["late-bar"]


def test_wait_holds_a_minute_until_the_pair_comes_or_time_is_up(live_store, replay_minutes):
    now = [0.0]
    live = bqx.Live(live_store, until=START, on_missing="wait", wait_seconds=5, clock=lambda: now[0])
    m0, m1, m2 = replay_minutes[:3]
    assert live.update(m0.filter(pl.col("pair") == "EURUSD")).height == 0  # USDJPY's bar may still come
    now[0] = 2.0
    out = live.update(m0.filter(pl.col("pair") == "USDJPY"))
    assert out["live_status"].to_list() == ["ok", "ok"]
    assert live.update(m1.filter(pl.col("pair") == "EURUSD")).height == 0
    now[0] = 8.0
    out = live.poll()
    assert dict(zip(out["pair"], out["live_status"])) == {"EURUSD": "ok", "USDJPY": "carried"}
    # a later bar of the missing pair releases a held minute at once
    assert live.update(m2.filter(pl.col("pair") == "EURUSD")).height == 0
    nxt = replay_minutes[3].filter(pl.col("pair") == "USDJPY")
    out = live.update(nxt)
    assert out["ts"].unique().len() == 1 and out["ts"][0] == m2["ts"][0]
    assert not np.isnan(live.nbytes)


def test_failed_computation_rolls_back(live_store, replay_minutes, monkeypatch):
    clean = bqx.Live(live_store, until=START)
    live = bqx.Live(live_store, until=START)
    import bqx.live.session as session

    def boom(*a, **k):
        raise RuntimeError("family failed")

    monkeypatch.setattr(session, "compute_minute", boom)
    with pytest.raises(RuntimeError):
        live.update(replay_minutes[0])
    monkeypatch.undo()
    rows_before = {p: t.ts.end for p, t in clean.tails.items()}
    assert {p: t.ts.end for p, t in live.tails.items()} == rows_before
    _same(live.update(replay_minutes[0]), clean.update(replay_minutes[0]))


def test_config_names_the_store_and_must_agree_on_parameters(live_store, replay_minutes):
    from bqx.config import Config

    by_path = bqx.Live(live_store, until=START)
    by_config = bqx.Live(Config(store=live_store), until=START)
    _same(by_config.update(replay_minutes[0]), by_path.update(replay_minutes[0]))
    with pytest.raises(UsageError, match="parameters differ"):
        bqx.Live(Config(store=live_store, families={"bqx": {"windows": [15, 30]}}), until=START)
