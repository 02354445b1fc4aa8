"""`bqx ingest postgresql://...` and `source = "postgresql://..."` in bqx.toml, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import polars as pl

import pg_server


def bqx(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bqx", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=300)


def test_cli_ingest_and_run_from_the_database(pg, sample, tmp_path):
    pg.execute('DROP SCHEMA IF EXISTS cli CASCADE', f"CREATE SCHEMA cli AUTHORIZATION {pg_server.USER}")
    bars = sample(("EURUSD", "GBPUSD"), "2024-07", 1).filter(pl.col("ts").dt.day() <= 3)
    pg_server.load_market(pg, bars, pattern="cli.fx_{pair}_m1")
    env = {"PGPASSWORD": pg_server.PASSWORD}
    res = bqx("ingest", pg.url(), "--store", str(tmp_path / "s"), "--table", "cli.fx_{pair}_m1", env=env)
    assert res.returncode == 0, res.stderr
    assert "EURUSD 2024-07:" in res.stderr and "GBPUSD 2024-07:" in res.stderr and "bars read" in res.stderr
    assert pg_server.PASSWORD not in res.stdout + res.stderr
    again = bqx("ingest", pg.url(), "--store", str(tmp_path / "s"), "--table", "cli.fx_{pair}_m1", "--json", env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["rows_out"] == 0
    bad = bqx("ingest", pg.url(), "--store", str(tmp_path / "s"), env={"PGPASSWORD": "wrong-one"})
    assert bad.returncode == 2 and "password" in bad.stderr and "wrong-one" not in bad.stderr
    (tmp_path / "bqx.toml").write_text(f'store = "{tmp_path / "r"}"\nsource = "{pg.url()}"\n'
                                       '[postgres]\ntable = "cli.fx_{pair}_m1"\n')
    res = bqx("run", "--stages", "rate_index", "--executor", "serial", "--pairs", "GBPUSD", cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    assert "GBPUSD 2024-07:" in res.stderr and "EURUSD 2024-07:" not in res.stderr  # only the pairs asked for are read
    assert (tmp_path / "r" / "rate_index" / "pair=GBPUSD" / "year_month=2024-07" / "data.parquet").is_file()
