"""Reading a store on object storage (moto's S3 server on loopback): validate, export, report, live and signal
give on `s3://bucket/prefix` what they give on the same store in a local directory, and a second process
given only the URL (and the usual AWS environment) can validate and export it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

import bqx
from tests.conftest import sample_bars

PAIRS = ("EURUSD", "USDJPY")
LIVE_FAMILIES = ["rate_index", "bqx"]
SKIP = (".lock", ".readers/", "logs/")  # a local store's lock and reader marks, its run logs: not the store's data


def copy_to_s3(local: Path, url: str) -> None:
    """Put every file of a local store into `url` through the backend, with the manifest's recorded stamps
    (mtime_ns locally) replaced by the objects' ETags, as a run writing to `url` records them: an S3 store
    whose objects are byte for byte a local store's (the append test starts from one)."""
    from bqx.store.backend import backend_for

    backend = backend_for(url)
    backend.check_bucket()
    stamps = {}
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        rel = path.relative_to(local).as_posix()
        if rel == "manifest.sqlite" or rel.startswith(SKIP) or rel.startswith("manifest.sqlite-"):
            continue
        stamps[rel] = backend.write_bytes(rel, path.read_bytes())
    copy = local.parent / f"manifest-{uuid.uuid4().hex[:6]}.sqlite"
    with sqlite3.connect(local / "manifest.sqlite") as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    conn = sqlite3.connect(copy)
    try:
        for stage, pair, month, outputs in conn.execute("SELECT stage, pair, month, outputs FROM tasks").fetchall():
            outs = [[o[0], o[1], stamps[o[0]][1], *o[3:]] for o in json.loads(outputs or "[]")]
            conn.execute("UPDATE tasks SET outputs=? WHERE stage=? AND pair=? AND month=?",
                         (json.dumps(outs), stage, pair, month))
        for pair, month in conn.execute("SELECT pair, month FROM bars").fetchall():
            rel = f"bars/pair={pair}/year_month={month}/data.parquet"
            conn.execute("UPDATE bars SET mtime_ns=? WHERE pair=? AND month=?", (stamps[rel][1], pair, month))
        conn.commit()
        conn.execute("PRAGMA journal_mode=DELETE")  # the whole database in the one file that is uploaded
    finally:
        conn.close()
    backend.write_bytes("manifest.sqlite", copy.read_bytes())
    copy.unlink()


@pytest.fixture(scope="module")
def env(s3_server):
    """The usual AWS environment for the whole module (the backend reads nothing else)."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in {"AWS_ENDPOINT_URL": s3_server, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_REGION": "us-east-1"}.items():
            mp.setenv(k, v)
        yield s3_server


@pytest.fixture(scope="module")
def stores(tmp_path_factory, env) -> tuple[Path, str]:
    """(local store, the same store at an s3:// URL): rate_index, bqx and targets of 2 pairs over half a month."""
    from bqx.engine.run import run

    bars = sample_bars(PAIRS, "2024-07", 1).filter(pl.col("ts") < datetime(2024, 7, 16, tzinfo=timezone.utc))
    local = tmp_path_factory.mktemp("s3-readers") / "store"
    url = f"s3://bqx/readers-{uuid.uuid4().hex[:8]}/store"
    for root in (local, url):  # the same run into a directory and into the URL
        result = run(root, source=bars, stages=["targets"], executor="serial")
        assert result.ok, result.failed
    return local, url


@pytest.fixture(scope="module")
def validated(stores):
    """Both stores validated (the reports saved in each store: export requires a passing, current one)."""
    local, url = stores
    quick = dict(samples=3, partitions=1, cuts=50, workers=1)  # every family (a complete report), fewer samples
    return bqx.validate(local, **quick), bqx.validate(url, **quick)


def _verdicts(report) -> list[tuple]:
    return [(f.family, f.verdict, tuple(sorted((k, c.status, c.compared, c.mismatches) for k, c in f.checks.items())))
            for f in report.families]


def test_validate_on_s3_equals_local(stores, validated):
    from bqx.store.backend import backend_for
    from bqx.validate import latest_validation

    local, url = stores
    here, there = validated
    assert here.passed and there.passed and here.complete and there.complete
    assert _verdicts(there) == _verdicts(here) and here.fingerprint == there.fingerprint
    assert there.store == url
    assert backend_for(url).exists("validation/latest.json")
    latest = latest_validation(url)
    assert latest is not None and latest["passed"] and latest["current"]


def _features(dest) -> dict[str, pl.DataFrame]:
    return {rel: pl.read_parquet(dest.read_bytes(rel)) for rel in dest.list_files("features/")}


def test_export_from_s3_equals_local_to_a_directory_and_to_s3(stores, validated, tmp_path, monkeypatch):
    from bqx.export import export, open_destination, read_export_metadata
    from bqx.store.backend import S3Backend
    from bqx.store.manifest import MANIFEST

    local, url = stores
    here = export(local, str(tmp_path / "from-local"), families=LIVE_FAMILIES, embargo=600)
    downloads = []
    read = S3Backend.read_with_etag

    def counted(self, rel):
        downloads.extend([rel] if rel == MANIFEST else [])
        return read(self, rel)

    monkeypatch.setattr(S3Backend, "read_with_etag", counted)
    there = export(url, str(tmp_path / "from-s3"), families=LIVE_FAMILIES, embargo=600)
    assert downloads == [MANIFEST]  # the selection, the validation gate and the metadata share one read of the state
    monkeypatch.undo()
    assert there.rows == here.rows and there.boundaries == here.boundaries
    want = _features(open_destination(str(tmp_path / "from-local")))
    got = _features(open_destination(str(tmp_path / "from-s3")))
    assert list(got) == list(want) and {r.split("/")[2] for r in want} == {f"pair={p}" for p in PAIRS}
    for rel, frame in want.items():
        assert got[rel].equals(frame), rel
    meta = read_export_metadata(str(tmp_path / "from-s3"))
    assert meta["store"] == url and meta["validation"]["passed"] is True

    target = f"s3://bqx/exports-{uuid.uuid4().hex[:8]}/run"  # a store on S3 exported to S3
    again = export(url, target, families=LIVE_FAMILIES, embargo=600)
    assert again.rows == here.rows
    remote = _features(open_destination(target))
    assert list(remote) == list(want) and all(remote[r].equals(want[r]) for r in want)
    assert [c for c in read_export_metadata(target)["checks"] if not c["passed"]] == []


def test_report_renders_from_s3(stores, validated, tmp_path):
    pytest.importorskip("plotly")
    from bqx.report import build_report

    local, url = stores
    here = build_report(local, tmp_path / "local.html")
    there = build_report(url, tmp_path / "s3.html")
    assert there.path.is_file() and there.bytes > 100_000
    assert there.sections == here.sections
    assert {k: len(v) for k, v in there.notes.items()} == {k: len(v) for k, v in here.notes.items()}
    assert url in there.path.read_text()


def test_live_warm_up_from_s3_equals_local(stores):
    from bqx.store.layout import partition_rel, read_partition

    local, url = stores
    start = datetime(2024, 7, 15, 12, tzinfo=timezone.utc)
    bars = pl.concat([read_partition(local, partition_rel("bars", p, "2024-07")).select(pl.lit(p).alias("pair"), pl.all())
                      for p in PAIRS]).filter(pl.col("ts") >= start).sort("ts", "pair")
    minutes = [m for _, m in bars.head(60).partition_by("ts", as_dict=True, maintain_order=True).items()]
    out = {}
    for root in (local, url):
        live = bqx.Live(root, until=start, families=LIVE_FAMILIES)
        out[str(root)] = pl.concat([live.update(m) for m in minutes])
    here, there = out[str(local)], out[url]
    assert here.height == 60 and (here["live_status"] == "ok").all()
    assert there.equals(here)
    # the features of the warm-up equal what the batch stored for those minutes
    ref = bqx.load(local, start=start.isoformat(), end=(start + timedelta(minutes=29)).isoformat()).collect()
    cols = [c for c in live.columns if c in ref.columns]
    j = there.join(ref.select("pair", "ts", *cols), on=["pair", "ts"], suffix="__batch")
    assert j.height > 0 and cols
    for c in cols:
        assert (j[c] - j[f"{c}__batch"]).abs().max() <= 1e-9, c


def test_live_appends_bars_to_an_s3_store(stores, tmp_path):
    import shutil

    from bqx.live.sinks import append_to_store
    from bqx.store.layout import partition_rel, read_partition

    local, _ = stores
    mine = tmp_path / "store"
    shutil.copytree(local, mine)
    url = f"s3://bqx/append-{uuid.uuid4().hex[:8]}"
    copy_to_s3(mine, url)
    last = read_partition(local, partition_rel("bars", "EURUSD", "2024-07"))["ts"].max()
    new = sample_bars(PAIRS, "2024-07", 1).filter((pl.col("ts") > last) & (pl.col("ts") <= last + timedelta(minutes=30)))
    assert new.height > 0
    assert append_to_store(url, new) == append_to_store(mine, new) == new.height
    for p in PAIRS:
        rel = partition_rel("bars", p, "2024-07")
        assert read_partition(url, rel).equals(read_partition(mine, rel))
    from bqx.store.lock import writer_active

    assert not writer_active(url)  # the append's lease is released


def test_signal_on_s3_equals_local(stores):
    from bqx.signal.run import compute_signal
    from bqx.store.backend import backend_for

    local, url = stores
    here = compute_signal(local, workers=1, min_rows=50)
    there = compute_signal(url, workers=1, min_rows=50)
    assert there.directory == f"{url}/signal" and here.cells.height > 0
    assert there.cells.equals(here.cells) and there.features.equals(here.features)
    assert {"signal/ic.parquet", "signal/summary.parquet", "signal/summary_family.parquet"} <= set(
        backend_for(url).list_files("signal"))


def test_a_second_process_with_only_the_url_validates_and_exports(stores, validated, env, tmp_path):
    """No shared disk: a fresh working directory and temporary directory, the URL and the AWS environment."""
    _, url = stores
    work = tmp_path / "elsewhere"
    (work / "tmp").mkdir(parents=True)
    repo = Path(__file__).resolve().parents[2]
    e = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BQX_"))}
    e.update(AWS_ENDPOINT_URL=env, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1",
             TMPDIR=str(work / "tmp"), PYTHONPATH=str(repo), HOME=str(work))

    def bqx_cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bqx", *args], cwd=work, env=e, capture_output=True,
                              text=True, timeout=600)

    v = bqx_cli("validate", "--store", url, "--json", "--samples", "3", "--partitions", "1", "--cuts", "50")
    assert v.returncode == 0, v.stderr[-2000:]
    assert json.loads(v.stdout)["passed"] is True
    x = bqx_cli("export", "--store", url, "--to", str(work / "export"), "--families", ",".join(LIVE_FAMILIES),
                "--embargo", "600")
    assert x.returncode == 0, x.stderr[-2000:]
    assert (work / "export" / "metadata" / "COMPLETE.json").is_file()
    assert sorted(p.name for p in (work / "tmp").iterdir()) == []  # the manifest's temporary copy is gone
