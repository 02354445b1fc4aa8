"""Helpers of the fault-injection tests: the small store's arguments, the CLI in a subprocess, file digests.

Store: EURUSD and USDJPY, the sample month 2024-07, stages up to targets (rate_index, bqx,
targets), built once by the engine. Every test copies it (mtimes kept, so the manifest's stamps
still hold) and compares what it gets after the fault with the clean store or the clean export.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PAIRS = ("EURUSD", "USDJPY")
MONTH = "2024-07"
RUN_ARGS = ["--pairs", ",".join(PAIRS), "--start", MONTH, "--end", MONTH, "--stages", "targets"]
EXPORT = dict(families=["rate_index"], embargo=100, no_validate=True)
EXPORT_ARGS = ["--families", "rate_index", "--embargo", "100", "--no-validate"]


def bqx(*args: str, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess (this checkout first on the path)."""
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "bqx", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, **kw)


def popen(*args: str) -> subprocess.Popen:
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "bqx", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def file_hashes(root: Path) -> dict[str, str]:
    """Path -> SHA-256 of every file the store's manifest records (bars and task outputs)."""
    from bqx.store.checksum import file_sha256, recorded_files
    from bqx.store.state import open_state

    return {r.rel: file_sha256(root / r.rel) for r in recorded_files(open_state(root))}


def export_digest(dest: Path) -> dict[str, str]:
    """What an export carries, without its ids and times: feature files' SHA-256 and the scaler."""
    files = json.loads((dest / "metadata" / "files.json").read_text())
    out = {e["path"]: e["sha256"] for e in files}
    out["scaler"] = (dest / "scalers" / "scaler.json").read_text()
    return out
