"""Export to a real S3-compatible server (moto on loopback): identical to the local export, readable back."""

from __future__ import annotations

import json

import polars as pl
import pytest


def test_s3_export_equals_local_export(store, s3_env, tmp_path):
    from pyarrow import dataset as ds

    from bqx.export import export, open_destination, read_export_metadata
    from bqx.export.checks import check_export

    args = dict(families=["rate_index", "bqx"], embargo=600, no_validate=True)
    url = "s3://bqx/exports/run1"
    remote = export(store, url, **args)
    local = export(store, str(tmp_path / "local"), **args)
    assert remote.rows == local.rows and remote.boundaries == local.boundaries

    s3 = open_destination(url)
    loc = open_destination(str(tmp_path / "local"))
    features = loc.list_files("features/")
    assert s3.list_files("features/") == features and len(features) == 8
    for rel in features + ["scalers/scaler.json", "metadata/files.json", "metadata/catalog.json"]:
        assert s3.read_bytes(rel) == loc.read_bytes(rel), rel

    meta = read_export_metadata(url)
    assert meta["destination"] == url and meta["rows"] == local.rows
    checks = check_export(url)
    assert [c.name for c in checks if not c.passed] == [] and checks[0].name == "export.complete"

    # read back straight from S3: pyarrow datasets and polars
    fs, root = s3.arrow()
    table = ds.dataset(f"{root}/features/train", filesystem=fs, format="parquet", partitioning="hive").to_table()
    assert table.num_rows == sum(local.rows["train"].values())
    assert set(table.column("pair").to_pylist()) == {"EURUSD", "USDJPY"}
    opts = {"aws_endpoint_url": s3_env, "aws_access_key_id": "testing", "aws_secret_access_key": "testing",
            "aws_region": "us-east-1", "aws_allow_http": "true"}
    frame = pl.scan_parquet(f"{url}/features/test/**/*.parquet", hive_partitioning=True, storage_options=opts).collect()
    assert frame.height == sum(local.rows["test"].values())

    # re-export to the same prefix with one pair: the other pair's objects are gone
    again = export(store, url, **args | {"pairs": ["USDJPY"], "overwrite": True})
    assert [f for f in s3.list_files() if "EURUSD" in f] == []
    assert read_export_metadata(url)["export_id"] == again.export_id
    table = ds.dataset(f"{root}/features", filesystem=fs, format="parquet", partitioning="hive").to_table()
    assert set(table.column("pair").to_pylist()) == {"USDJPY"}


def test_s3_endpoint_flag_and_missing_bucket(store, s3_server, monkeypatch):
    from bqx.errors import UsageError
    from bqx.export import S3Options, open_destination

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    dest = open_destination("s3://bqx/flag", S3Options(endpoint=s3_server))
    dest.write_bytes("a/b.json", json.dumps({"x": 1}).encode())
    assert dest.list_files() == ["a/b.json"] and json.loads(dest.read_bytes("a/b.json")) == {"x": 1}
    dest.delete("a/b.json")
    assert dest.list_files() == []
    with pytest.raises(UsageError, match="bucket 'nope' does not exist"):
        open_destination("s3://nope/x", S3Options(endpoint=s3_server))


def test_folds_read_from_s3_equal_the_local_export(store, s3_env, tmp_path):
    import numpy as np

    from bqx.errors import UsageError
    from bqx.export import export, folds, open_destination
    from bqx.export.layout import MARKER

    args = dict(families=["bqx"], cv="walk-forward:3", embargo=600, no_validate=True, workers=1)
    url = "s3://bqx/exports/cv"
    export(store, url, **args)
    export(store, str(tmp_path / "local"), **args)
    there, here = folds(url), folds(tmp_path / "local")
    assert there.frame.equals(here.frame) and there.frame.height > 0
    assert len(there) == len(here) == 3
    for (a_train, a_test), (b_train, b_test) in zip(there.splits, here.splits):
        assert np.array_equal(a_train, b_train) and np.array_equal(a_test, b_test) and len(a_test)
    timeless = lambda meta: {k: v for k, v in meta.items() if k != "cost_seconds"}  # noqa: E731 - wall seconds differ
    assert timeless(there.meta) == timeless(here.meta) and there.paths == here.paths
    # an export without its completion marker (interrupted, or being rewritten) is not read
    open_destination(url).delete(MARKER)
    with pytest.raises(UsageError, match="has no metadata/COMPLETE.json: the export was interrupted or failed"):
        folds(url)
    with pytest.raises(UsageError, match="was not exported with --cv"):
        export(store, "s3://bqx/exports/plain", families=["bqx"], no_validate=True, workers=1)
        folds("s3://bqx/exports/plain")
