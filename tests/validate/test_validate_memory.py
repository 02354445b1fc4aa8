"""Validation's peak memory does not grow with the months of the store (peak RSS of a child process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bqx.engine.run import run

PAIRS = ["EURUSD", "USDJPY"]
STAGES = ["rate_index", "extraction"]

CHILD = """
import json, logging, resource, sys
logging.getLogger("bqx").setLevel(logging.ERROR)
from bqx.validate import validate
r = validate(sys.argv[1], ["rate_index", "statistics"], save=False, workers=1, boundary_months=2)
print("PEAK " + json.dumps({"rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "passed": r.passed,
                            "boundary": r.family("statistics").checks["boundary"].samples}))
"""


def _peak(store: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(store)], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("PEAK ")][-1]
    return json.loads(line[5:])


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    roots = {}
    for months in (1, 3):
        root = tmp_path_factory.mktemp(f"mem{months}") / "store"
        end = {1: "2024-07", 3: "2024-09"}[months]
        result = run(root, source="sample", pairs=PAIRS, start="2024-07", end=end, stages=STAGES, executor="serial")
        assert result.ok, result.failed
        roots[months] = root
    return roots


def test_validation_peak_memory_does_not_grow_with_months(stores):
    """One month against three (two month boundaries checked, each from a bounded start): about the same peak."""
    short, long = _peak(stores[1]), _peak(stores[3])
    assert short["passed"] and long["passed"]
    assert short["boundary"] == 0 and long["boundary"] >= 2
    assert long["rss"] <= 1.15 * short["rss"] + 40 * 2**20, (short, long)
