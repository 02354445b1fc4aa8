"""`bqx live`: bar lines on stdin or in a growing directory in, feature JSON lines or Parquet days out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone

import polars as pl

from tests.live.conftest import stored_bars

START = datetime(2024, 7, 31, 23, 57, tzinfo=timezone.utc)


def _lines(bars: pl.DataFrame) -> list[str]:
    return [json.dumps({**r, "ts": r["ts"].isoformat()}) for r in bars.drop([c for c in bars.columns if c.startswith(("bid", "ask"))]).iter_rows(named=True)]


def _truncated_store(live_store, tmp_path):
    """A copy of the store without its bars from START on (what live will add back)."""
    root = tmp_path / "store"
    shutil.copytree(live_store, root)
    return root


def bqx(*args, stdin: str = "", cwd=None):
    return subprocess.run([sys.executable, "-m", "bqx", *args], input=stdin, capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_stdin_json_lines_to_stdout_with_a_rejected_line(live_store, tmp_path):
    bars = stored_bars(live_store, START)
    store = _truncated_store(live_store, tmp_path)
    # live starts after the store's last bar: feed minutes after it, made by shifting the last minutes
    fresh = bars.with_columns(pl.col("ts") + pl.duration(minutes=10))
    lines = _lines(fresh)
    lines.insert(1, "{not json")
    lines.append(lines[-1].replace('"close": ', '"close": -'))
    r = bqx("live", "--source", "-", "--store", str(store), stdin="\n".join(lines) + "\n")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert {row["pair"] for row in rows} == {"EURUSD", "USDJPY"}
    assert len({row["ts"] for row in rows}) == fresh["ts"].n_unique()
    assert all(len(row) >= 612 for row in rows)
    rules = [json.loads(x)["rejected"]["rule"] for x in r.stderr.splitlines() if x.startswith("{")]
    assert "unparseable" in rules and rules.count("duplicate-conflict") + rules.count("non-positive-price") == 1


def test_directory_csv_to_parquet_days_and_append_to_store(live_store, tmp_path):
    store = _truncated_store(live_store, tmp_path)
    bars = stored_bars(live_store, START).with_columns(pl.col("ts") + pl.duration(minutes=10))
    src = tmp_path / "in"
    src.mkdir()
    cols = ["pair", "ts", "open", "high", "low", "close", "volume"]
    text = ",".join(cols) + "\n" + "\n".join(
        ",".join(r["ts"].isoformat() if c == "ts" else str(r[c]) for c in cols) for r in bars.iter_rows(named=True))
    (src / "bars.csv").write_text(text + "\n")
    out = tmp_path / "out"
    before = pl.read_parquet(store / "bars" / "pair=EURUSD" / "year_month=2024-08" / "data.parquet").height \
        if (store / "bars" / "pair=EURUSD" / "year_month=2024-08").exists() else 0
    # a directory source never ends by itself: run it under a timeout and stop it
    proc = subprocess.Popen([sys.executable, "-m", "bqx", "live", "--source", str(src), "--out", str(out), "--store",
                             str(store), "--append-to-store", "--flush-minutes", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    import time

    deadline = time.time() + 120
    while time.time() < deadline and not list(out.glob("features-*.parquet")):
        time.sleep(1)
    time.sleep(3)
    proc.terminate()
    proc.wait(timeout=60)
    days = sorted(out.glob("features-*.parquet"))
    assert [d.name for d in days] == ["features-2024-08-01.parquet"]
    got = pl.read_parquet(days[0])
    assert set(got["pair"]) == {"EURUSD", "USDJPY"} and got.height >= 2
    after = pl.read_parquet(store / "bars" / "pair=EURUSD" / "year_month=2024-08" / "data.parquet").height
    assert after > before
