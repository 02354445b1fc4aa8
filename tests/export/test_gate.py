"""The export's gate reads the manifest: months come from it, a pair without bars in a month is no missing task."""

from __future__ import annotations

import shutil

import pytest

from bqx.engine.gate import inspect
from bqx.engine.run import run
from bqx.export import export, read_export_metadata
from bqx.store.checksum import StoreIntegrityError

SMALL = dict(families=["rate_index"], embargo=100, no_validate=True)


def test_a_clean_store_passes_and_its_months_come_from_the_manifest(store):
    state = inspect(store, stages=["targets"])
    assert state.ok and state.months == {"EURUSD": ["2024-07", "2024-08"], "USDJPY": ["2024-07", "2024-08"]}


def test_a_pair_without_bars_in_a_month_is_not_a_missing_task(store, tmp_path):
    root = tmp_path / "s"
    shutil.copytree(store, root, ignore=shutil.ignore_patterns(".lock", ".readers"))
    (root / "bars" / "pair=USDJPY" / "year_month=2024-08" / "data.parquet").unlink()
    assert inspect(root, stages=["targets"]).gone == [("USDJPY", "2024-08")]
    with pytest.raises(StoreIntegrityError, match="missing on disk"):  # a run does not forget it silently either
        run(root, source=None, stages=["targets"], executor="serial")
    # dropped on purpose: the store now has no such month, and USDJPY simply has no bars in 2024-08
    assert run(root, source=None, stages=["targets"], executor="serial", forget_missing_bars=True).ok
    state = inspect(root, stages=["targets"])
    assert state.ok and state.months["USDJPY"] == ["2024-07"]
    export(root, str(tmp_path / "x"), **SMALL)
    assert read_export_metadata(str(tmp_path / "x"))["months"]["USDJPY"] == ["2024-07"]
