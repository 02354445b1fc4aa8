"""Validation and export take the store's lock shared; run and ingest exclusive: two processes."""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from bqx.store.lock import read_lock, store_lock
from bqx.engine.run import run
from bqx.errors import StoreLockedError
from bqx.export import export
from bqx.validate import validate

HOLD = """
import sys
from bqx.store.lock import read_lock, store_lock
lock = store_lock if sys.argv[2] == "write" else read_lock
with lock(sys.argv[1], sys.argv[3]):
    print("HELD", flush=True)
    sys.stdin.read()  # until the parent closes our stdin
"""


@contextmanager
def held(store: Path, mode: str, purpose: str):
    """Another process holding the store's lock (`write` or `read`) until the block ends."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(store), mode, purpose], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "HELD", proc.stderr.read()
        yield proc.pid
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_validation_and_export_refuse_a_store_a_run_is_changing(store, tmp_path):
    with held(store, "write", "run") as pid:
        with pytest.raises(StoreLockedError) as err:
            validate(store, ["rate_index"], save=False)
        text = str(err.value)
        assert f"being changed by pid {pid}" in text and "run" in text and "validation" in text
        assert "Wait for it to finish" in err.value.hint and err.value.exit_code == 2
        with pytest.raises(StoreLockedError, match=f"being changed by pid {pid}.*export"):
            export(store, str(tmp_path / "out"), no_validate=True)
    assert validate(store, ["rate_index"], save=False).passed  # released when the run ends


def test_a_run_refuses_a_store_being_validated_and_readers_share(store):
    with held(store, "read", "validation") as pid:
        with read_lock(store, "export"):  # a second reader at the same time is fine
            pass
        with pytest.raises(StoreLockedError) as err:
            run(store, source=None, stages=["rate_index"], executor="serial", force=True)
        text = str(err.value)
        assert f"being read by pid {pid}" in text and "validation" in text
        assert "Wait for the validation to finish" in err.value.hint
    with store_lock(store, "run"):  # the reader is gone: a writer gets the lock
        assert not any((store / ".readers").glob("*.json"))


def test_a_stale_reader_file_does_not_block_a_writer(tmp_path):
    root = tmp_path / "s"
    (root / ".readers").mkdir(parents=True)
    (root / ".readers" / "999999999-0.json").write_text('{"pid": 999999999, "purpose": "validation"}')
    with store_lock(root, "run"):
        pass
