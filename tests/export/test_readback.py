"""The default export reads back with polars, pandas, pyarrow datasets and DuckDB (hive partitioning)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

PAIRS = ("EURUSD", "USDJPY")


@pytest.fixture(scope="session")
def main_export(store, tmp_path_factory):
    """The default export (80/10/10, purge 75, embargo 1440, global scaler, float32) of the test store."""
    from bqx.export import export, read_export_metadata

    dest = tmp_path_factory.mktemp("export-main") / "out"
    result = export(store, str(dest), no_validate=True)
    return dest, result, read_export_metadata(str(dest))


def _expected_total(meta):
    return sum(n for per_pair in meta["rows"].values() for n in per_pair.values())


def test_layout_is_hive_and_files_hold_no_partition_columns(main_export):
    dest, result, meta = main_export
    files = sorted(p.relative_to(dest).as_posix() for p in (dest / "features").rglob("*.parquet"))
    # 2 pairs x 2 months of train, and the last month (August) for validation and test: 4 + 2 + 2
    assert len(files) == 8 == result.files
    assert "features/train/pair=EURUSD/year_month=2024-07/data.parquet" in files
    assert "features/test/pair=USDJPY/year_month=2024-08/data.parquet" in files
    import pyarrow.parquet as pq

    schema = pq.read_schema(dest / files[0])
    assert schema.names == meta["columns"]
    assert "pair" not in schema.names and "year_month" not in schema.names
    assert str(schema.field("ts").type) == "timestamp[us, tz=UTC]"
    assert {str(f.type) for f in schema if f.name != "ts"} == {"float"}  # float32 by default
    # features incl. the lag view, and the targets
    assert "bqx_w15_return_lag60" in schema.names and "target_bqx_h75" in schema.names
    assert (dest / "scalers" / "scaler.json").is_file() and (dest / "metadata" / "COMPLETE.json").is_file()


def test_polars(main_export):
    dest, _, meta = main_export
    frame = pl.scan_parquet(str(dest / "features" / "train" / "**" / "*.parquet"), hive_partitioning=True).collect()
    assert frame.height == sum(meta["rows"]["train"].values())
    assert sorted(frame["pair"].unique().to_list()) == list(PAIRS)
    assert sorted(frame["year_month"].cast(pl.String).unique().to_list()) == ["2024-07", "2024-08"]


def test_pandas(main_export):
    import pandas as pd

    dest, _, meta = main_export
    df = pd.read_parquet(dest / "features" / "validation")
    assert len(df) == sum(meta["rows"]["validation"].values())
    assert set(df["pair"].astype(str)) == set(PAIRS)
    one = pd.read_parquet(dest / "features" / "train", filters=[("pair", "=", "EURUSD")])
    assert len(one) == meta["rows"]["train"]["EURUSD"]
    assert str(one["ts"].dtype) == "datetime64[us, UTC]"


def test_pyarrow_dataset(main_export):
    import pyarrow.dataset as ds

    dest, _, meta = main_export
    dataset = ds.dataset(dest / "features", format="parquet", partitioning="hive")
    table = dataset.to_table(columns=["ts", "pair", "year_month", "target_bqx_h15"])
    assert table.num_rows == _expected_total(meta)


def test_duckdb_and_readers_agree(main_export):
    import duckdb
    import pandas as pd

    dest, _, meta = main_export
    glob = str(dest / "features" / "*" / "*" / "*" / "*.parquet")
    con = duckdb.connect()
    n, pairs, total = con.execute(
        f"SELECT count(*), count(DISTINCT pair), sum(bqx_w60_avg) FROM read_parquet('{glob}', hive_partitioning=true)"
    ).fetchone()
    assert n == _expected_total(meta) and pairs == 2
    by_split = dict(con.execute(
        f"SELECT split(filename, '/')[-4], count(*) FROM read_parquet('{glob}', hive_partitioning=true, filename=true) "
        "GROUP BY 1").fetchall())
    assert by_split == {s: sum(v.values()) for s, v in meta["rows"].items()}
    pl_total = pl.scan_parquet(glob, hive_partitioning=True).select(pl.col("bqx_w60_avg").cast(pl.Float64).sum()).collect().item()
    pd_total = pd.read_parquet(dest / "features" / "train")["bqx_w60_avg"].astype("float64").sum() + \
        pd.read_parquet(dest / "features" / "validation")["bqx_w60_avg"].astype("float64").sum() + \
        pd.read_parquet(dest / "features" / "test")["bqx_w60_avg"].astype("float64").sum()
    assert np.isclose(total, pl_total, rtol=1e-9) and np.isclose(total, pd_total, rtol=1e-9)


def test_values_are_the_stored_values_narrowed(main_export, store):
    """A written row equals the engine's `load` of the same row, rounded to float32."""
    from bqx.engine.load import load

    dest, _, meta = main_export
    part = pl.read_parquet(dest / "features" / "validation" / "pair=EURUSD" / "year_month=2024-08" / "data.parquet")
    stored = load(store, pairs=["EURUSD"], start="2024-08", end="2024-08").collect()
    joined = part.join(stored, on="ts", suffix="_store")
    assert joined.height == part.height > 0
    for col in ("rate_index", "bqx_w45_std", "bqx_agg_accel_lag240", "target_bqx_h30"):
        expected = joined[f"{col}_store"].cast(pl.Float32)
        assert joined[col].equals(expected), col


def test_metadata_records_what_was_done(main_export):
    dest, result, meta = main_export
    assert meta["export_id"] == result.export_id
    assert meta["validation"]["no_validate"] is True and meta["validation_report"]["no_validate"] is True
    assert meta["split"]["purge_bars"] == 75 and meta["split"]["embargo_bars"] == 1440
    assert set(meta["split"]["boundaries"]) == {"train_end", "validation_end"}
    names = [r["name"] for r in meta["catalog"]]
    assert names == meta["columns"][1:]
    kinds = {r["name"]: r for r in meta["catalog"]}
    assert kinds["target_bqx_h75"]["scaled"] is False and kinds["rate_index"]["scaled"] is True
    assert {"name", "family", "stage", "kind", "description", "warmup", "context"} <= set(meta["catalog"][0])
    assert all(c["passed"] for c in meta["checks"]), meta["checks"]
    assert meta["baselines"], "the rate-index baselines of the store"
    assert set(meta["fingerprints"]) >= {"store_tasks", "bars", "code", "files"}
    assert json.loads((dest / "metadata" / "COMPLETE.json").read_text())["export_id"] == meta["export_id"]
