"""A run killed while it writes the sample market's bars resumes: the rerun writes every pair and month."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from bqx.engine import run
from bqx.store.layout import bars_partitions, read_pairs_json

PAIRS = ["EURUSD", "USDJPY"]
RUN = dict(pairs=PAIRS, start="2024-07", end="2024-07", stages=["rate_index"], executor="serial")


def _digests(root: Path) -> dict[str, str]:
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(root.rglob("*.parquet"))}


# the run SIGKILLs itself the instant its first bars file has landed (before anything else is written)
KILLED_RUN = """
import os, signal
import bqx.store.layout as layout
from bqx.engine.run import run

real = layout.write_partition

def write_then_die(root, rel, frame):
    out = real(root, rel, frame)
    if rel.startswith("bars/"):
        os.kill(os.getpid(), signal.SIGKILL)
    return out

layout.write_partition = write_then_die
run({root!r}, source="sample", **{run!r})
"""


def test_a_kill_while_the_first_months_sample_bars_are_written_resumes_to_a_clean_store(tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    code = KILLED_RUN.format(root=str(killed), run=RUN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BQX_TEST_")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert list(bars_partitions(killed)) == [("EURUSD", "2024-07")]  # killed after its first bars file
    recorded = read_pairs_json(killed)

    resumed = run(killed, **RUN)  # the default source (auto): what the CLI's plain `bqx run` does
    assert resumed.ok and resumed.bars_written == 1
    assert sorted(bars_partitions(killed)) == [(p, "2024-07") for p in PAIRS]
    assert {(d["stage"], d["pair"]) for d in resumed.done} == {("rate_index", p) for p in PAIRS}
    assert recorded.get("USDJPY", {}).get("source") == "sample"  # recorded before its bars were written

    assert run(clean, source="sample", **RUN).ok
    assert _digests(killed) == _digests(clean)
    assert (killed / "pairs.json").read_text() == (clean / "pairs.json").read_text()
