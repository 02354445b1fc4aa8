"""Month tasks: a cross-pair family over all pairs, with context per pair, tables and a store-wide anchor."""

from __future__ import annotations

import polars as pl

from bqx.engine import load, run
from bqx.core.runner import compute
from engine_helpers import done_keys, synth_bars

CROSS = """
import polars as pl
from bqx.core.declaration import Column
from bqx.core.registry import family

def origin(long, ctx):
    # first timestamp at/after the baseline at which every pair has a bar, with the closes there
    after = long.filter(pl.col("ts") >= ctx.baseline_time)
    n = after["pair"].n_unique()
    full = after.group_by("ts").agg(pl.len().alias("n")).filter(pl.col("n") == n).sort("ts")
    t0 = full["ts"][0]
    closes = after.filter(pl.col("ts") == t0).sort("pair")
    return {"ts": t0.isoformat(), "close": dict(zip(closes["pair"], closes["close"]))}

@family(name="ux", stage="user_x", inputs=("bars",), context=30, cross_pair=True, tables=("ux_table",),
        anchor=origin, columns=lambda p: [Column("ux_rel_mean30", "continuous", 29, "mean close / origin close")])
def ux(frame, ctx):
    base = pl.col("pair").replace_strict(ctx.anchor["close"], return_dtype=pl.Float64)
    cols = frame.select((pl.col("close").rolling_mean(30) / base).over("pair").cast(pl.Float64).alias("ux_rel_mean30"))
    both = pl.concat([frame.select("pair", "ts"), cols], how="horizontal")
    table = both.group_by("ts").agg(pl.col("ux_rel_mean30").sum().alias("ux_sum"), pl.len().cast(pl.Float64).alias("ux_n")).sort("ts")
    return cols, {"ux_table": table}
"""


def test_month_task_equals_whole_series_with_tables_and_anchor(tmp_path, user_modules):
    user_modules("ucross", CROSS)
    bars = synth_bars(pairs=("EURUSD", "USDJPY", "EURJPY"), months={"2024-01": 400, "2024-02": 20, "2024-03": 400})
    # USDJPY trades less often: per-pair contexts cover different time spans
    bars = bars.filter((pl.col("pair") != "USDJPY") | (pl.col("ts").dt.minute() % 3 != 0))
    root = tmp_path / "s"
    res = run(root, source=bars, stages=["user_x"], executor="serial")
    assert res.ok and done_keys(res) == {("user_x", None, m) for m in ("2024-01", "2024-02", "2024-03")}
    for pair in ("EURUSD", "USDJPY", "EURJPY"):
        assert (root / f"user_x/pair={pair}/year_month=2024-03/data.parquet").is_file()
    stored = load(root, columns=["ux_rel_mean30"]).collect().sort("pair", "ts")
    whole = compute(bars, ["ux"]).sort("pair", "ts")
    assert stored["ts"].equals(whole["ts"])
    diff = (stored["ux_rel_mean30"] - whole["ux_rel_mean30"]).abs().max()
    assert stored["ux_rel_mean30"].is_null().to_list() == whole["ux_rel_mean30"].is_null().to_list()
    assert diff < 1e-12
    # the table is written per month, on the union timeline of that month only
    table = pl.concat([pl.read_parquet(root / f"tables/ux_table/year_month={m}/data.parquet")
                       for m in ("2024-01", "2024-02", "2024-03")])
    union = bars["ts"].unique().sort()
    assert table["ts"].to_list() == union.to_list()
    expect = (whole.group_by("ts").agg(pl.col("ux_rel_mean30").sum().alias("ux_sum"), pl.len().cast(pl.Float64).alias("ux_n"))
              .sort("ts"))
    assert (table["ux_sum"] - expect["ux_sum"]).abs().max() < 1e-12
    assert table["ux_n"].to_list() == expect["ux_n"].to_list()
    # the anchor is fixed once per store: appending a month does not move it
    more = synth_bars(pairs=("EURUSD", "USDJPY", "EURJPY"), months={"2024-04": 100}, seed=9)
    res2 = run(root, source=more, stages=["user_x"], executor="serial")
    assert done_keys(res2) == {("user_x", None, "2024-04")}
    again = load(root, end="2024-03", columns=["ux_rel_mean30"]).collect().sort("pair", "ts")
    assert again.equals(stored)
