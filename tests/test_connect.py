"""Sources and sinks looked up by URL scheme (bqx.connect): the contract every registered one keeps, the
lookup, the refusal of an unknown scheme, and a source or sink registered by a test used by bqx.run / bqx.export."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import bqx
from bqx.connect import schemes, sinks, sources
from bqx.connect.schemes import is_database_url, scheme_of
from bqx.connect.sinks import FeatureSink, StreamSink, open_sink, open_stream_sink, register_sink
from bqx.connect.sources import (BarSource, IngestOptions, StreamSource, open_source, open_stream_source,
                                 register_source)
from bqx.errors import UsageError
from bqx.export.options import ExportOptions

ROOT = Path(__file__).resolve().parents[1]


def _example(scheme: str, tmp_path: Path) -> str:
    """A target of each built-in scheme (a scheme registered without one here fails the contract test)."""
    return {"file": str(tmp_path / "bars"), "postgresql": "postgresql://bqx@127.0.0.1:5432/market",
            "s3": "s3://bucket/prefix", "stdio": "-"}[scheme]


@pytest.mark.parametrize("scheme", sources.SOURCES.schemes())
def test_every_registered_source_keeps_the_contract(scheme, tmp_path):
    src = open_source(_example(scheme, tmp_path))
    assert isinstance(src, BarSource)
    assert src.scheme == scheme
    assert isinstance(src.describe(), str) and src.describe()
    for method in ("ingest", "write_into"):
        assert callable(getattr(src, method))


@pytest.mark.parametrize("scheme", sinks.SINKS.schemes())
def test_every_registered_sink_keeps_the_contract(scheme, tmp_path):
    sink = open_sink(_example(scheme, tmp_path), ExportOptions())
    assert isinstance(sink, FeatureSink)
    assert sink.scheme == scheme
    assert isinstance(sink.describe(), str) and sink.describe()
    sink.check(ExportOptions())  # the defaults are honoured by every sink


@pytest.mark.parametrize("scheme", sinks.STREAM_SINKS.schemes())
def test_every_registered_stream_sink_keeps_the_contract(scheme, tmp_path):
    sink = open_stream_sink(_example(scheme, tmp_path), 1)
    assert isinstance(sink, StreamSink)
    sink.write(pl.DataFrame({"ts": [], "pair": []}, schema={"ts": pl.Datetime("us", "UTC"), "pair": pl.String}))
    sink.close()


@pytest.mark.parametrize("scheme", sources.STREAM_SOURCES.schemes())
def test_every_registered_stream_source_keeps_the_contract(scheme, tmp_path, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    (tmp_path / "bars").mkdir()
    src = open_stream_source(_example(scheme, tmp_path))
    assert isinstance(src, StreamSource)
    assert callable(src.start) and callable(src.read_bars)
    src.close()


def test_a_directory_stream_source_reads_bars_once_started(tmp_path):
    from datetime import datetime, timezone

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text('{"pair": "EURUSD", "ts": "2024-07-01T00:00:00Z", "open": 1.0, '
                                             '"high": 1.2, "low": 0.9, "close": 1.1}\n{"pair": \n')
    src = open_stream_source(str(tmp_path / "in"))
    src.start(["EURUSD"], {"EURUSD": None})
    frame, bad = src.read_bars(0)
    assert frame["ts"].to_list() == [datetime(2024, 7, 1, tzinfo=timezone.utc)] and frame["close"].to_list() == [1.1]
    assert [b["rule"] for b in bad] == ["unparseable"]
    with pytest.raises(UsageError, match="is not a directory"):
        open_stream_source(str(tmp_path / "missing"))
    with pytest.raises(UsageError, match="password"):
        open_stream_source("postgresql://bqx:secret@127.0.0.1:5432/market")


@pytest.mark.parametrize("target, scheme", [
    ("postgresql://u@h:5432/db", "postgresql"), ("postgres://u@h/db", "postgresql"), ("POSTGRESQL://u@h/db", "postgresql"),
    ("s3://bucket/p", "s3"), ("file:///tmp/x", "file"), ("data/bars.csv", "file"), (Path("/tmp/x"), "file"),
    ("-", "stdio"), ("gs://b/x", "gs"),
])
def test_scheme_of(target, scheme):
    assert scheme_of(target) == scheme
    assert is_database_url(target) == (scheme == "postgresql")


def test_lookup_picks_the_registered_class(tmp_path):
    from bqx.sources.files import FileSource
    from bqx.sources.postgres import DatabaseSource
    from bqx.export.dataset_sink import DatasetSink
    from bqx.export.postgres_sink import PostgresSink
    from bqx.live.sinks import JsonLines, ParquetDays

    assert type(open_source(tmp_path / "x.csv")) is FileSource
    assert type(open_source("file://" + str(tmp_path))) is FileSource
    assert open_source("file://" + str(tmp_path)).path == tmp_path
    assert type(open_source("postgres://bqx@localhost/market")) is DatabaseSource
    assert type(open_sink(str(tmp_path / "out"))) is DatasetSink
    assert type(open_sink("s3://bucket/x")) is DatasetSink
    assert type(open_sink("postgresql://bqx@localhost/market?table=m.bqx")) is PostgresSink
    assert type(open_stream_sink("-")) is JsonLines
    assert type(open_stream_sink(str(tmp_path / "live"))) is ParquetDays


@pytest.mark.parametrize("opener, target, kind", [
    (open_source, "ftp://host/bars.csv", "bar source"),
    (open_sink, "gs://bucket/features", "feature sink"),
    (open_stream_sink, "kafka://broker/topic", "live feature sink"),
])
def test_an_unknown_scheme_is_refused_naming_it(opener, target, kind):
    scheme = target.split("://")[0]
    with pytest.raises(UsageError, match=rf"no {kind} for the scheme {scheme} \({re.escape(target)}\); known schemes: "):
        opener(target)


def test_a_password_is_not_shown_in_the_refusal():
    with pytest.raises(UsageError) as err:
        open_sink("gs://user:hunter2@bucket/x")
    assert "hunter2" not in str(err.value) and "***" in str(err.value)


def test_a_taken_scheme_is_not_replaced_by_accident():
    with pytest.raises(UsageError, match="registered already"):
        register_source("file", lambda target: None)
    with pytest.raises(UsageError, match="not a URL scheme"):
        register_sink("s3 bucket", lambda target, options: None)


def test_the_database_schemes_are_spelled_in_one_place():
    """No module but bqx.connect.schemes tests for a URL prefix by hand (the tuple used to be in seven places)."""
    own = ROOT / "bqx" / "connect" / "schemes.py"
    pattern = re.compile(r"""startswith\(\(?["'](postgres(ql)?|s3)://|["']postgres://["']""")
    found = [f"{p.relative_to(ROOT)}:{i}" for p in (ROOT / "bqx").rglob("*.py") if p != own
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []


# -- a source and a sink registered by a test ---------------------------------------------------------------


class ToySource:
    """Bars of the sample market for the pairs a run asks for, labelled as the toy's."""

    scheme = "toy"
    calls: list[dict] = []

    def __init__(self, target: str):
        self.target = target

    def describe(self) -> str:
        return f"toy bars from {self.target}"

    def ingest(self, store: Path, options: IngestOptions):
        raise NotImplementedError("the toy source is only read by runs")

    def write_into(self, store: Path, *, pairs, start, end) -> int:
        from bqx.bars.sample import sample_market
        from bqx.engine.source import write_frame

        ToySource.calls.append({"pairs": pairs, "start": start, "end": end})
        bars = sample_market(pairs=pairs, start=start, months=1, seed=7)
        return write_frame(store, bars, self.describe())


def _serving(register, registry, scheme, factory, log):
    """Register `factory` for `scheme` with an empty `log` for the test, and unregister it afterwards."""
    register(scheme, factory)
    log.clear()
    yield factory
    registry.unregister(scheme)


@pytest.fixture
def toy_source():
    yield from _serving(register_source, sources.SOURCES, "toy", ToySource, ToySource.calls)


def test_a_registered_source_feeds_bqx_run(toy_source, tmp_path):
    root = tmp_path / "store"
    res = bqx.run(root, source="toy://anywhere", pairs=["EURUSD"], start="2024-07", end="2024-07",
                  stages=["rate_index"], executor="serial")
    assert res.ok and res.bars_written == 1  # one pair-month file
    assert pl.read_parquet(root / "bars" / "pair=EURUSD" / "year_month=2024-07" / "data.parquet").height > 20_000
    assert toy_source.calls == [{"pairs": ["EURUSD"], "start": "2024-07", "end": "2024-07"}]
    catalog = json.loads((root / "pairs.json").read_text())
    assert catalog["EURUSD"]["source"] == "toy bars from toy://anywhere"
    log = Path(res.log_path).read_text().splitlines()[0]
    assert '"source": "toy bars from toy://anywhere"' in log
    sources.SOURCES.unregister("toy")
    with pytest.raises(UsageError, match="no bar source for the scheme toy"):
        bqx.run(root, source="toy://anywhere", pairs=["EURUSD"], executor="serial")


def test_an_unknown_source_scheme_stops_the_run_before_it_writes(tmp_path):
    root = tmp_path / "store"
    with pytest.raises(UsageError, match="no bar source for the scheme ftp"):
        bqx.run(root, source="ftp://host/bars", executor="serial")
    with pytest.raises(UsageError, match="no bar source for the scheme ftp"):
        bqx.run(root, source="ftp://host/bars", dry_run=True)
    assert not root.exists()


class ToySink:
    """Remembers what the export handed it."""

    scheme = "mem"
    received: list[tuple[Path, ExportOptions]] = []

    def __init__(self, target: str, options: ExportOptions | None = None):
        self.target = target

    def describe(self) -> str:
        return self.target

    def check(self, options: ExportOptions) -> None:
        if options.normalize:
            raise UsageError("the mem sink keeps raw values only")

    def export(self, store, options: ExportOptions):
        ToySink.received.append((Path(store), options))
        return f"exported to {self.target}"


@pytest.fixture
def toy_sink():
    yield from _serving(register_sink, sinks.SINKS, "mem", ToySink, ToySink.received)


def test_a_registered_sink_receives_bqx_export(toy_sink, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    out = bqx.export(store, "mem://features", embargo=7, pairs=["EURUSD"], precision="float64", workers=1)
    assert out == "exported to mem://features"
    [(got_store, options)] = toy_sink.received
    assert got_store == store
    assert (options.embargo, options.pairs, options.precision, options.workers) == (7, ["EURUSD"], "float64", 1)
    assert options.split == (0.8, 0.1, 0.1) and options.drop_empty is True  # the public defaults
    with pytest.raises(UsageError, match="raw values only"):
        bqx.export(store, "mem://features", normalize=True)
    assert len(toy_sink.received) == 1  # refused by check(), before the sink wrote


def test_postgres_sink_refuses_cv_before_it_connects(tmp_path):
    with pytest.raises(UsageError, match="--cv and --targets are for Parquet exports"):
        bqx.export(tmp_path / "no-store", "postgresql://bqx@127.0.0.1:1/none", cv="walk-forward:3")


def test_run_options_are_checked_once(tmp_path):
    from bqx.engine.options import RunOptions

    opts = RunOptions.build(pairs=["USDJPY", "EURUSD", "EURUSD"], start="2024-07", end="2024-08-15", executor="serial")
    assert (opts.pairs, opts.start, opts.end, opts.n_workers) == (["EURUSD", "USDJPY"], "2024-07", "2024-08", 1)
    with pytest.raises(UsageError, match="end 2024-06 is before start 2024-07"):
        RunOptions.build(start="2024-07", end="2024-06")
    with pytest.raises(UsageError, match="needs the dask executor"):
        RunOptions.build(scheduler="tcp://127.0.0.1:8786")
    settled = RunOptions.build(source="sample").for_store(tmp_path / "new")
    assert (settled.sample, settled.start, settled.end) == (True, "2024-07", "2024-08")
    assert isinstance(RunOptions.build(source=str(tmp_path)).for_store(tmp_path / "s").source, BarSource)
    with pytest.raises(AttributeError):
        opts.pairs = None  # frozen


def test_the_cli_refuses_an_unknown_scheme_naming_it(tmp_path):
    """`bqx ingest` and `bqx export` go through the lookup: exit 2 and one line naming the scheme."""
    for args, kind in ((["ingest", "ftp://host/bars.csv"], "bar source"),
                       (["export", "--to", "gs://bucket/features"], "feature sink")):
        res = subprocess.run([sys.executable, "-m", "bqx", *args, "--store", str(tmp_path / "s")], capture_output=True,
                             text=True, env={**os.environ, "COLUMNS": "400"}, timeout=120)
        assert res.returncode == 2, res.stderr
        scheme = args[-1].split("://")[0]
        assert f"error: no {kind} for the scheme {scheme} ({args[-1]})" in res.stderr
        assert "Traceback" not in res.stderr
