"""Empty and constant columns at export: listed per pair and split, never a scaler entry without
values, dropped only when empty for every pair, and one set of numbers in the summary.

The store: 3 pairs (so the cross-pair families have too few pairs for most of their columns),
one of them bid-only (so its spread columns are empty while the others' are not), 9 days of bars
ingested from files, and the stages the columns come from."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

PAIRS = ("EURUSD", "GBPUSD", "USDJPY")
BID_ONLY = "GBPUSD"
STAGES = ["targets", "extraction", "currency_indices", "arbitrage"]


@pytest.fixture(scope="module")
def partial_store(tmp_path_factory) -> Path:
    from bqx.bars.ingest import ingest
    from bqx.bars.sample import write_sample
    from bqx.engine.run import run

    tmp = tmp_path_factory.mktemp("columns")
    src = tmp / "src"
    write_sample(src, pairs=list(PAIRS), start="2024-07", months=1, seed=0, fmt="parquet")
    for path in src.glob("*.parquet"):
        frame = pl.read_parquet(path).filter(pl.col("ts").dt.day() <= 9)
        if path.stem == BID_ONLY:
            frame = frame.drop([c for c in frame.columns if c.startswith("ask_")])
        frame.write_parquet(path)
    root = tmp / "store"
    ingest(src, root, tz="UTC")
    result = run(root, stages=STAGES, executor="serial")
    assert result.ok, result.failed
    return root


def _export(store, dest, **kw):
    from bqx.export import export

    return export(store, str(dest), embargo=60, no_validate=True, **kw)


@pytest.fixture(scope="module")
def dropped(partial_store, tmp_path_factory):
    dest = tmp_path_factory.mktemp("columns-drop") / "out"
    return _export(partial_store, dest), dest


def test_all_null_columns_are_dropped_only_when_empty_for_every_pair(dropped, partial_store):
    result, dest = dropped
    meta = json.loads((dest / "metadata/export.json").read_text())
    census = json.loads((dest / "metadata/columns.json").read_text())
    assert result.dropped and census["dropped"] == result.dropped == meta["column_report"]["dropped"]
    # each dropped column: not in any file, and truly without a value in the store for every pair
    stores = {}
    for c in result.dropped:
        assert c not in meta["columns"]
        for stage_dir in partial_store.iterdir():
            for f in stage_dir.glob("pair=*/*/*.parquet"):
                names = pq.read_schema(f).names
                if c in names:
                    stores.setdefault(c, 0)
                    stores[c] += pl.read_parquet(f, columns=[c])[c].count()
        assert stores.get(c) == 0, c
    # the bid-only pair's spread columns are empty for that pair only: kept, and listed for it alone
    spread = [c for c in meta["columns"] if c.startswith("spr_")]
    assert spread, "spread columns must stay: the other pairs have them"
    for c in spread:
        where = census["columns"][c]["empty"]
        assert {p for ps in where.values() for p in ps} == {BID_ONLY}, (c, where)
        assert c not in result.dropped
    files = sorted((dest / "features").rglob("*.parquet"))
    assert {tuple(pq.read_schema(f).names) for f in files} == {tuple(meta["columns"])}  # one schema


@pytest.fixture(scope="module")
def kept(partial_store, tmp_path_factory):
    dest = tmp_path_factory.mktemp("columns-keep") / "out"
    return _export(partial_store, dest, drop_empty=False), dest


def test_no_scaler_entry_without_values(kept):
    result, dest = kept
    doc = json.loads((dest / "scalers/scaler.json").read_text())
    assert all(p["n"] > 0 and p["mean"] is not None for p in doc["columns"].values())
    empty = set(doc.get("empty", {}).get("all", {}))
    assert not empty & set(doc["columns"])
    census = json.loads((dest / "metadata/columns.json").read_text())["columns"]
    assert empty, "a 3-pair store has scaled columns without training values"
    for c in empty:  # listed instead: the census agrees they have no training value for any pair
        assert set(census[c]["empty"]["train"]) == set(PAIRS), c


@pytest.mark.parametrize("which", ["dropped", "kept"])
def test_summary_counts_agree(which, request):
    from bqx.cli.cmd_export import column_summary

    result, dest = request.getfixturevalue(which)
    c = result.column_counts
    meta = json.loads((dest / "metadata/export.json").read_text())
    scaler = json.loads((dest / "scalers/scaler.json").read_text())
    assert c["exported"] == len(meta["columns"]) - 1 == result.columns
    assert c["selected"] == c["exported"] + c["dropped"]
    assert c["scaled_kinds"] == c["fitted"] + c["no_training_values"]
    assert c["exported"] == c["scaled_kinds"] + c["not_scaled"]
    assert c["fitted"] == len(scaler["columns"]) == result.scaled
    assert c["no_training_values"] == len(scaler.get("empty", {}).get("all", {}))
    check = {x["name"]: x for x in result.checks}
    assert check["scaler.columns"]["passed"] and check["columns.census"]["passed"], check
    assert f"{c['scaled_kinds']} exported columns" in check["scaler.columns"]["detail"]
    assert f"{c['fitted']} fitted" in check["scaler.columns"]["detail"]
    text = "\n".join(column_summary(result))
    assert f"{c['exported']} exported of {c['selected']} selected ({c['dropped']} dropped" in text
    assert f"= {c['fitted']} fitted + {c['no_training_values']} without training values" in text


def test_keep_empty_keeps_one_schema_and_lists_them(dropped, kept):
    result, _ = dropped
    kept, dest = kept
    meta = json.loads((dest / "metadata/export.json").read_text())
    assert kept.dropped == [] and set(result.dropped) <= set(meta["columns"])
    assert set(result.dropped) <= set(kept.empty_everywhere)
    assert kept.column_counts["exported"] == result.column_counts["selected"]
    assert all(c["passed"] is not False for c in kept.checks)
    files = sorted((dest / "features").rglob("*.parquet"))
    assert {tuple(pq.read_schema(f).names) for f in files} == {tuple(meta["columns"])}


def test_validate_export_recomputes_the_census(dropped):
    from bqx.export.checks import check_export

    _, dest = dropped
    checks = {c.name: c for c in check_export(str(dest))}
    assert checks["columns.census"].passed is True, checks["columns.census"]
    assert checks["scaler.columns"].passed is True
    # a tampered census is caught: an empty column no longer listed
    path = dest / "metadata/columns.json"
    doc = json.loads(path.read_text())
    original = path.read_text()
    try:
        col = next(iter(doc["columns"]))
        del doc["columns"][col]
        path.write_text(json.dumps(doc))
        census = check_export(str(dest))[-1]
        assert census.name == "columns.census" and census.passed is False and col in census.detail
        # a column said to be dropped although the store has values of it
        doc = json.loads(original)
        doc["dropped"].append("spr_bps")
        path.write_text(json.dumps(doc))
        census = check_export(str(dest))[-1]
        assert census.passed is False
        assert "dropped column spr_bps has values in the store" in census.failures
    finally:
        path.write_text(original)


def test_cli_summary_lists_empty_columns(partial_store, tmp_path):
    from bqx.cli.app import app

    res = CliRunner().invoke(app, ["export", "--to", str(tmp_path / "cli"), "--store", str(partial_store),
                                   "--embargo", "60", "--no-validate"])
    assert res.exit_code == 0, res.output
    assert "dropped (all NULL in the store for every pair)" in res.output
    assert "columns have no value for some pair or split" in res.output
    assert "metadata/columns.json" in res.output


def test_per_pair_scaler_lists_a_pairs_empty_columns_instead_of_entries(partial_store, tmp_path):
    result = _export(partial_store, tmp_path / "pp", scaler="per-pair")
    doc = json.loads((tmp_path / "pp/scalers/scaler.json").read_text())
    assert "spr_bps" in doc["empty"][BID_ONLY] and "spr_bps" not in doc["pairs"][BID_ONLY]
    assert doc["pairs"]["EURUSD"]["spr_bps"]["n"] > 0 and "spr_bps" not in doc["empty"].get("EURUSD", {})
    assert all(p["n"] > 0 for cols in doc["pairs"].values() for p in cols.values())
    check = {c["name"]: c for c in result.checks}
    assert check["scaler.columns"]["passed"] and check["columns.census"]["passed"]
    assert result.column_counts["fitted"] == len({c for cols in doc["pairs"].values() for c in cols})
