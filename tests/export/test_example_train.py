"""examples/train.py runs on a small export with folds and weights and prints the model beside the base rate."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bqx.export import export

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("lightgbm")


def test_the_training_example_trains_on_purged_folds(store, tmp_path):
    dest = tmp_path / "exp"
    export(store, str(dest), families=["bqx", "rate_index"], cv="walk-forward:3", no_validate=True, workers=1)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "train.py"), str(dest), "--rounds", "30", "--max-rows", "20000",
                           "--threads", "1"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert sum(line.startswith("split ") for line in lines) == 3
    scores = {}
    for line in lines:
        parts = line.split()
        if parts[:1] == ["lightgbm"] or parts[:2] == ["base", "rate"]:
            scores[parts[0]] = (float(parts[-2]), float(parts[-1]))
    assert set(scores) == {"lightgbm", "base"}
    for loss, acc in scores.values():
        assert math.isfinite(loss) and 0 < loss < 5 and 0 <= acc <= 1
    assert scores["base"][1] == pytest.approx(1 / 3, abs=0.02)  # one class predicted: recall 1 on it, 0 on the others
    # a missing label horizon is a usage error, exit 2
    bad = subprocess.run([sys.executable, str(ROOT / "examples" / "train.py"), str(dest), "--horizon", "45"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert bad.returncode == 2 and "lbl_tb_h45_side" in bad.stderr
