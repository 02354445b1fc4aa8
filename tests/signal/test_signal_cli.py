"""`bqx signal` on the command line: a real process with its worker pool, the table, JSON, files, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import polars as pl
import pytest

from bqx.signal.run import FAMILY_FILE, FEATURE_FILE, IC_FILE, SIGNAL_DIR


def _bqx(args, capsys):
    from bqx.cli.app import main

    with pytest.raises(SystemExit) as exc:
        main(args)
    captured = capsys.readouterr()
    return exc.value.code, captured.out, captured.err


def test_signal_command_in_a_process_with_two_workers(store_copy, tmp_path):
    env = {**os.environ, "COLUMNS": "160"}
    proc = subprocess.run([sys.executable, "-m", "bqx", "signal", "--store", str(store_copy), "--families", "bqx",
                           "--workers", "2", "--top", "3", "--json"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["workers"] == 2 and data["split"] == "train" and len(data["top"]) == 3
    assert data["features"] == 37 and data["partitions"] == 4 and data["cells"] == 37 * len(data["targets"]) * 4
    assert data["targets"][:5] == [f"target_bqx_h{h}" for h in (15, 30, 45, 60, 75)]
    assert [abs(r["mean_ic"]) for r in data["top"]] == sorted((abs(r["mean_ic"]) for r in data["top"]), reverse=True)
    where = store_copy / SIGNAL_DIR
    ic = pl.read_parquet(where / IC_FILE)
    assert ic.height == data["cells"] and set(ic["pair"]) == {"EURUSD", "USDJPY"}
    assert (where / FEATURE_FILE).is_file() and (where / FAMILY_FILE).is_file()
    best = data["top"][0]
    summary = pl.read_parquet(where / FEATURE_FILE).filter((pl.col("feature") == best["feature"])
                                                           & (pl.col("target") == best["target"]))
    assert summary["mean_ic"].item() == pytest.approx(best["mean_ic"])


def test_signal_command_prints_the_strongest_features(store_copy, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "160")
    code, out, err = _bqx(["signal", "--store", str(store_copy), "--families", "rate_index", "--workers", "1",
                           "--top", "4", "--by", "t_stat", "--split", "all"], capsys)
    assert code == 0, err
    assert "strongest features by |t_stat| (all rows" in out
    assert sum(line.startswith("│ rate_index") for line in out.splitlines()) == 4
    assert "[2/2]" in err  # progress, on stderr
    assert (store_copy / SIGNAL_DIR / IC_FILE).is_file()


@pytest.mark.parametrize("args, message", [
    (["--split", "test"], "--split must be train or all"),
    (["--by", "ic"], "--by must be one of"),
    (["--families", "targets"], "targets, not features"),
    (["--pairs", "GBPUSD"], "have no bars"),
])
def test_signal_command_usage_errors_exit_2(signal_store, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, out, err = _bqx(["signal", "--store", str(signal_store), "--workers", "1", *args], capsys)
    assert code == 2
    assert message in err.replace("\n", " ")
