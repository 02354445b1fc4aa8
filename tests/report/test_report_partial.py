"""The report on partial and ragged stores: it draws what exists and says what is missing.

The session store of conftest.py has 4 of the 28 pairs and an export (purge 75, embargo 60) beside it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from bqx.report import figures, sec_coverage, sec_export, sec_features, sec_strength
from bqx.report.context import load_context
from bqx.report.page import Chart, Html
from tests.report.conftest import PAIRS


def _charts(sec) -> list[dict]:
    return [b.figure for b in sec.blocks if isinstance(b, Chart)]


def _text(sec) -> str:
    return "\n".join(b.text for b in sec.blocks if isinstance(b, Html))


@pytest.fixture(scope="module")
def ctx(store):
    return load_context(store, lambda s: None)


def test_coverage_has_rows_only_for_the_pairs_in_the_store(ctx):
    sec = sec_coverage.section(ctx)
    heat = [f for f in _charts(sec) if f["data"][0]["type"] == "heatmap"]
    assert len(heat) == 2
    for fig in heat:
        assert fig["data"][0]["y"] == list(PAIRS)  # no row for the 24 absent pairs
        z = [v for row in fig["data"][0]["z"] for v in row if v is not None]
        assert z and all(0.0 <= v <= 1.0 for v in z)  # shares of the month's trading minutes
        scale = fig["data"][0]["colorscale"]
        assert fig["data"][0]["zmin"] == 0.0 and scale in (figures.SEQ_BLUE, figures.SEQ_ORANGE)
        assert scale[0][1].lower() in ("#ffffff", "#f7fbff")  # sequential: nothing missing is (near) white
    assert any("24 of the 28 pairs are missing from the store and have no row" in n for n in sec.notes)
    # a normal sample month: the bars cover (almost) every trading minute, the gaps scale stays pale
    cover, gaps = heat
    assert min(v for row in cover["data"][0]["z"] for v in row if v is not None) > 0.9
    assert gaps["data"][0]["zmax"] >= sec_coverage.GAP_SCALE_MAX


def _fx_minutes(t: datetime, stop: datetime) -> int:
    """Minutes from t (inclusive) to stop (exclusive) in the FX week, one minute at a time in New York time."""
    ny, n = ZoneInfo("America/New_York"), 0
    while t < stop:
        local = t.astimezone(ny)
        wd, h = local.isoweekday(), local.hour
        n += not ((wd == 5 and h >= 17) or wd == 6 or (wd == 7 and h < 17))
        t += timedelta(minutes=1)
    return n


def test_trading_minutes_follow_the_new_york_week():
    utc = timezone.utc
    for month, nxt in (("2024-03", "2024-04"), ("2024-11", "2024-12")):  # the US daylight-saving switches
        a = datetime(int(month[:4]), int(month[5:]), 1, tzinfo=utc)
        b = datetime(int(nxt[:4]), int(nxt[5:]), 1, tzinfo=utc)
        assert sec_coverage.trading_minutes(month) == _fx_minutes(a, b)
    first, last = datetime(2024, 7, 24, 3, 7, tzinfo=utc), datetime(2024, 8, 6, 23, 59, tzinfo=utc)
    assert sec_coverage.trading_minutes("2024-07", first, last) == _fx_minutes(first, datetime(2024, 8, 1, tzinfo=utc))
    assert sec_coverage.trading_minutes("2024-08", first, last) == _fx_minutes(datetime(2024, 8, 1, tzinfo=utc),
                                                                               last + timedelta(minutes=1))


def test_strength_draws_only_defined_indices(ctx):
    sec = sec_strength.section(ctx)
    for fig in _charts(sec):
        for trace in fig["data"]:
            if trace["type"] in ("scatter", "scattergl"):
                assert any(v is not None for v in trace["y"]), f"empty line {trace['name']}"
            if trace["type"] == "heatmap":
                assert all(any(v is not None and v == v for v in row) for row in trace["z"]), "an empty heat-map row"
    undefined = [n for n in sec.notes if n.startswith("Undefined throughout")]
    assert undefined and "not drawn" in undefined[0]
    drawn = {t["name"] for f in _charts(sec) for t in f["data"] if t["type"] in ("scatter", "scattergl")}
    for ccy in undefined[0].split(": ", 1)[1].rstrip(".").split(", "):
        assert ccy not in drawn


def test_features_draw_no_panel_or_heatmap_row_for_an_all_null_column(ctx):
    sec = sec_features.section(ctx)
    found = 0
    for group in sec.groups:
        text = "\n".join(b.text for b in sec.blocks if isinstance(b, Html) and b.group == group)
        all_null = text.split("All NULL: ", 1)[1].split(".</p>", 1)[0]
        names = [] if all_null == "none" else all_null.split(", ")
        found += len(names)
        for b in sec.blocks:
            if not isinstance(b, Chart) or b.group != group:
                continue
            trace = b.figure["data"][0]
            drawn = ([t["name"] for t in b.figure["data"]] if trace["type"] == "bar" else list(trace.get("x", [])))
            assert not set(names) & set(drawn), (group, set(names) & set(drawn))
    assert found, "the 4-pair store has all-NULL cross-pair columns"


def test_export_section_shows_purge_embargo_and_common_range(ctx, store):
    meta = json.loads((store.parent / "export" / "metadata" / "export.json").read_text())
    start, end = meta["split"]["common_range"]
    sec = sec_export.section(ctx, None)
    text = _text(sec)
    assert "purge 75 bars, embargo 60 bars" in text and "None" not in text.split("</p>")[0]
    assert f"common range {start} to {end}" in text
    timeline = [f for f in _charts(sec) if f["layout"]["title"]["text"].startswith("Split boundaries")]
    assert [t["name"] for t in timeline[0]["data"]] == ["train", "validation", "test"]
    census = json.loads((store.parent / "export" / "metadata" / "columns.json").read_text())
    c = census["counts"]
    assert f"Columns: {c['exported']} exported of {c['selected']} selected; {c['dropped']} dropped" in text
    with_empty = [(p, sp) for p, v in census["by_pair"].items() for sp, x in v.items() if x["empty"]]
    assert (f"Pairs and splits with empty columns ({len(with_empty)} of" in text) == bool(with_empty)


def test_a_reingested_quarantine_is_counted_once(tmp_path):
    from bqx.bars.ingest import ingest
    from bqx.bars.sample import write_sample

    src = tmp_path / "src"
    write_sample(src, pairs=["EURUSD"], start="2024-07", months=1, fmt="parquet")
    f = src / "EURUSD.parquet"
    bars = pl.read_parquet(f).head(3000).with_row_index()
    bad = pl.col("index").is_in([10, 20, 30])
    bars.with_columns(pl.when(bad).then(pl.col("low") - 1).otherwise(pl.col("high")).alias("high")).drop("index").write_parquet(f)
    root = tmp_path / "store"
    ingest(src, root, policy="repair")
    ingest(src, root, policy="repair")  # the same source again: its 3 rows are quarantined a second time
    assert len(list((root / "quarantine").glob("*.parquet"))) == 2
    sec = sec_coverage.section(load_context(root, lambda s: None))
    bars_chart = [f for f in _charts(sec) if f["layout"]["title"]["text"].startswith("Quarantined records")]
    assert "(3 in all: 3 rows, 0 whole files)" in bars_chart[0]["layout"]["title"]["text"]
    assert sum(sum(t["y"]) for t in bars_chart[0]["data"]) == 3
    assert any("3 quarantined records repeat" in n for n in sec.notes)


def test_strength_of_a_partial_market_draws_the_defined_indices_only(tmp_path):
    """A hand-made index table: EUR, USD and JPY have values, the other five are NULL throughout."""
    import numpy as np

    from bqx.report.context import Context
    from bqx.store.layout import table_path, write_parquet
    from bqx.universe import CURRENCIES

    t0 = datetime(2024, 7, 1, tzinfo=timezone.utc)
    n = 3 * 24 * 60
    rng = np.random.default_rng(5)
    cols = {f"ccy_{c}": (np.cumsum(rng.standard_normal(n)) if c in ("EUR", "USD", "JPY") else [None] * n)
            for c in CURRENCIES}
    frame = pl.DataFrame({"ts": [t0 + timedelta(minutes=i) for i in range(n)], **cols},
                         schema={"ts": pl.Datetime("us", "UTC"), **{c: pl.Float64 for c in cols}})
    write_parquet(frame, table_path(tmp_path, "currency_index", "2024-07"))
    ctx = Context(root=tmp_path, bars={("EURUSD", "2024-07"): tmp_path / "unused"}, specs={}, tasks=[], runs=[],
                  bar_rows={})
    sec = sec_strength.section(ctx)
    lines, heat = _charts(sec)
    defined = [c for c in CURRENCIES if c in ("EUR", "USD", "JPY")]
    assert [t["name"] for t in lines["data"]] == defined
    assert heat["data"][0]["x"] == defined == heat["data"][0]["y"]
    assert all(v is not None for row in heat["data"][0]["z"] for v in row)
    missing = [c for c in CURRENCIES if c not in defined]
    assert sec.notes == [f"Undefined throughout (a pair of theirs is missing), not drawn: {', '.join(missing)}."]
