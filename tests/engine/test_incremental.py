"""Appending a month computes that month and the previous month's targets, and rewrites no other file.

(test_engine_resume checks that the previous month's targets rerun; here every data file of the
store is watched, month tasks included, and the result is compared with a run from scratch.)
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from bqx.engine import run
from engine_helpers import done_keys, synth_bars

PAIRS = ("EURUSD", "USDJPY", "EURJPY")
PER_PAIR = ("rate_index", "bqx", "extraction", "targets", "bollinger_bqx")  # extraction: the labels' σ
STAGES = ["targets", "bollinger_bqx", "arbitrage"]  # arbitrage: a month task over all pairs, with tables


def _stamps(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every Parquet file of the store (bars, partitions, tables) -> (inode, mtime_ns, size)."""
    out = {}
    for f in root.rglob("*.parquet"):
        st = f.stat()
        out[str(f.relative_to(root))] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


def _month_of(rel: str) -> str:
    return next(p[len("year_month="):] for p in Path(rel).parts if p.startswith("year_month="))


def test_appending_a_month_touches_only_it_and_the_previous_targets(tmp_path):
    bars = synth_bars(pairs=PAIRS, months={"2024-01": 600, "2024-02": 600, "2024-03": 600})
    old, new = bars.filter(pl.col("ts").dt.month() <= 2), bars.filter(pl.col("ts").dt.month() == 3)
    root = tmp_path / "grown"
    assert run(root, source=old, stages=STAGES, executor="serial").ok
    before = _stamps(root)

    res = run(root, source=new, stages=STAGES, executor="serial")
    assert res.ok
    # computed: every task of March, and February's targets (they look 75 bars into March)
    assert done_keys(res) == ({(s, p, "2024-03") for s in PER_PAIR for p in PAIRS}
                              | {("arbitrage", None, "2024-03")}
                              | {("targets", p, "2024-02") for p in PAIRS})
    after = _stamps(root)
    rewritten = {k for k in before if after.get(k) != before[k]}
    assert rewritten == {f"targets/pair={p}/year_month=2024-02/data.parquet" for p in PAIRS}
    added = set(after) - set(before)
    assert added and {_month_of(k) for k in added} == {"2024-03"}
    assert {k.split("/")[0] for k in added} == {"bars", *PER_PAIR, "arbitrage", "tables"}
    # February's targets now reach into March: their last 15 values at h15 are no longer NULL
    feb = pl.read_parquet(root / "targets/pair=EURUSD/year_month=2024-02/data.parquet")
    assert feb["target_bqx_h15"].tail(15).null_count() == 0

    # the grown store holds exactly what a run over the three months at once writes
    scratch = tmp_path / "scratch"
    assert run(scratch, source=bars, stages=STAGES, executor="serial").ok
    whole = _stamps(scratch)
    assert whole.keys() == after.keys()
    for rel in whole:
        if rel.startswith("bars/"):
            continue
        a, b = pl.read_parquet(root / rel), pl.read_parquet(scratch / rel)
        assert a.equals(b), rel

    # and a further run with nothing new touches nothing
    again = run(root, source=None, stages=STAGES, executor="serial")
    assert again.ok and again.to_run == 0 and _stamps(root) == after


def test_appending_a_month_never_rereads_more_than_one_month_back_for_targets(tmp_path):
    # targets and labels look up to 119 rows ahead; with a 50-row February, January's targets read into
    # March too, so appending March reruns both (and only those) besides March itself
    bars = synth_bars(pairs=("EURUSD",), months={"2024-01": 400, "2024-02": 50, "2024-03": 400})
    root = tmp_path / "s"
    assert run(root, source=bars.filter(pl.col("ts").dt.month() <= 2), stages=["targets"], executor="serial").ok
    before = _stamps(root)
    res = run(root, source=bars.filter(pl.col("ts").dt.month() == 3), stages=["targets"], executor="serial")
    assert done_keys(res) == ({(s, "EURUSD", "2024-03") for s in ("rate_index", "bqx", "extraction", "targets")}
                              | {("targets", "EURUSD", m) for m in ("2024-01", "2024-02")})
    after = _stamps(root)
    assert {k for k in before if after[k] != before[k]} == {
        f"targets/pair=EURUSD/year_month={m}/data.parquet" for m in ("2024-01", "2024-02")}
    assert os.path.isfile(root / "targets/pair=EURUSD/year_month=2024-03/data.parquet")


def test_the_sample_source_appends_a_month_without_rewriting_the_first(tmp_path):
    from bqx.bars.sample import sample_market
    from bqx.store.layout import partition_path

    root = tmp_path / "s"
    assert run(root, source="sample", pairs=["EURUSD"], start="2024-07", end="2024-07", stages=["rate_index"],
               executor="serial").ok
    july = partition_path(root, "bars", "EURUSD", "2024-07")
    stamp = july.stat().st_mtime_ns, july.stat().st_ino
    res = run(root, source="sample", pairs=["EURUSD"], start="2024-07", end="2024-08", stages=["rate_index"],
              executor="serial")
    assert res.bars_written == 1 and done_keys(res) == {("rate_index", "EURUSD", "2024-08")}
    assert (july.stat().st_mtime_ns, july.stat().st_ino) == stamp
    # the bars are those of a two-month sample generated at once
    both = sample_market(pairs=["EURUSD"], start="2024-07", months=2).drop("pair")
    stored = pl.concat([pl.read_parquet(partition_path(root, "bars", "EURUSD", m)) for m in ("2024-07", "2024-08")])
    assert stored.equals(both.select(stored.columns))
