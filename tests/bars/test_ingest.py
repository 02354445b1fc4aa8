from __future__ import annotations

import importlib.resources
import json

import polars as pl
import pyarrow.parquet as pq
import pytest

from bqx.bars.ingest import ingest, read_pairs
from bqx.bar_schema import BAR_COLUMNS
from bqx.store.lock import store_lock
from bqx.errors import InputError, StoreLockedError

from bars_fixtures import sample_text

GYM = importlib.resources.files("gym_anytrading") / "datasets/data/FOREX_EURUSD_1H_ASK.csv"


def test_layout_catalog_and_parquet_settings(tmp_path):
    store = tmp_path / "store"
    rep = ingest(str(GYM), store, tz="UTC")
    assert (rep.rows_in, rep.rows_out, rep.partitions) == (6225, 6225, 12)
    f = store / "bars/pair=EURUSD/year_month=2017-01/data.parquet"
    meta = pq.ParquetFile(f).metadata
    assert pq.read_schema(f).names == list(BAR_COLUMNS)  # pair and month only in the path
    col = meta.row_group(0).column(1)
    assert col.compression == "ZSTD" and not col.has_dictionary_page
    cat = json.loads((store / "pairs.json").read_text())
    assert cat["EURUSD"]["basis"] == "ask" and cat["EURUSD"]["has_volume"] and not cat["EURUSD"]["has_bidask"]
    assert cat["EURUSD"]["source"].endswith("FOREX_EURUSD_1H_ASK.csv")
    back = pl.read_parquet(store / "bars", hive_partitioning=True)  # the directory holds only Parquet
    assert back.height == 6225 and set(back["pair"]) == {"EURUSD"} and back["year_month"].n_unique() == 12
    assert not list(store.rglob(".*tmp*"))
    import pyarrow.dataset as ds
    assert ds.dataset(store / "bars", format="parquet", partitioning="hive").count_rows() == 6225


def test_reingest_same_source_replaces(tmp_path, write):
    src = write("src/EURUSD.csv", sample_text(5))
    ingest(src, tmp_path / "s")
    rep = ingest(src, tmp_path / "s")
    assert rep.rows_out == 5
    assert pl.read_parquet(tmp_path / "s/bars/**/*.parquet", hive_partitioning=True).height == 5
    assert read_pairs(tmp_path / "s")["EURUSD"]["rows"] == 5


def test_same_pair_from_two_sources(tmp_path, write):
    a = write("a/EURUSD.csv", sample_text(5))
    b = write("b/EURUSD.csv", sample_text(5, start=3))  # minutes 3..7 overlap minutes 3..4
    c = write("c/EURUSD.csv", sample_text(2, start=10))  # minutes 10..11: no overlap
    store = tmp_path / "s"
    ingest(a, store)
    with pytest.raises(InputError) as err:
        ingest(b, store)
    assert err.value.rule == "pair-overlap" and err.value.line == 2 and err.value.file.endswith("b/EURUSD.csv")
    rep = ingest(b, store, policy="repair")
    assert rep.rows_quarantined == 2 and rep.rows_out == 3 and rep.rows_in == rep.rows_out + rep.rows_quarantined
    q = pl.read_parquet(rep.quarantine_path)
    assert q["line"].to_list() == [2, 3] and set(q["rule"]) == {"pair-overlap"}
    ingest(c, store)
    back = pl.read_parquet(store / "bars", hive_partitioning=True)  # the directory holds only Parquet
    assert back.height == 5 + 3 + 2 and back["ts"].is_sorted() and back["ts"].n_unique() == 10
    assert len(read_pairs(store)["EURUSD"]["sources"]) == 3


def test_repair_writes_quarantine_with_counts(tmp_path, write):
    text = sample_text(5).replace("1.1025", "nan", 1)  # minute 0 high... no: 1.1025 first appears on line 4
    src = write("EURUSD.csv", text + "2024-07-01T00:09:00Z,1,2\n")
    rep = ingest(src, tmp_path / "s", policy="repair", run_id="run1")
    assert rep.quarantine_path.endswith("quarantine/run1.parquet")
    q = pl.read_parquet(rep.quarantine_path)
    assert sorted(q["rule"]) == ["non-finite-price", "unparseable"]
    assert rep.quarantined_by_rule == {"non-finite-price": 1, "unparseable": 1}
    assert rep.rows_in == 6 and rep.rows_out == 4 and rep.rows_in == rep.rows_out + rep.rows_quarantined
    assert any("quarantined 2 rows" in line for line in rep.lines())
    with pytest.raises(InputError):
        ingest(src, tmp_path / "s2")  # strict stops, writes nothing
    assert not (tmp_path / "s2/bars").exists()


def test_second_writer_gets_a_clear_error(tmp_path, write):
    src = write("EURUSD.csv", sample_text(3))
    with store_lock(tmp_path / "s", "test"):
        with pytest.raises(StoreLockedError) as err:
            ingest(src, tmp_path / "s")
    import os
    assert f"pid {os.getpid()}" in str(err.value) and "being written" in str(err.value) and err.value.exit_code == 2
    assert ingest(src, tmp_path / "s").rows_out == 3  # released


def test_nothing_left_is_an_error(tmp_path, write):
    src = write("EURUSD.csv", "")
    with pytest.raises(InputError) as err:
        ingest(src, tmp_path / "s", policy="repair")
    assert "nothing to ingest" in str(err.value) and list((tmp_path / "s/quarantine").iterdir())
