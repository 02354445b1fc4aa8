"""A full disk under run and export: a small tmpfs when this machine lets the test mount one (root),
else ENOSPC simulated in the writers. Each: the failure is reported (the store or target refused
afterwards), and once space is back the rerun gives files identical to a clean run's."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from bqx.errors import BqxError
from bqx.export import IncompleteExportError, export, read_export_metadata

from fault_helpers import EXPORT, MONTH, PAIRS, export_digest, file_hashes


@contextmanager
def small_disk(base: Path, size_kb: int, monkeypatch):
    """(directory limited to about `size_kb`, grow()): a tmpfs when mountable, else simulated ENOSPC."""
    mnt = base / f"disk-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    mounted = False
    simulate = os.environ.get("BQX_FAULT_SIMULATE_ENOSPC") == "1"  # to exercise the fallback where root can mount
    if not simulate and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount"):
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mnt)],
                                 capture_output=True).returncode == 0
    if mounted:
        def grow() -> None:
            subprocess.run(["mount", "-o", "remount,size=512m", str(mnt)], check=True)
        try:
            yield mnt, grow
        finally:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        return
    # simulated: every atomic write past the budget raises ENOSPC
    import importlib

    writer, bio, checksum = (importlib.import_module(m) for m in ("bqx.export.writer", "bqx.io", "bqx.store.layout"))

    real = bio.atomic_write
    used = [0]

    def full(path, write):
        if str(path).startswith(str(mnt)):
            used[0] += 1
            if used[0] > max(1, size_kb // 2000):  # about one store file per 2 MB
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, write)

    for mod in (bio, checksum, writer):
        monkeypatch.setattr(mod, "atomic_write", full)
    yield mnt, lambda: [monkeypatch.setattr(mod, "atomic_write", real) for mod in (bio, checksum, writer)]


def test_run_on_a_full_disk_then_resume(tmp_path, clean, clean_export, monkeypatch):
    from bqx.engine.run import run

    args = dict(source="sample", pairs=list(PAIRS), start=MONTH, end=MONTH, stages=["targets"], executor="serial")
    with small_disk(tmp_path, 12_000, monkeypatch) as (disk, grow):
        store = disk / "s"
        try:
            result = run(store, **args)
        except (OSError, BqxError, Exception) as exc:  # the manifest itself may be what hits the full disk
            assert "No space left" in str(exc) or "full" in str(exc), exc
        else:
            assert not result.ok and any("No space left" in f["error"] for f in result.failed), result.failed
        with pytest.raises(BqxError, match="refusing to export|not a bqx store|no targets"):
            export(store, str(tmp_path / "refused"), **EXPORT)
        grow()
        again = run(store, **args)
        assert again.ok, again.failed
        assert file_hashes(store) == file_hashes(clean)
        export(store, str(tmp_path / "x"), **EXPORT)
    assert export_digest(tmp_path / "x") == clean_export


def test_export_to_a_full_disk_then_rerun(store, clean_export, tmp_path, monkeypatch):
    with small_disk(tmp_path, 1_500, monkeypatch) as (disk, grow):
        dest = disk / "x"
        with pytest.raises(OSError, match="No space left"):
            export(str(store), str(dest), **EXPORT)
        with pytest.raises(IncompleteExportError, match="incomplete"):
            read_export_metadata(str(dest))
        grow()
        export(str(store), str(dest), **EXPORT)  # an unfinished export resumes without --overwrite
        assert export_digest(dest) == clean_export
