"""`bqx export --to postgresql://...`: one wide table per split, equal to the Parquet export; one transaction per pair-month."""

from __future__ import annotations

import importlib

import polars as pl
import pytest

import pg_server
from bqx.errors import InputError
from bqx.export import export

PAIRS = ("EURUSD", "USDJPY")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from bqx.engine.run import run

    root = tmp_path_factory.mktemp("pg-export") / "store"
    assert run(root, pairs=list(PAIRS), stages=["targets"], executor="serial").ok
    return root


@pytest.fixture
def validated(monkeypatch):
    validation = importlib.import_module("bqx.validate")
    monkeypatch.setattr(validation, "latest_validation", lambda store, state=None: {"passed": True, "status": "passed"})


def _table(pg, name: str, order: str = "pair, ts") -> pl.DataFrame:
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(pg.admin_uri()) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {name} ORDER BY {order}")
        return pl.from_arrow(cur.fetch_arrow_table())


def test_export_to_postgres_equals_the_parquet_export(pg, pgpass, store, validated, tmp_path):
    pg.execute("DROP SCHEMA IF EXISTS feats CASCADE", f"CREATE SCHEMA feats AUTHORIZATION {pg_server.USER}")
    local = export(store, str(tmp_path / "out"))
    db = export(store, pg.url() + "?table=feats.bqx")
    assert db.rows == local.rows and db.columns == local.columns and pg_server.PASSWORD not in db.destination
    for split in ("train", "validation", "test"):
        files = sorted((tmp_path / "out" / "features" / split).rglob("*.parquet"))
        want = pl.concat([pl.read_parquet(f, hive_partitioning=True) for f in files], how="vertical_relaxed")
        want = want.select("pair", "ts", *[c for c in want.columns if c not in ("pair", "ts", "year_month")]).sort("pair", "ts")
        got = _table(pg, f"feats.bqx_{split}")
        assert got.columns == want.columns and got.height == want.height
        assert got.equals(want.cast(got.schema)), split
        assert got.schema[want.columns[3]] == pl.Float32
    log = _table(pg, "(SELECT export_id, metadata::text AS m FROM feats.bqx_export) e", "export_id")
    assert log.height == 1 and log["export_id"][0] == db.export_id and '"bqx_train"' in log["m"][0]
    again = export(store, pg.url() + "?table=feats.bqx")  # a re-export replaces rows, never doubles them
    assert again.rows == db.rows and _table(pg, "feats.bqx_train").height == sum(db.rows["train"].values())


def test_a_failing_partition_leaves_it_as_it_was(pg, pgpass, store, validated):
    pg.execute("DROP SCHEMA IF EXISTS feats2 CASCADE", f"CREATE SCHEMA feats2 AUTHORIZATION {pg_server.USER}")
    first = export(store, pg.url() + "?table=feats2.bqx")
    before = _table(pg, "feats2.bqx_train")
    # USDJPY's test rows now break a constraint: that pair-month's transaction (delete + COPY) rolls back
    pg.execute("ALTER TABLE feats2.bqx_test ADD CONSTRAINT no_late_usdjpy CHECK (pair <> 'USDJPY') NOT VALID")
    with pytest.raises(InputError, match="no_late_usdjpy"):
        export(store, pg.url() + "?table=feats2.bqx")
    after_train, after_test = _table(pg, "feats2.bqx_train"), _table(pg, "feats2.bqx_test")
    assert after_train.equals(before)
    assert after_test.filter(pl.col("pair") == "USDJPY").height == first.rows["test"]["USDJPY"]
    assert _table(pg, "(SELECT export_id FROM feats2.bqx_export) e", "export_id").height == 1  # no record of the failed export
