"""Time and peak memory of `bqx validate` (defaults) on an existing store, with the machine's load.

    .venv/bin/python bench/validate_cost.py --store /tmp/bqx-bench

Runs the CLI in a child process; prints wall seconds, the peak of the summed RSS of its process
tree (psutil, sampled every 0.25 s), the child's own and its largest worker's peak RSS
(getrusage), the verdicts, the slowest families, and `uptime` before and after.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from full_year import CLI, TreeMemory  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True)
    args = ap.parse_args()
    up0 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    t0 = time.perf_counter()
    proc = subprocess.Popen(CLI + ["validate", "--store", args.store, "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    mem = TreeMemory(proc.pid)
    out, err = proc.communicate()
    mem.stop()
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    up1 = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    report = json.loads(out[out.index("{"):]) if "{" in out else {}
    fams = report.get("families", [])
    slow = sorted(((sum(c.get("seconds", 0) for c in f["checks"].values()), f["family"]) for f in fams), reverse=True)[:5]
    print(json.dumps({
        "store": args.store, "exit": proc.returncode, "passed": report.get("passed"), "wall_s": round(wall, 1),
        "peak_tree_rss_gb": round(mem.peak / 2**30, 2), "procs_at_peak": mem.procs,
        "largest_process_rss_gb": round(ru.ru_maxrss * 1024 / 2**30, 2),
        "verdicts": {f["family"]: f["verdict"] for f in fams},
        "slowest_family_check_seconds": [[n, round(s, 1)] for s, n in slow],
        "uptime_before": up0, "uptime_after": up1, "stderr_tail": err[-500:] if proc.returncode else ""}, indent=1))


if __name__ == "__main__":
    main()
