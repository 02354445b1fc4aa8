"""Memory does not grow with the number of months: a task reads its month plus its context only."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from bqx.engine.plan import BarsInventory, TaskGraph, stage_specs
from bqx.engine.partitions import add_months, month_span
from bqx.store.layout import write_bars

ROWS = 31_000  # about one month of M1 bars


def _graph(months: int) -> dict:
    span = month_span("2024-01", add_months("2024-01", months - 1))
    inv = BarsInventory({(p, m): ROWS for p in ("EURUSD", "USDJPY") for m in span},
                        {(p, m): f"{p}{m}" for p in ("EURUSD", "USDJPY") for m in span})
    specs = stage_specs()
    graph = TaskGraph(specs, inv, baseline=datetime(2024, 1, 1, tzinfo=timezone.utc), anchors={}, infos={})
    return graph.build(list(specs), ["EURUSD", "USDJPY"], span), specs


def test_a_task_reads_its_month_and_only_the_months_its_context_needs():
    tasks, specs = _graph(12)
    for key, task in tasks.items():
        spec = specs[key[0]]
        before = math.ceil(spec.context / ROWS)  # 150 rows of context: the previous month only
        after = math.ceil(spec.lookahead / ROWS)
        for pair, months in task.reads.items():
            assert key[2] in months, key
            i = months.index(key[2])
            assert i <= before and len(months) - 1 - i <= after, (key, pair, months)
    # twelve months or three: the widest task reads the same number of months
    widest = {n: max(len(ms) for t in _graph(n)[0].values() for ms in t.reads.values()) for n in (3, 12)}
    assert widest[3] == widest[12]


PROBE = """
import json, resource, sys
from bqx.engine import run
import bqx.core.registry as r; r.REGISTRY.load_builtins()
with open("/proc/self/statm") as f:
    base = int(f.read().split()[1]) * 4096
res = run(sys.argv[1], source=None, stages=["regression"], executor="serial")
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"ok": res.ok, "tasks": len(res.done), "base": base, "peak": peak}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_peak_memory_of_a_serial_run_does_not_grow_with_months(tmp_path):
    from bqx.bars.sample import sample_market

    grown = {}
    for months in (1, 3):
        root = tmp_path / f"m{months}"
        write_bars(root, sample_market(pairs=["EURUSD"], start="2024-07", months=months), source="sample")
        out = subprocess.run([sys.executable, "-c", PROBE, str(root)], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        got = json.loads(out.stdout.strip().splitlines()[-1])
        assert got["ok"] and got["tasks"] == 3 * months  # rate_index, bqx, regression per month
        grown[months] = got["peak"] - got["base"]  # what the run added to the imported interpreter
    # regression (180 columns) of 3 x 31,000 bars held at once would be ~3 times the 1-month run;
    # a task holds one month plus its 150-row context, so 3 months stay within 1.5 times
    assert grown[3] < 1.5 * grown[1], {k: f"{v / 2**20:.0f} MB" for k, v in grown.items()}
