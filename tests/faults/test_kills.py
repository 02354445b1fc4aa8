"""SIGKILL of the real CLI at seeded random points of run, ingest, validate and export.

Each test starts the command in a subprocess, kills it (SIGKILL: no handler runs) after a delay
drawn from `random.Random(SEED)`, then checks what the store or target holds: the export is
refused or identical to the clean one, and the same command rerun finishes with exit 0 and
gives files identical to a clean run's. Set BQX_FAULT_SEED to draw other kill points.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import polars as pl
import pytest

from bqx.errors import BqxError
from bqx.export import IncompleteExportError, export, read_export_metadata

from fault_helpers import EXPORT, EXPORT_ARGS, MONTH, PAIRS, RUN_ARGS, bqx, export_digest, file_hashes, popen

SEED = int(os.environ.get("BQX_FAULT_SEED", "24"))


def _kill_after(args: list[str], low: float, high: float, salt: str) -> tuple[float, int | None]:
    """Run `bqx *args`, SIGKILL it after a seeded delay in [low, high) s; (delay, exit code if it finished first)."""
    delay = random.Random(f"{SEED}-{salt}").uniform(low, high)
    proc = popen(*args)
    try:
        proc.wait(timeout=delay)
        assert proc.returncode == 0, proc.stderr.read()  # finished before the kill: it must have succeeded
        return delay, proc.returncode
    except subprocess.TimeoutExpired:  # still running: the kill
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.returncode == 0:  # it exited in the instant between the timeout and the signal: finished
            return delay, 0
        assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stderr.read())
        return delay, None
    finally:
        proc.stdout.close()
        proc.stderr.close()


def test_kill_run_then_resume(tmp_path, clean, clean_export):
    store = tmp_path / "s"
    args = ["run", "--store", str(store), "--source", "sample", "--executor", "serial", *RUN_ARGS]
    delay, code = _kill_after(args, 2.0, 14.0, "run")
    if code is None:  # killed: the export refuses the store, or (killed after the last task) equals the clean one
        try:
            export(store, str(tmp_path / "early"), **EXPORT)
        except BqxError as exc:
            assert "refusing to export" in str(exc) or "not a bqx store" in str(exc) or "no targets" in str(exc), exc
        else:
            assert export_digest(tmp_path / "early") == clean_export
    res = bqx(*args)
    assert res.returncode == 0, f"killed after {delay:.2f} s; rerun: {res.stderr}"
    assert "tasks done" in res.stderr
    assert file_hashes(store) == file_hashes(clean)
    export(store, str(tmp_path / "x"), **EXPORT)
    assert export_digest(tmp_path / "x") == clean_export


def test_kill_ingest_then_resume(tmp_path, clean):
    src = tmp_path / "src"
    src.mkdir()
    for pair in PAIRS:
        pl.read_parquet(clean / "bars" / f"pair={pair}" / f"year_month={MONTH}" / "data.parquet").write_csv(src / f"{pair}.csv")
    store = tmp_path / "s"
    args = ["ingest", str(src), "--store", str(store), "--tz", "UTC"]
    delay, code = _kill_after(args, 0.5, 5.0, "ingest")
    assert not list(store.rglob(".*.tmp")) or code is None  # a killed writer may leave a temp file ...
    res = bqx(*args)
    assert res.returncode == 0, f"killed after {delay:.2f} s; rerun: {res.stderr}"
    assert not list(store.rglob(".*.tmp")), "... which the rerun removes"
    for pair in PAIRS:
        rel = f"bars/pair={pair}/year_month={MONTH}/data.parquet"
        assert (store / rel).read_bytes() == (clean / rel).read_bytes(), f"killed after {delay:.2f} s"


def test_kill_validate_then_rerun(store, clean_export, tmp_path):
    args = ["validate", "--store", str(store), "--cuts", "0", "--samples", "2", "--partitions", "1"]
    delay, code = _kill_after(args, 1.0, 8.0, "validate")
    if code is None:  # a killed validation leaves no report or a whole one, never a torn one
        latest = store / "validation" / "latest.json"
        assert not latest.exists() or latest.read_text().strip().endswith("}")
    res = bqx(*args)
    assert res.returncode == 0, f"killed after {delay:.2f} s; rerun: {res.stderr}"
    export(store, str(tmp_path / "x"), **(EXPORT | {"no_validate": False}))
    assert export_digest(tmp_path / "x") == clean_export


def test_kill_export_then_rerun(store, clean_export, tmp_path):
    dest = tmp_path / "x"
    args = ["export", "--store", str(store), "--to", str(dest), *EXPORT_ARGS]
    delay, code = _kill_after(args, 1.0, 9.0, "export")
    if code is None and not (dest / "metadata" / "COMPLETE.json").exists():
        with pytest.raises(IncompleteExportError):
            read_export_metadata(str(dest))
        res = bqx(*args)  # an unfinished export is resumed without --overwrite
    else:  # finished before the kill (the marker can land just before the SIGKILL on a loaded machine)
        res = bqx(*args, "--overwrite")
    assert res.returncode == 0, f"killed after {delay:.2f} s; rerun: {res.stderr}"
    assert export_digest(dest) == clean_export
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file() and not p.name.startswith("."))
    listed = {e["path"] for e in read_export_metadata(str(dest))["file_list"]}
    assert [f for f in files if f.startswith("features/")] == sorted(listed), "nothing torn or left over"


def test_two_exports_to_one_target(store, tmp_path):
    """The second export while the first holds the target is refused at once, naming the first."""
    dest = tmp_path / "x"
    first = popen("export", "--store", str(store), "--to", str(dest), *EXPORT_ARGS)
    try:
        deadline = time.monotonic() + 60
        while not (dest / "metadata" / "claims.json").exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        res = bqx("export", "--store", str(store), "--to", str(dest), *EXPORT_ARGS)
    finally:
        first.wait(timeout=120)
        first.stdout.close()
        first.stderr.close()
    assert first.returncode == 0
    if res.returncode == 0:  # the first finished before the second started: then it is refused as finished
        pytest.fail("the second export ran while the first held the target")
    assert res.returncode == 2 and (f"is being written by another export (pid {first.pid}" in res.stderr
                                    or "holds a finished export" in res.stderr), res.stderr
