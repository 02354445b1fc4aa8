"""`bqx live` under systemd or docker: SIGTERM computes and writes what was read, then exits 143; a bar with an
absurd price is rejected with its reason and does not end the session."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import polars as pl

from tests.live.conftest import stored_bars

START = datetime(2024, 7, 31, 23, 57, tzinfo=timezone.utc)


def test_sigterm_flushes_the_computed_minutes_and_exits_143(live_store, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(live_store, store)
    bars = stored_bars(live_store, START).with_columns(pl.col("ts") + pl.duration(minutes=10))
    first = bars["ts"].min()
    # the first minute's EURUSD bar has high = 1e308: rejected (price-out-of-bounds), the session goes on
    bars = bars.with_columns(pl.when((pl.col("ts") == first) & (pl.col("pair") == "EURUSD")).then(1e308)
                             .otherwise(pl.col("high")).alias("high"))
    src = tmp_path / "in"
    src.mkdir()
    cols = ["pair", "ts", "open", "high", "low", "close", "volume"]
    lines = [",".join(cols)] + [",".join(r["ts"].isoformat() if c == "ts" else r[c] if c == "pair" else repr(r[c]) for c in cols)
                                for r in bars.iter_rows(named=True)]
    (src / "bars.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    # --flush-minutes far beyond the input: nothing is written before the end, so only the SIGTERM path writes
    proc = subprocess.Popen([sys.executable, "-m", "bqx", "live", "--source", str(src), "--out", str(out), "--store",
                             str(store), "--flush-minutes", "100000", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    rejected = []
    deadline = time.time() + 240
    while time.time() < deadline and not rejected:
        line = proc.stderr.readline()
        if not line:
            break
        if line.startswith('{"rejected"'):
            rejected.append(json.loads(line)["rejected"])
    assert rejected and rejected[0]["rule"] == "price-out-of-bounds" and rejected[0]["column"] == "high"
    assert "1e6" in rejected[0]["detail"]
    time.sleep(2.0)
    assert proc.poll() is None, "a 1e308 bar ended the session"
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert "interrupted; rerun to resume" in stderr
    days = sorted(out.glob("features-*.parquet"))
    assert [d.name for d in days] == ["features-2024-08-01.parquet"]
    got = pl.read_parquet(days[0])
    assert got["ts"].n_unique() == bars["ts"].n_unique() and set(got["pair"]) == {"EURUSD", "USDJPY"}
    summary = json.loads(stdout)["live"]
    assert summary["interrupted"] is True and summary["rejected"] == 1 and summary["minutes"] == bars["ts"].n_unique()
