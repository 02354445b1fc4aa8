"""The README flow: run, validate, export, load one pair's training split in pandas."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest


def test_run_validate_export_load(store, tmp_path, capsys, monkeypatch):
    from bqx.cli.app import main
    from bqx.validate import validate

    mine = tmp_path / "store"
    shutil.copytree(store, mine)  # the shared store stays unvalidated
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["export", "--store", str(mine), "--to", str(tmp_path / "refused"), "--families", "rate_index"])
    assert exc.value.code == 1, "no validation yet: refused"
    report = validate(mine, samples=2, partitions=1)
    assert report.passed
    with pytest.raises(SystemExit) as exc:
        main(["export", "--store", str(mine), "--to", str(tmp_path / "export"), "--families", "rate_index,bqx", "--json"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and json.loads(out)["validated"] is True

    train = pd.read_parquet(tmp_path / "export" / "features" / "train", filters=[("pair", "==", "EURUSD")])
    assert len(train) == json.loads((tmp_path / "export" / "metadata" / "export.json").read_text())["rows"]["train"]["EURUSD"]
    assert train["ts"].is_monotonic_increasing and train["target_bqx_h75"].dtype == "float32"
    meta = json.loads((tmp_path / "export" / "metadata" / "validation.json").read_text())
    assert meta["passed"] is True and meta["report"]["complete"] is True
