"""The command as a user runs it: a real `python -m bqx` process, and one small computed store shared by a module."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PAIRS = "EURUSD,USDJPY"


def bqx(*args: str, cwd=None, env=None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m bqx ARGS` to completion (wide terminal, so messages are not wrapped)."""
    full_env = {**os.environ, "COLUMNS": "400", **(env or {})}
    return subprocess.run([sys.executable, "-m", "bqx", *args], capture_output=True, text=True, cwd=cwd,
                          env=full_env, timeout=timeout)


def start(*args: str, cwd=None) -> subprocess.Popen:
    """Start `python -m bqx ARGS` in the background (stderr line-buffered for the caller to watch)."""
    env = {**os.environ, "COLUMNS": "400", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "bqx", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=cwd, env=env)


def one_line_error(res: subprocess.CompletedProcess) -> str:
    """The error message of a failed command; it must not be an internal error or a traceback."""
    assert "internal error" not in res.stderr and "Traceback" not in res.stderr, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert lines, res.stderr
    return lines[-1]


@pytest.fixture(scope="module")
def small_store(tmp_path_factory) -> Path:
    """Bars, rate_index, bqx and targets of EURUSD and USDJPY for 2024-07 (about ten seconds)."""
    root = tmp_path_factory.mktemp("small") / "store"
    res = bqx("run", "--store", str(root), "--pairs", PAIRS, "--start", "2024-07", "--end", "2024-07",
              "--stages", "targets", "--executor", "serial", "-q")
    assert res.returncode == 0, res.stderr
    return root


@pytest.fixture
def store_copy(small_store, tmp_path) -> Path:
    """A copy of the small store this test may change."""
    root = tmp_path / "store"
    shutil.copytree(small_store, root)
    return root
