"""The plan (bqx plan / run --dry-run) and the sample-market source."""

from __future__ import annotations

import json

import polars as pl

from bqx.engine import plan, run, status
from bqx.engine.partitions import Partition, add_months, month_span
from bqx.engine.plan import stage_specs


def test_stage_specs_compose_context_and_lookahead_from_declarations():
    specs = stage_specs(None)
    assert specs["rate_index"].inputs == () and specs["rate_index"].context == 0
    assert specs["bqx"].inputs == ("rate_index",) and specs["bqx"].context == 2 * 75
    # the targets stage holds targets (lookahead 75) and labels (lookahead 2 x 60 - 1, context 59, reading statistics)
    assert set(specs["targets"].inputs) == {"bqx", "extraction"} and specs["targets"].lookahead == 119
    assert specs["targets"].context == 59
    assert "lags" not in specs  # a view is never a stored stage
    wide = stage_specs({"bqx": {"windows": (10, 200)}})
    assert wide["bqx"].context == 400 and "bqx_w200_max" in wide["bqx"].columns
    assert list(specs).index("rate_index") < list(specs).index("bqx") < list(specs).index("targets")


def test_partition_is_a_frozen_value():
    p = Partition("EURUSD", "2024-07")
    assert p == Partition("EURUSD", "2024-07") and hash(p) == hash(Partition("EURUSD", "2024-07"))
    assert Partition(None, "2024-07").label == "2024-07"
    assert month_span("2023-11", "2024-02") == ["2023-11", "2023-12", "2024-01", "2024-02"]
    assert add_months("2024-12", 1) == "2025-01" and add_months("2024-01", -1) == "2023-12"
    import pytest

    with pytest.raises(ValueError, match="YYYY-MM"):
        Partition("EURUSD", "2024-13")


def test_plan_before_and_after_a_sample_run(tmp_path):
    root = tmp_path / "s"
    before = plan(root, source="sample", pairs=["EURUSD", "GBPUSD"], stages=["targets"], workers=2)
    json.dumps(before)  # JSON-serialisable
    assert not root.exists() or not any(root.iterdir())  # planning writes nothing
    assert before["months"] == ["2024-07", "2024-08"] and before["tasks"] == 4 * 2 * 2 == before["to_run"]  # rate_index, bqx, extraction (the labels' σ), targets
    stages = {s["name"]: s for s in before["stages"]}
    assert len(stages) >= 18 and stages["bqx"]["tasks"] == 4 and stages["bqx"]["context"] == 150
    assert stages["targets"]["lookahead"] == 119 and stages["targets"]["inputs"] == ["bars", "bqx", "extraction"]
    assert stages["regression"]["status"] in ("not selected", "not built")
    assert before["critical_path"]["stages"] == ["rate_index", "extraction", "targets"]
    assert before["critical_path"]["measured"] is False and before["disk_bytes"] > 0

    res = run(root, source="sample", pairs=["EURUSD", "GBPUSD"], stages=["targets"], executor="serial")
    assert res.ok and res.bars_written == 4 and len(res.done) == 16
    bars = pl.read_parquet(root / "bars/pair=GBPUSD/year_month=2024-08/data.parquet")
    assert bars["ts"].dt.month().unique().to_list() == [8]
    info = json.loads((root / "pairs.json").read_text())
    assert info["EURUSD"] == {"basis": "mid", "has_volume": True, "has_bidask": True, "source": "sample"}
    after = plan(root, stages=["targets"], workers=2)
    assert after["to_run"] == 0 and after["critical_path"]["measured"] is True
    rows = {r["name"]: r for r in status(root)}
    assert rows["bars"]["done"] == 4 and rows["targets"]["status"] == "done"
    again = run(root, source="sample", pairs=["EURUSD", "GBPUSD"], stages=["targets"], executor="serial",
                dry_run=True)
    assert again.dry_run and again.to_run == 0 and again.run_id is None
