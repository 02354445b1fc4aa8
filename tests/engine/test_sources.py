"""Sources never mix: after `bqx ingest`, a plain `bqx run --store S` computes from the ingested bars, its
dry run plans them, and the sample market is refused into that store; a new store gets the sample."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bqx.engine.run import run
from bqx.store.layout import bars_partitions, read_pairs_json
from bqx.errors import UsageError


def bqx(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bqx", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, timeout=600)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """A store holding one pair's July from files (`bqx sample` then `bqx ingest`), nothing computed yet."""
    tmp = tmp_path_factory.mktemp("sources")
    files, store = tmp / "files", tmp / "store"
    res = bqx("sample", "--out", str(files), "--pairs", "EURUSD", "--start", "2024-07", "--months", "1")
    assert res.returncode == 0, res.stderr
    res = bqx("ingest", str(files), "--store", str(store))
    assert res.returncode == 0, res.stderr
    return store


def test_dry_run_plans_the_bars_in_the_store(ingested):
    res = bqx("run", "--store", str(ingested), "--dry-run", "--json", "--stages", "bqx")
    assert res.returncode == 0, res.stderr
    plan = json.loads(res.stdout)["plan"]
    assert plan["pairs"] == ["EURUSD"] and plan["months"] == ["2024-07"]
    assert "bars already in the store" in res.stderr
    assert set(bars_partitions(ingested)) == {("EURUSD", "2024-07")}  # a dry run writes nothing


def test_plain_run_computes_from_the_ingested_bars(ingested):
    res = bqx("run", "--store", str(ingested), "--stages", "rate_index", "--executor", "serial", "--json")
    assert res.returncode == 0, res.stderr
    done = json.loads(res.stdout)["done"]
    assert done and {(d["pair"], d["month"]) for d in done} == {("EURUSD", "2024-07")}
    assert set(bars_partitions(ingested)) == {("EURUSD", "2024-07")}  # no sample bars written beside them
    assert read_pairs_json(ingested)["EURUSD"]["source"] != "sample"


def test_the_sample_market_is_refused_into_a_store_of_another_source(ingested):
    res = bqx("run", "--store", str(ingested), "--source", "sample", "--pairs", "GBPUSD", "--dry-run")
    assert res.returncode != 0
    assert "from another source" in res.stderr and "mix" in res.stderr
    assert "source=None" not in res.stderr and f"bqx run --store {ingested}" in res.stderr
    with pytest.raises(UsageError, match="from another source"):
        run(ingested, source="sample", pairs=["GBPUSD"], executor="serial")
    assert set(bars_partitions(ingested)) == {("EURUSD", "2024-07")}


def test_the_python_default_uses_the_store_bars_too(ingested):
    result = run(ingested, stages=["rate_index"], executor="serial", dry_run=True)
    assert result.plan["pairs"] == ["EURUSD"] and result.plan["months"] == ["2024-07"]


def test_a_new_store_defaults_to_the_sample_market(tmp_path):
    res = bqx("run", "--store", str(tmp_path / "new"), "--pairs", "EURUSD", "--dry-run", "--json")
    assert res.returncode == 0, res.stderr
    plan = json.loads(res.stdout)["plan"]
    assert plan["pairs"] == ["EURUSD"] and plan["months"] == ["2024-07", "2024-08"]


def test_ingest_into_a_sample_store_is_refused(tmp_path):
    store = tmp_path / "s"
    assert run(store, source="sample", pairs=["EURUSD"], start="2024-07", end="2024-07", stages=["rate_index"],
               executor="serial").ok
    res = bqx("sample", "--out", str(tmp_path / "f"), "--pairs", "GBPUSD", "--start", "2024-07", "--months", "1")
    assert res.returncode == 0, res.stderr
    res = bqx("ingest", str(tmp_path / "f"), "--store", str(store))
    assert res.returncode != 0 and "sample market's bars" in res.stderr and "mix" in res.stderr
    assert set(bars_partitions(store)) == {("EURUSD", "2024-07")}
