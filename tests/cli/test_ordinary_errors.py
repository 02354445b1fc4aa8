"""Every ordinary failure is one clear line naming the file or value and what to do, never "internal error"."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.cli.conftest import bqx, one_line_error


def test_a_month_that_does_not_exist(small_store):
    for args in (["plan", "--store", str(small_store)], ["run", "--store", str(small_store), "--dry-run"]):
        res = bqx(*args, "--start", "2024-13")
        assert res.returncode == 2
        line = one_line_error(res)
        assert "start" in line and "2024-13" in line and "01 to 12" in line


@pytest.mark.parametrize("toml, words", [
    ("[families.bqx]\nwindows = [0, -1]\n", ["[families.bqx] windows = [0, -1]", "0, -1 are not", "[15, 30, 45, 60, 75]"]),
    ("[families.bqx]\nwindows = [15, 30.5]\n", ["30.5 is not"]),
    ("[families.statistics]\nwindow = 0\n", ["[families.statistics] window = 0", "the default is 60"]),
])
def test_bad_family_parameters_in_bqx_toml(tmp_path, toml, words):
    (tmp_path / "bqx.toml").write_text(toml)
    res = bqx("plan", cwd=tmp_path)
    assert res.returncode == 2
    line = one_line_error(res)
    assert all(w in line for w in words) and str(tmp_path / "bqx.toml") in line


def test_a_bqx_toml_that_is_not_utf8(tmp_path):
    (tmp_path / "bqx.toml").write_bytes('store = "café"\n'.encode("latin-1"))
    res = bqx("status", cwd=tmp_path)
    assert res.returncode == 2
    line = one_line_error(res)
    assert "bqx.toml" in line and "not UTF-8" in line and "0xe9" in line


def test_unknown_family_in_export(small_store, tmp_path):
    res = bqx("export", "--store", str(small_store), "--to", str(tmp_path / "x"), "--families", "bqq", "--no-validate")
    assert res.returncode == 2
    assert "unknown family 'bqq'" in one_line_error(res) and "Did you mean bqx" in res.stderr


def test_features_lists_a_plugin_family_of_bqx_toml(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "my_range_features.py").write_text(textwrap.dedent('''
        import polars as pl
        from bqx import Column, family

        @family(name="my_range", stage="extraction", inputs=("bars",), context=30,
                columns=lambda p: [Column("my_range_30", "continuous", 29, "mean (h - l) over the last 30 bars")])
        def my_range(frame: pl.DataFrame, ctx) -> pl.DataFrame:
            """my_range_30 = mean over L_30 of (high - low)."""
            return frame.select((pl.col("high") - pl.col("low")).rolling_mean(30).alias("my_range_30"))
    '''))
    (tmp_path / "proj" / "bqx.toml").write_text('plugins = ["my_range_features"]\n')
    res = bqx("features", "--family", "my_range", "--json", "--config", str(tmp_path / "proj" / "bqx.toml"),
              cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    import json

    assert [r["name"] for r in json.loads(res.stdout)] == ["my_range_30"]


def _corrupt(path: Path) -> None:
    """Overwrite the Parquet footer's metadata with zeros, keeping the size and the modification time."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-12:-4] = b"\0" * 8
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("verbose", [False, True])
def test_a_corrupt_parquet_file_is_named(store_copy, tmp_path, verbose):
    bad = store_copy / "bqx" / "pair=USDJPY" / "year_month=2024-07" / "data.parquet"
    _corrupt(bad)
    res = bqx("export", "--store", str(store_copy), "--to", str(tmp_path / "x"), "--no-validate",
              *(["--verbose"] if verbose else []))
    assert res.returncode == 1
    assert "internal error" not in res.stderr
    line = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")][-1]
    assert str(bad) in line and "not readable Parquet" in line and "rerun `bqx run`" in line


def _can_mount() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


def _in_namespace(setup: str, args: list[str]) -> subprocess.CompletedProcess:
    """Run `python -m bqx ARGS` after the shell lines `setup`, in a private mount namespace (root only)."""
    script = f'{setup}\nexec "$@"'
    env = {**os.environ, "COLUMNS": "400"}
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", sys.executable, "-m", "bqx", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_a_full_disk_names_the_file_and_the_remedy(tmp_path, monkeypatch, capsys):
    if _can_mount():  # a real full disk: a 3 MB tmpfs that a file has nearly filled
        disk = tmp_path / "disk"
        disk.mkdir()
        res = _in_namespace(f"mount -t tmpfs -o size=3m tmpfs {disk} && head -c 3000000 /dev/zero > {disk}/fill",
                            ["sample", "--out", str(disk / "bars"), "--pairs", "EURUSD"])
        assert res.returncode == 1, res.stderr
        line = one_line_error(res)
    else:  # simulated: the first write of a file fails with ENOSPC
        import bqx.io
        from bqx.cli.app import main

        def full(fh_path, write):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(bqx.io, "atomic_write", full)
        with pytest.raises(SystemExit) as code:
            main(["sample", "--out", str(tmp_path / "bars"), "--pairs", "EURUSD"])
        assert code.value.code == 1
        line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no space left on the device while writing" in line and "bars" in line and "Free some space" in line


def _read_only(store: Path):
    """How to run a command on `store` made read-only: a read-only bind mount (root), else no write permission."""
    if _can_mount():
        return lambda args: _in_namespace(f"mount --bind {store} {store} && mount -o remount,ro,bind {store}", args)
    if os.geteuid() == 0:
        pytest.skip("root without mount namespaces cannot make a read-only store")
    for path in [store, *store.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return lambda args: bqx(*args)


def test_a_read_only_store_can_be_inspected_validated_and_exported(store_copy, tmp_path):
    (store_copy / ".lock").unlink()  # as a snapshot copied without it: a reader must not need to create it
    run = _read_only(store_copy)
    s = str(store_copy)
    assert run(["status", "--store", s]).returncode == 0
    assert run(["plan", "--store", s]).returncode == 0
    nowhere = run(["validate", "--store", s, "--families", "bqx", "--cuts", "0"])
    assert nowhere.returncode == 2 and "--report FILE" in one_line_error(nowhere)
    report = tmp_path / "validation.json"
    res = run(["validate", "--store", s, "--families", "bqx", "--cuts", "0", "--report", str(report)])
    assert res.returncode == 0, res.stderr
    assert report.is_file() and f"report written to {report}" in res.stderr
    res = run(["export", "--store", s, "--to", str(tmp_path / "x"), "--no-validate"])
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "x" / "metadata").is_dir()
    res = run(["run", "--store", s, "--stages", "targets"])
    assert res.returncode in (1, 2) and "internal error" not in res.stderr


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_files_written_atomically_get_the_umask_mode(tmp_path, umask):
    from bqx.io import atomic_write_text, write_parquet
    import polars as pl

    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        write_parquet(pl.DataFrame({"x": [1.0]}), tmp_path / "b.parquet")
        with open(tmp_path / "plain.txt", "w") as fh:  # what any other file gets
            fh.write("x")
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert modes == {"a.json": 0o666 & ~umask, "b.parquet": 0o666 & ~umask, "plain.txt": 0o666 & ~umask}
