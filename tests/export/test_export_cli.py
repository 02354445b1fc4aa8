"""`bqx export` on the command line: options, JSON output, exit codes."""

from __future__ import annotations

import importlib

import json

import pytest


def _bqx(args, capsys):
    from bqx.cli.app import main

    with pytest.raises(SystemExit) as exc:
        main(args)
    captured = capsys.readouterr()
    return exc.value.code, captured.out, captured.err


def test_export_command(store, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dest = tmp_path / "cli"
    code, out, err = _bqx(["export", "--store", str(store), "--to", str(dest), "--families", "rate_index,bqx",
                           "--pairs", "EURUSD", "--scale-kinds", "continuous", "--split", "0.7,0.15,0.15", "--embargo", "60", "--purge", "80",
                           "--scaler", "per-pair", "--precision", "float64", "--no-validate", "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["ok"] and data["validated"] is False and list(data["rows"]["train"]) == ["EURUSD"]
    meta = json.loads((dest / "metadata" / "export.json").read_text())
    assert meta["split"]["fractions"] == [0.7, 0.15, 0.15]
    assert (meta["split"]["purge_bars"], meta["split"]["embargo_bars"]) == (80, 60)
    assert meta["precision"] == "float64" and meta["scaler"]["scope"] == "per-pair"
    assert meta["validation"]["no_validate"] is True
    fitted = json.loads((dest / "scalers" / "scaler.json").read_text())["pairs"]["EURUSD"]
    assert "bqx_w15_return" in fitted and "rate_index" not in fitted  # rate_index is of kind level


def test_export_command_refuses_and_reports_usage_errors(store, tmp_path, capsys, monkeypatch):
    validation = importlib.import_module("bqx.validate")  # the module; `bqx.validate` is the function

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(validation, "latest_validation", lambda s, state=None: None)
    code, _, err = _bqx(["export", "--store", str(store), "--to", str(tmp_path / "x"), "--families", "rate_index"], capsys)
    assert code == 1 and "bqx validate" in err and "--no-validate" in err
    code, _, err = _bqx(["export", "--store", str(store), "--to", str(tmp_path / "x"), "--split", "0.8,0.2",
                         "--no-validate"], capsys)
    assert code == 2 and "three fractions" in err
    code, _, err = _bqx(["export", "--store", str(store), "--to", str(tmp_path / "x"), "--scaler", "sometimes",
                         "--no-validate"], capsys)
    assert code == 2 and "scaler" in err


def test_export_command_explicit_boundaries_and_config_file(store, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bqx.toml").write_text(f'store = "{store}"\n[export]\nembargo = 30\nprecision = "float64"\n')
    dest = tmp_path / "explicit"
    code, out, err = _bqx(["export", "--to", str(dest), "--families", "rate_index", "--train-end", "2024-08-01",
                           "--val-end", "2024-08-15T12:00", "--no-validate", "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["boundaries"] == {"train_end": "2024-08-01T00:00:00+00:00", "validation_end": "2024-08-15T12:00:00+00:00"}
    meta = json.loads((dest / "metadata" / "export.json").read_text())
    assert meta["split"]["method"] == "explicit" and meta["split"]["embargo_bars"] == 30 and meta["precision"] == "float64"


def test_validate_export_checks_splits_and_scaler(store, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dest = tmp_path / "checked"
    code, _, err = _bqx(["export", "--store", str(store), "--to", str(dest), "--families", "rate_index,bqx",
                         "--embargo", "60", "--no-validate"], capsys)
    assert code == 0, err
    code, out, err = _bqx(["validate", "--export", str(dest), "--store", str(store), "--json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    names = {c["name"]: c["passed"] for c in data["checks"]}
    assert names["splits.purged"] and names["splits.embargoed"] and names["scaler.reproducible"]
    # a scaler that was not fitted on the training rows fails the check, and the command exits 1
    scaler_file = dest / "scalers" / "scaler.json"
    scaler = json.loads(scaler_file.read_text())
    col = next(iter(scaler["columns"]))
    scaler["columns"][col]["mean"] = scaler["columns"][col]["mean"] * 1.5 + 1.0
    scaler_file.write_text(json.dumps(scaler))
    code, out, err = _bqx(["validate", "--export", str(dest), "--store", str(store)], capsys)
    assert code == 1 and "scaler.reproducible" in err
