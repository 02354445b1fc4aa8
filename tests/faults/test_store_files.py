"""Store files damaged behind bqx's back: truncated, rewritten, one bit flipped (mtime kept), deleted;
and a bars month re-ingested with a bad value. Each: the exit code and message, and an export
afterwards that equals the clean one (after the rerun the message asks for) or is refused."""

from __future__ import annotations

import json
import os

import polars as pl
import pytest

from bqx.engine.gate import StoreNotCurrentError
from bqx.engine.run import run
from bqx.export import export
from bqx.store.checksum import StoreIntegrityError
from bqx.store.layout import partition_path, write_bars
from bqx.store.lock import store_lock
from bqx.engine.verify import verify_store

from fault_helpers import EXPORT, EXPORT_ARGS, MONTH, PAIRS, bqx, export_digest, file_hashes

FEATURE = ("rate_index", "EURUSD")  # a stage file the export reads


def _rerun(store, **kw):
    return run(store, source=None, pairs=list(PAIRS), stages=["targets"], executor="serial", **kw)


def _flip_bit_keep_mtime(path):
    st = os.stat(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_flipped_bit_with_mtime_kept(store, clean, clean_export, tmp_path):
    path = partition_path(store, *FEATURE[:1], FEATURE[1], MONTH)
    _flip_bit_keep_mtime(path)
    assert _rerun(store).to_run == 0, "a plain rerun trusts size and mtime"

    res = bqx("verify", "--store", str(store))
    assert res.returncode == 1, res.stderr
    assert f"rate_index/pair=EURUSD/year_month={MONTH}/data.parquet: content differs" in res.stdout
    assert "(size and mtime unchanged)" in res.stdout and "bqx run --verify" in res.stderr
    doc = json.loads(bqx("verify", "--store", str(store), "--json").stdout)
    assert not doc["ok"] and [(f["rel"], f["problem"], f["stamp_kept"]) for f in doc["findings"]] == \
        [(f"rate_index/pair=EURUSD/year_month={MONTH}/data.parquet", "changed", True)]

    with pytest.raises(StoreIntegrityError, match=r"rate_index/pair=EURUSD/year_month=2024-07/data.parquet changed since"):
        export(store, str(tmp_path / "refused"), **EXPORT)
    assert not (tmp_path / "refused" / "metadata" / "COMPLETE.json").exists()
    from bqx.export.source import read_month, select  # the path the PostgreSQL sink reads by

    with pytest.raises(StoreIntegrityError, match="rate_index/pair=EURUSD"):
        read_month(select(store, families=["rate_index"]), "EURUSD", MONTH)

    again = _rerun(store, verify=True)
    assert again.ok and [(d["stage"], d["pair"]) for d in again.done] == [FEATURE]
    assert any("content differs" in line for line in again.reverified)
    assert verify_store(store).ok
    assert file_hashes(store) == file_hashes(clean)
    export(store, str(tmp_path / "x"), **EXPORT)
    assert export_digest(tmp_path / "x") == clean_export


def test_a_feature_file_rewritten_after_validation(store, clean, clean_export, tmp_path):
    """An edit (new mtime, same schema, one cell changed): the plain run recomputes it, verify names it first."""
    path = partition_path(store, *FEATURE[:1], FEATURE[1], MONTH)
    frame = pl.read_parquet(path)
    col = [c for c in frame.columns if c != "ts"][0]
    frame.with_columns(pl.when(pl.int_range(pl.len()) == 5000).then(123.0).otherwise(pl.col(col)).alias(col)) \
        .write_parquet(path)
    found = verify_store(store).findings
    assert [(f.rel, f.problem) for f in found] == [(str(path.relative_to(store)), "changed")]
    with pytest.raises(StoreNotCurrentError, match=r"refusing to export .* 1 stale \(rate_index EURUSD 2024-07\)"):
        export(store, str(tmp_path / "refused"), **EXPORT)
    res = bqx("export", "--store", str(store), "--to", str(tmp_path / "cli"), *EXPORT_ARGS)
    assert res.returncode == 1 and "1 stale (rate_index EURUSD 2024-07)" in res.stderr and "bqx run" in res.stderr
    assert _rerun(store).ok
    assert file_hashes(store) == file_hashes(clean)
    export(store, str(tmp_path / "x"), **EXPORT)
    assert export_digest(tmp_path / "x") == clean_export


def test_a_truncated_feature_file(store, clean, clean_export, tmp_path):
    path = partition_path(store, "rate_index", "USDJPY", MONTH)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(StoreNotCurrentError, match=r"1 stale \(rate_index USDJPY 2024-07\)"):
        export(store, str(tmp_path / "refused"), **EXPORT)
    assert [f.problem for f in verify_store(store).findings] == ["changed"]
    assert _rerun(store).ok
    assert file_hashes(store) == file_hashes(clean)
    export(store, str(tmp_path / "x"), **EXPORT)
    assert export_digest(tmp_path / "x") == clean_export


def test_a_deleted_feature_file_and_a_deleted_bars_month(store, clean, clean_export, tmp_path):
    feature = partition_path(store, "targets", "EURUSD", MONTH)
    feature.unlink()
    with pytest.raises(StoreNotCurrentError, match=r"1 stale \(targets EURUSD 2024-07\)"):
        export(store, str(tmp_path / "a"), **EXPORT)
    assert _rerun(store).ok
    assert file_hashes(store) == file_hashes(clean)

    bars = partition_path(store, "bars", "USDJPY", MONTH)
    bars.unlink()
    res = bqx("export", "--store", str(store), "--to", str(tmp_path / "b"), *EXPORT_ARGS)
    assert res.returncode == 1, res.stderr
    assert "1 bars month(s) the manifest records are missing on disk" in res.stderr
    assert "pair=USDJPY/year_month=2024-07/data.parquet" in res.stderr and "re-ingest" in res.stderr
    assert not (tmp_path / "b").exists(), "a refused export writes nothing"
    res = bqx("validate", "--store", str(store), "--cuts", "0")
    assert res.returncode == 1 and "refusing to validate" in res.stderr and "missing on disk" in res.stderr
    assert [(f.rel, f.problem) for f in verify_store(store).findings][0] == (str(bars.relative_to(store)), "missing")
    # a run does not forget the month behind the user's back: it is refused the same way, until the month is
    # restored or dropped on purpose
    res = bqx("run", "--store", str(store), "--source", "store", "--pairs", ",".join(PAIRS), "--executor", "serial")
    assert res.returncode == 1 and "missing on disk" in res.stderr and "--forget-missing-bars" in res.stderr, res.stderr
    assert "pair=USDJPY/year_month=2024-07/data.parquet" in res.stderr
    res = bqx("run", "--store", str(store), "--source", "store", "--pairs", ",".join(PAIRS), "--executor", "serial",
              "--forget-missing-bars")
    assert res.returncode == 0, res.stderr
    assert verify_store(store).findings == [] or all(f.problem != "missing" for f in verify_store(store).findings)


def test_a_month_reingested_with_a_bad_value(store, clean, clean_export, tmp_path):
    """Issue 24 (2): the failed rate_index task and what it blocks refuse validate and export."""
    path = partition_path(store, "bars", "USDJPY", MONTH)
    good = pl.read_parquet(path)
    bad = good.with_columns(pl.when(pl.int_range(pl.len()) == 100).then(1e308).otherwise(pl.col("high")).alias("high"))
    with store_lock(store):
        write_bars(store, bad.with_columns(pair=pl.lit("USDJPY")), source="file")
    result = _rerun(store)
    assert [f["stage"] for f in result.failed] == ["rate_index"]
    res = bqx("validate", "--store", str(store), "--cuts", "0")
    assert res.returncode == 1
    said = " ".join(res.stderr.split())  # the console wraps long lines
    assert "1 failed (rate_index USDJPY 2024-07)" in said and "blocked (bqx USDJPY 2024-07" in said
    with pytest.raises(StoreNotCurrentError, match=r"1 failed \(rate_index USDJPY 2024-07\); 3 blocked"):
        export(store, str(tmp_path / "refused"), **EXPORT)
    with store_lock(store):  # the bars repaired: the rerun recomputes, the export equals the clean one
        write_bars(store, good.with_columns(pair=pl.lit("USDJPY")), source="file")
    assert _rerun(store).ok
    assert file_hashes(store) == file_hashes(clean)
    export(store, str(tmp_path / "x"), **EXPORT)
    assert export_digest(tmp_path / "x") == clean_export


def test_bars_rotten_in_place_stop_run_verify(store):
    path = partition_path(store, "bars", "EURUSD", MONTH)
    _flip_bit_keep_mtime(path)
    with pytest.raises(StoreIntegrityError, match=r"bars in store .* are corrupt .*pair=EURUSD/year_month=2024-07"):
        _rerun(store, verify=True)
    res = bqx("verify", "--store", str(store))
    assert res.returncode == 1 and "bars files must be restored or re-ingested" in res.stderr
