"""The validation gate, re-export replacing cleanly, and interrupted exports being detectable."""

from __future__ import annotations

import importlib

import json

import pytest

from bqx.export import ExportRefusedError, IncompleteExportError, export, read_export_metadata
from bqx.export.checks import check_export

SMALL = dict(families=["rate_index"], embargo=100)


def test_refuses_without_a_passing_validation(store, tmp_path, monkeypatch):
    validation = importlib.import_module("bqx.validate")  # the module; `bqx.validate` is the function

    monkeypatch.setattr(validation, "latest_validation", lambda s, state=None: None)
    with pytest.raises(ExportRefusedError, match="no recorded validation.*bqx validate.*--no-validate"):
        export(store, str(tmp_path / "a"), **SMALL)
    monkeypatch.setattr(validation, "latest_validation", lambda s, state=None: {"passed": False})
    with pytest.raises(ExportRefusedError, match="latest validation failed"):
        export(store, str(tmp_path / "a"), **SMALL)
    assert not (tmp_path / "a").exists(), "a refused export writes nothing"
    export(store, str(tmp_path / "a"), no_validate=True, **SMALL)
    meta = read_export_metadata(str(tmp_path / "a"))
    assert meta["validation"] == {"no_validate": True, "passed": False, "path": "metadata/validation.json",
                                  "validated_at": None}
    assert meta["validation_report"]["required"] is False


def test_exports_after_a_passing_validation_and_records_it(store, tmp_path, validated):
    result = export(store, str(tmp_path / "ok"), **SMALL)
    assert result.validated and result.ok
    meta = read_export_metadata(str(tmp_path / "ok"))
    assert meta["validation"]["no_validate"] is False and meta["validation"]["passed"] is True
    assert meta["validation_report"]["report"] == {"passed": True, "status": "passed"}


def test_re_export_replaces_cleanly(store, tmp_path, validated):
    from bqx.export.target import ExportTargetError

    dest = tmp_path / "same"
    first = export(store, str(dest), **SMALL)
    with pytest.raises(ExportTargetError, match="holds a finished export.*--overwrite"):
        export(store, str(dest), pairs=["USDJPY"], **SMALL)
    stray = dest / "features" / "train" / "pair=EURUSD" / "year_month=2024-07" / "stray.parquet"
    stray.write_bytes(b"old")
    with pytest.raises(ExportTargetError, match="1 file.* no bqx export recorded writing: features/train/pair=EURUSD"):
        export(store, str(dest), pairs=["USDJPY"], overwrite=True, **SMALL)
    assert stray.read_bytes() == b"old", "a file no export wrote is never deleted"
    stray.unlink()
    second = export(store, str(dest), pairs=["USDJPY"], overwrite=True, **SMALL)
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file() and p.name[0] != ".")
    assert not [f for f in files if "EURUSD" in f], "files of the previous export are removed"
    assert not (dest / "features" / "train" / "pair=EURUSD").exists(), "and their empty directories"
    meta = read_export_metadata(str(dest))
    assert meta["export_id"] == second.export_id != first.export_id and meta["pairs"] == ["USDJPY"]
    assert sorted(f for f in files if f.startswith("features/")) == sorted(e["path"] for e in meta["file_list"])
    assert all(c.passed for c in check_export(str(dest)))


def test_refuses_a_destination_that_is_not_an_export(store, tmp_path):
    from bqx.errors import UsageError

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match="no bqx export recorded writing: notes.txt"):
        export(store, str(tmp_path / "mine"), no_validate=True, **SMALL)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_interrupted_export_is_detectable(store, tmp_path, monkeypatch):
    exporter = importlib.import_module("bqx.export.exporter")

    dest = tmp_path / "cut"
    export(store, str(dest), no_validate=True, **SMALL)
    assert read_export_metadata(str(dest))["pairs"] == ["EURUSD", "USDJPY"]

    def crash(*args, **kwargs):
        raise RuntimeError("injected failure before the completion marker")

    monkeypatch.setattr(exporter, "_write_marker", crash)
    with pytest.raises(RuntimeError, match="injected"):
        export(store, str(dest), no_validate=True, overwrite=True, **SMALL)
    assert not (dest / "metadata" / "COMPLETE.json").exists()
    with pytest.raises(IncompleteExportError, match="incomplete: metadata/COMPLETE.json is missing"):
        read_export_metadata(str(dest))
    complete = {c.name: c for c in check_export(str(dest))}["export.complete"]
    assert complete.passed is False and "interrupted" in complete.detail
    monkeypatch.undo()
    export(store, str(dest), no_validate=True, **SMALL)  # a rerun completes it
    assert read_export_metadata(str(dest))["export_id"]
    # metadata replaced behind the marker's back is caught too
    path = dest / "metadata" / "export.json"
    path.write_text(path.read_text().replace('"purge_bars": 75', '"purge_bars": 76'))
    with pytest.raises(IncompleteExportError, match="inconsistent"):
        read_export_metadata(str(dest))


def test_checks_catch_a_tampered_export(store, tmp_path):
    dest = tmp_path / "t"
    export(store, str(dest), no_validate=True, **SMALL)
    path = dest / "scalers" / "scaler.json"
    doc = json.loads(path.read_text())
    doc["columns"]["rate_index"]["mean"] += 1e-3
    path.write_text(json.dumps(doc))
    gone = sorted((dest / "features" / "validation").rglob("*.parquet"))[0]
    gone.unlink()
    failed = {c.name for c in check_export(str(dest)) if c.passed is False}
    assert failed == {"scaler.reproducible", "export.files", "rows.counts"}


def test_an_export_whose_split_leaks_is_left_incomplete(store, tmp_path, monkeypatch):
    """Rows that should have been purged are written: the store-based purge check fails, no marker."""
    import dataclasses

    preamble = importlib.import_module("bqx.export.preamble")  # where every sink plans its splits
    from bqx.errors import TaskError
    from bqx.export.splits import plan_splits

    def leaky(ts_by_pair, **kw):
        good = plan_splits(ts_by_pair, **kw)
        return dataclasses.replace(good, exclusions=plan_splits(ts_by_pair, **{**kw, "purge": 0}).exclusions)

    monkeypatch.setattr(preamble, "plan_splits", leaky)
    dest = tmp_path / "leak"
    with pytest.raises(TaskError, match="splits.purged: .* 0 bars between the last kept row and the boundary"):
        export(store, str(dest), no_validate=True, **SMALL)
    assert not (dest / "metadata" / "COMPLETE.json").exists()
    with pytest.raises(IncompleteExportError):
        read_export_metadata(str(dest))


def test_purge_shorter_than_the_target_horizon_is_refused(store, tmp_path):
    from bqx.errors import UsageError

    with pytest.raises(UsageError, match="purge 10 .* largest span 75"):
        export(store, str(tmp_path / "p"), no_validate=True, purge=10, **SMALL)
