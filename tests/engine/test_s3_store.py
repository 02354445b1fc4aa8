"""A store on object storage (s3://, a moto server on loopback): the engine writes it exactly as a local store,
needs nothing of the driver's disk, refuses a second driver and keeps credentials out of it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from bqx.engine import run
from bqx.errors import StoreLockedError
from bqx.store.backend import backend_for
from bqx.store.layout import read_partition, write_bars
from bqx.store.manifest import Manifest, open_reader
from engine_helpers import synth_bars

PAIRS = ("EURUSD", "USDJPY")
MONTHS = {"2024-01": 1500}
ACCESS_KEY = "AKIABQXTESTACCESS42"
SECRET_KEY = "bqx-secret-Zk4pQ9wTmV7xR2nL5sH8"


@pytest.fixture
def creds(s3_env, monkeypatch):
    """Distinctive credentials (moto accepts any), so the store can be searched for them."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    return s3_env


def _bars() -> pl.DataFrame:
    return synth_bars(PAIRS, MONTHS)


def _data_files(root) -> list[str]:
    return sorted(r for r in backend_for(root).stats() if r.endswith(".parquet") and not r.startswith("quarantine/"))


def _tasks_without_stamps(root) -> dict:
    """Every task's status, rows, fingerprint and outputs (path, size, checksum): all but the stamps."""
    man = open_reader(root)
    assert man is not None
    with man:
        return {k: (t.status, t.rows, t.fingerprint, tuple((o[0], o[1], o[3]) for o in t.outputs))
                for k, t in man.tasks().items()}


def assert_same_store(a, b, at_least: int = 20) -> None:
    files = _data_files(a)
    assert files == _data_files(b) and any(f.startswith("bars/") for f in files) and len(files) >= at_least
    for rel in files:  # every column of every partition, read through the layout on either side
        left, right = read_partition(a, rel), read_partition(b, rel)
        assert left.columns == right.columns, rel
        assert left.equals(right), rel
    assert _tasks_without_stamps(a) == _tasks_without_stamps(b)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()}
    env.update(extra)
    return env


def _bqx(args: list[str], cwd: Path, **extra: str) -> subprocess.CompletedProcess:
    """`bqx ...` in a fresh process whose working and temporary directories are its own (only the URL and env)."""
    tmp = cwd / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-m", "bqx", *args], cwd=cwd, capture_output=True, text=True,
                          env=_env(TMPDIR=str(tmp), **extra), timeout=300)


def test_s3_run_equals_local_and_keeps_no_credentials(creds, s3_store, tmp_path):
    local = tmp_path / "local"
    a = run(local, source=_bars(), executor="serial")
    b = run(s3_store, source=_bars(), executor="serial")
    assert a.ok and b.ok and len(a.done) == len(b.done) > 20
    assert_same_store(local, s3_store)
    with Manifest(s3_store, readonly=True) as man:  # stamps on S3 are ETags, locally mtime_ns
        outs = [o for t in man.tasks().values() for o in t.outputs]
        bars_rows = man.bars()
    assert outs and all(isinstance(o[2], str) and o[2].startswith('"') for o in outs)
    assert all(isinstance(v[3], str) for v in bars_rows.values())
    assert b.log_path.startswith(s3_store + "/logs/run-")
    log = backend_for(s3_store).read_text(b.log_path[len(s3_store) + 1:])
    assert "run_finished" in log
    # bqx.load reads the object store in place, equal to the local store
    import bqx

    assert bqx.load(s3_store).collect().equals(bqx.load(local).collect())
    # verify reads every object once and finds nothing; a changed object is named
    from bqx.engine.verify import verify_store

    assert verify_store(s3_store).ok
    # a rerun finds everything current from one listing, not a request per recorded file
    from bqx.store.backend import S3Backend

    heads: list[str] = []
    real_stat = S3Backend.stat
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(S3Backend, "stat", lambda self, rel: heads.append(rel) or real_stat(self, rel))
        again = run(s3_store, source=None, executor="serial")
    assert again.ok and not again.done and again.skipped == len(b.done)
    assert not [h for h in heads if h.endswith(".parquet")], heads
    # the gate of validate and export sees the store current
    from bqx.engine.gate import require_current

    assert require_current(s3_store).ok
    # credentials never in the store
    backend = backend_for(s3_store)
    names = backend.list_files()
    assert "manifest.sqlite" in names and "lease.json" not in names  # the lease is gone after the run
    for rel in names:
        data = backend.read_bytes(rel)
        assert ACCESS_KEY.encode() not in data and SECRET_KEY.encode() not in data, rel


def test_verify_names_a_changed_object(s3_env, s3_store):
    assert run(s3_store, source=_bars(), executor="serial", stages=["bqx"]).ok
    backend = backend_for(s3_store)
    rel = next(r for r in backend.list_files("bqx") if r.endswith(".parquet"))
    frame = read_partition(s3_store, rel)
    backend.write_parquet(rel, frame.with_columns(pl.col(frame.columns[1]) * 2))
    from bqx.engine.verify import verify_store

    res = verify_store(s3_store)
    assert [(f.rel, f.problem) for f in res.findings] == [(rel, "changed")]
    redo = run(s3_store, source=None, executor="serial", stages=["bqx"])  # the ETag changed: recomputed
    assert [(d["stage"], d["pair"]) for d in redo.done] == [("bqx", rel.split("/")[1][5:])]
    assert verify_store(s3_store).ok


def test_killed_run_resumes_from_another_process(s3_env, s3_store, tmp_path):
    local = tmp_path / "local"
    assert run(local, source=_bars(), executor="serial").ok
    write_bars(s3_store, _bars(), source="test")  # bars already in the store: the run computes them
    killed = _bqx(["run", "--store", s3_store, "--executor", "process", "--workers", "2", "--json"], tmp_path / "a",
                  BQX_TEST_KILL_AFTER_TASKS="6", BQX_LEASE_TTL="2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with Manifest(s3_store, readonly=True) as man:
        done = [k for k, t in man.tasks().items() if t.status == "done"]
    assert len(done) >= 6  # recorded (uploaded) before the kill
    shutil.rmtree(tmp_path / "a")  # the killed driver's disk is gone (its temporary manifest copy and log with it)
    time.sleep(2.5)  # the killed driver's lease expires
    resumed = _bqx(["run", "--store", s3_store, "--executor", "process", "--workers", "2", "--json"], tmp_path / "b")
    assert resumed.returncode == 0, resumed.stderr
    out = json.loads(resumed.stdout)
    assert 0 < len(out["done"]) < out["total"] and out["skipped"] >= len(done)
    status = _bqx(["status", "--store", s3_store, "--json"], tmp_path / "c")
    assert status.returncode == 0, status.stderr
    rows = {r["name"]: r for r in json.loads(status.stdout)}
    computed = [r for r in rows.values() if r["total"] and r["name"] != "bars"]
    assert computed and all(r["status"] == "done" and r["done"] == r["total"] for r in computed)
    assert_same_store(local, s3_store)
    for d in ("b", "c"):  # nothing was left in the drivers' own directories
        assert not [p for p in (tmp_path / d).rglob("*") if p.is_file()], d


HOLD = """
import sys, time
from bqx.store.lock import store_lock
with store_lock(sys.argv[1], "run"):
    print("held", flush=True)
    time.sleep(60)
"""


def _holder(url: str, **env: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(**env))
    assert proc.stdout.readline().strip() == "held", proc.stderr.read()
    return proc


def test_second_driver_refused_and_expired_lease_taken_over(s3_env, s3_store, tmp_path):
    proc = _holder(s3_store)
    try:
        second = _bqx(["run", "--store", s3_store, "--executor", "serial"], tmp_path)
        assert second.returncode == 2, second.stderr
        said = " ".join(second.stderr.split())  # the console wraps long lines
        assert f"is being written by pid {proc.pid}" in said and f"store {s3_store}" in said, said
    finally:
        proc.kill()
        proc.wait()
    # a holder killed with a short lease: its lease expires and the next driver takes it over (the killed
    # holder above keeps its 60 s lease on the first store)
    s3_store = s3_store + "-ttl"
    proc = _holder(s3_store, BQX_LEASE_TTL="3")  # long enough that a loaded machine still sees it live below
    proc.kill()
    proc.wait()
    from bqx.store.lock import store_lock

    with pytest.raises(StoreLockedError):  # not yet expired: still refused
        with store_lock(s3_store):
            pass
    time.sleep(3.5)
    with store_lock(s3_store):
        doc = json.loads(backend_for(s3_store).read_bytes("lease.json"))
        assert doc["pid"] == os.getpid()
    assert not backend_for(s3_store).exists("lease.json")


def test_manifest_upload_fenced(s3_env, s3_store):
    from bqx.store.lease import LEASE, current_lease
    from bqx.store.lock import store_lock

    backend = backend_for(s3_store)
    with store_lock(s3_store):
        lease = current_lease(backend)
        man = Manifest(s3_store)
        man.record("bqx", "EURUSD", "2024-01", status="done", rows=1, seconds=0.1, error=None, fingerprint="f",
                   outputs=[], run_id=1)
        man.sync(force=True)
        backend.write_bytes(LEASE, json.dumps({"id": "other", "pid": 1, "expires": time.time() + 60}).encode())
        lease.renew()  # the renewal finds another driver's lease: lost
        assert lease.lost
        with pytest.raises(StoreLockedError, match="another driver took"):
            man.sync(force=True)
        man.conn.close()
        man.remote.discard()
    with open_reader(s3_store) as reader:  # the other driver's store keeps only what was uploaded in time
        assert list(reader.tasks()) == [("bqx", "EURUSD", "2024-01")]


def test_manifest_overwritten_by_another_driver_is_refused(s3_env, s3_store):
    backend = backend_for(s3_store)
    man = Manifest(s3_store)
    man.sync(force=True)
    other = Manifest(s3_store)  # a driver that ignored the lease (or an old one) writes the object
    other.set_meta("x", "1")
    other.close()
    with pytest.raises(StoreLockedError, match="written by another driver"):
        man.sync(force=True)
    man.conn.close()
    man.remote.discard()
    assert backend.exists("manifest.sqlite")


def _csv_dir(root: Path) -> Path:
    """Per-pair CSV files in the `bqx sample` dialect (mid OHLC, volume, bid and ask OHLC)."""
    root.mkdir(parents=True)
    for (pair,), frame in _bars().partition_by("pair", as_dict=True).items():
        d = pl.col("close") * 1e-5
        frame.select(
            pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"), "open", "high", "low", "close", "volume",
            *[(pl.col(c) - d).alias(f"bid_{c}") for c in ("open", "high", "low", "close")],
            *[(pl.col(c) + d).alias(f"ask_{c}") for c in ("open", "high", "low", "close")],
        ).write_csv(root / f"{pair}.csv")
    return root


def test_ingest_csv_into_s3_then_run(s3_env, s3_store, tmp_path):
    src = _csv_dir(tmp_path / "csv")
    local = tmp_path / "local"
    for store in (str(local), s3_store):
        got = _bqx(["ingest", str(src), "--store", store, "--json"], tmp_path / "w")
        assert got.returncode == 0, got.stderr
        assert json.loads(got.stdout)["rows_out"] == 2 * 1500
        assert run(store, source=None, executor="serial", stages=["bqx"]).ok
    assert json.loads(backend_for(s3_store).read_bytes("pairs.json")).keys() == set(PAIRS)
    assert_same_store(local, s3_store, at_least=6)
    plan = _bqx(["plan", "--store", s3_store, "--stages", "bqx", "--json"], tmp_path / "p")
    assert plan.returncode == 0, plan.stderr
    stages = {s["name"]: s for s in json.loads(plan.stdout)["stages"]}
    assert stages["bqx"]["tasks"] == 2 and stages["bqx"]["to_run"] == 0
    verify = _bqx(["verify", "--store", s3_store, "--json"], tmp_path / "v")
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["files"] == 6 and json.loads(verify.stdout)["ok"]


def test_worker_killed_on_s3_store_is_replaced(s3_env, s3_store, monkeypatch):
    """The test hook counts outside the store for a URL store; the dead worker's task reruns in a new pool."""
    from bqx.engine.executors import kill_counter

    counter = kill_counter(s3_store)
    assert not str(counter).startswith("s3:") and counter != kill_counter(s3_store + "-other")
    counter.unlink(missing_ok=True)
    monkeypatch.setenv("BQX_TEST_KILL_WORKER", "bqx:EURUSD:2024-01:1")
    try:
        res = run(s3_store, source=_bars(), executor="process", workers=2, stages=["bqx"])
        assert res.ok and {(d["stage"], d["pair"]) for d in res.done} >= {("bqx", "EURUSD"), ("bqx", "USDJPY")}
        assert len(counter.read_text().splitlines()) == 1  # killed once, then run again
    finally:
        counter.unlink(missing_ok=True)
    assert not [r for r in backend_for(s3_store).list_files() if "test-kill" in r]


def test_missing_bucket_is_one_clear_error(s3_env, tmp_path):
    got = _bqx(["run", "--store", "s3://no-such-bucket/fx", "--executor", "serial"], tmp_path)
    said = " ".join(got.stderr.split())
    assert got.returncode == 2 and "S3 bucket 'no-such-bucket' does not exist" in said, said
    assert "Traceback" not in got.stderr


def test_interrupted_run_uploads_its_log_and_records(s3_env, s3_store):
    def stop(ev) -> None:
        if ev.kind == "task_done":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(s3_store, source=_bars(), executor="serial", stages=["bqx"], on_event=stop)
    backend = backend_for(s3_store)
    logs = backend.list_files("logs")
    assert len(logs) == 1 and "run_interrupted" in backend.read_text(logs[0])
    with open_reader(s3_store) as man:  # uploaded when the run stopped, with the task that ran
        statuses = sorted(t.status for t in man.tasks().values())
        assert "done" in statuses and [r["status"] for r in man.runs()] == ["interrupted"]
    assert not backend.exists("lease.json")


def test_repair_ingest_quarantines_into_the_s3_store(s3_env, s3_store, tmp_path):
    from bqx.bars.ingest import ingest

    src = _csv_dir(tmp_path / "csv")
    lines = (src / "EURUSD.csv").read_text().splitlines()
    cells = lines[5].split(",")
    cells[2], cells[3] = cells[3], cells[2]  # high below low: a rejected row
    lines[5] = ",".join(cells)
    (src / "EURUSD.csv").write_text("\n".join(lines) + "\n")
    rep = ingest(src, s3_store, policy="repair")
    assert rep.rows_quarantined == 1 and rep.quarantine_path.startswith(s3_store + "/quarantine/")
    rel = rep.quarantine_path[len(s3_store) + 1:]
    got = read_partition(s3_store, rel)
    assert got.height == 1 and got["line"][0] == 6 and got["pair"][0] == "EURUSD"


def test_every_reader_names_a_missing_bucket(s3_env):
    """A reader that first meets the missing bucket in a GET or a listing says so (it was an internal error)."""
    from bqx.cli.app import main

    for args in (["export", "--to", "/nonexistent/out", "--no-validate"], ["validate"], ["status"], ["verify"],
                 ["signal"], ["report", "--out", "/nonexistent/r.html"]):
        with pytest.raises(SystemExit) as stop:
            main([*args, "--store", "s3://no-such-bucket/fx"])
        assert stop.value.code == 2, args


def test_object_storage_failures_are_ordinary_errors_not_bugs():
    """A lost endpoint or refused credentials during a command exit 1 with what to do (they said "internal error")."""
    from botocore.exceptions import ClientError, EndpointConnectionError

    from bqx.errors import ResourceError, friendly

    lost = friendly(EndpointConnectionError(endpoint_url="http://127.0.0.1:1/b/manifest.sqlite"))
    denied = friendly(ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetObject"))
    assert isinstance(lost, ResourceError) and lost.exit_code == 1 and "127.0.0.1:1" in str(lost)
    assert isinstance(denied, ResourceError) and "AccessDenied" in str(denied)
    assert friendly(ClientError({"Error": {"Code": "NoSuchKey", "Message": "x"}}, "GetObject")) is None
