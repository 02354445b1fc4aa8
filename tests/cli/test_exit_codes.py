"""Exit codes that tell the truth: 1 when a task or check failed, 2 for usage, configuration and input errors,
130/143 on SIGINT/SIGTERM with "interrupted; rerun to resume", and the manifest marks what was running."""

from __future__ import annotations

import json
import signal
import textwrap
import time

import pytest

from tests.cli.conftest import PAIRS, bqx, one_line_error, start

BOOM = textwrap.dedent('''
    import polars as pl
    from bqx import Column, family

    @family(name="boom", stage="rate_index", inputs=("bars",), context=0,
            columns=lambda p: [Column("boom_x", "continuous", 0, "fails on purpose")])
    def boom(frame: pl.DataFrame, ctx) -> pl.DataFrame:
        """boom_x: never computed."""
        raise RuntimeError("boom on purpose")
''')


def _project(tmp_path):
    """A project folder holding bqx.toml and its plugin module, and another folder to run from."""
    proj = tmp_path / "project"
    proj.mkdir()
    (proj / "boom_features.py").write_text(BOOM)
    (proj / "bqx.toml").write_text('plugins = ["boom_features"]\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    return proj / "bqx.toml", elsewhere


def test_failed_task_exits_1_and_the_rerun_names_what_it_retries(tmp_path):
    config, elsewhere = _project(tmp_path)
    args = ["run", "--config", str(config), "--store", str(tmp_path / "st"), "--pairs", "EURUSD", "--start", "2024-07",
            "--end", "2024-07", "--stages", "rate_index", "--executor", "process", "--workers", "1"]
    # the plugin module is found beside bqx.toml (not on PYTHONPATH, not in the working directory), by the driver
    # and by the spawned worker, which runs it: the task fails with the family's own error
    res = bqx(*args, cwd=elsewhere)
    assert res.returncode == 1, res.stderr
    assert "boom on purpose" in res.stderr and "1 failed" in res.stderr
    rows = {r["name"]: r for r in json.loads(bqx("status", "--store", str(tmp_path / "st"), "--json").stdout)}
    assert rows["rate_index"]["status"] == "failed"
    again = bqx(*args, cwd=elsewhere)
    assert again.returncode == 1
    retried = [ln for ln in again.stderr.splitlines() if ln.startswith("retrying ")]
    assert len(retried) == 1 and retried[0].startswith("retrying rate_index EURUSD 2024-07 (last time: ")
    assert "RuntimeError: boom on purpose" in retried[0]
    as_json = bqx(*args, "--json", cwd=elsewhere)
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["ok"] is False


def _wait_for(proc, text: str, limit: float = 240) -> list[str]:
    """Read the process's stderr until a line holds `text`; returns the lines read."""
    seen = []
    deadline = time.time() + limit
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"never saw {text!r}: {''.join(seen)}")


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_run_exits_128_plus_signal_status_shows_it_and_a_rerun_resumes(tmp_path, sig, code):
    store = str(tmp_path / "st")
    args = ["run", "--store", store, "--pairs", PAIRS, "--start", "2024-07", "--end", "2024-08", "--stages", "bqx",
            "--workers", "2"]
    proc = start(*args)
    _wait_for(proc, "tasks to run")
    time.sleep(1.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == code, err
    assert err.rstrip().splitlines()[-1] == "interrupted; rerun to resume"
    rows = {r["name"]: r for r in json.loads(bqx("status", "--store", store, "--json").stdout)}
    stopped = [r for r in rows.values() if r["status"] == "interrupted"]
    assert stopped and all(f["error"].startswith("interrupted") for r in stopped for f in r["failures"])
    assert not [r for r in rows.values() if r["status"] == "running"]
    if sig == signal.SIGINT:
        return
    rerun = bqx(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert "retrying " in rerun.stderr and "(last time: interrupted" in rerun.stderr
    rows = {r["name"]: r for r in json.loads(bqx("status", "--store", store, "--json").stdout)}
    assert rows["bqx"]["status"] == rows["rate_index"]["status"] == "done" and rows["bqx"]["done"] == 4


def test_a_killed_run_shows_as_interrupted_not_running(tmp_path):
    store = str(tmp_path / "st")
    res = bqx("run", "--store", store, "--pairs", "EURUSD", "--start", "2024-07", "--end", "2024-07", "--stages", "bqx",
              "--executor", "serial", env={"BQX_TEST_KILL_AFTER_TASKS": "1"})
    assert res.returncode == -signal.SIGKILL
    rows = {r["name"]: r for r in json.loads(bqx("status", "--store", store, "--json").stdout)}
    assert rows["rate_index"]["status"] == "done" and rows["bqx"]["status"] == "interrupted"


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_sample_exits_128_plus_signal(tmp_path, sig, code):
    proc = start("sample", "--out", str(tmp_path / "bars"), "--months", "24")
    deadline = time.time() + 120
    while not (tmp_path / "bars").exists() and time.time() < deadline:  # the command is under way
        time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "interrupted; rerun to resume" in err


def test_interrupted_validate_exits_143(small_store):
    proc = start("validate", "--store", str(small_store))
    _wait_for(proc, "waiting for")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "interrupted; rerun to resume" in err


def _non_utf8(tmp_path):
    (tmp_path / "bqx.toml").write_bytes(b'store = "caf\xe9"\n')
    return ["config", "show"]


FAILURES = {  # command -> (arguments, expected exit code, text the one-line error holds)
    "ingest": (lambda t, s: ["ingest", str(t / "nothing-here.csv"), "--store", str(t / "st")], 2, "nothing-here.csv"),
    "validate": (lambda t, s: ["validate", "--store", str(t / "missing")], 2, "does not exist"),
    "export": (lambda t, s: ["export", "--store", str(s), "--to", str(t / "x"), "--families", "nosuch",
                             "--no-validate"], 2, "unknown family 'nosuch'"),
    "status": (lambda t, s: ["status", "--store", str(t / "missing")], 2, "no store"),
    "plan": (lambda t, s: ["plan", "--store", str(s), "--start", "2024-13"], 2, "month 13 does not exist"),
    "features": (lambda t, s: ["features", "--family", "nosuch"], 2, "unknown family 'nosuch'"),
    "sample": (lambda t, s: ["sample", "--out", str(t / "b"), "--start", "2024-13"], 2, "--start '2024-13'"),
    "live": (lambda t, s: ["live", "--store", str(s), "--source", "postgresql://u@localhost/db?password=x"], 2,
             "carries a password"),
    "report": (lambda t, s: ["report", "--store", str(t / "missing"), "--out", str(t / "r.html")], 2, "missing"),
    "config show": (lambda t, s: _non_utf8(t), 2, "not UTF-8"),
}


@pytest.mark.parametrize("command", sorted(FAILURES))
def test_every_command_fails_with_a_code_and_one_line(command, tmp_path, small_store):
    make, code, text = FAILURES[command]
    res = bqx(*make(tmp_path, small_store), cwd=tmp_path)
    assert res.returncode == code, res.stderr
    assert text in one_line_error(res)


@pytest.mark.parametrize("command, first_line", [
    (lambda s, t: ["export", "--store", str(s), "--to", str(t / "x"), "--no-validate"], "reading bar timestamps"),
    (lambda s, t: ["report", "--store", str(s), "--out", str(t / "r.html")], "[1/"),
])
def test_interrupted_export_and_report_exit_143(small_store, tmp_path, command, first_line):
    proc = start(*command(small_store, tmp_path))
    _wait_for(proc, first_line)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.rstrip().splitlines()[-1] == "interrupted; rerun to resume"


PEEK = textwrap.dedent('''
    import polars as pl
    from bqx import Column, family

    @family(name="peek", stage="rate_index", inputs=("bars",), context=0,
            columns=lambda p: [Column("peek_next", "continuous", 0, "the next bar's close: reads the future")])
    def peek(frame: pl.DataFrame, ctx) -> pl.DataFrame:
        """peek_next = close of the next bar (a leak on purpose)."""
        return frame.select(pl.col("close").shift(-1).fill_null(pl.col("close")).alias("peek_next"))
''')


def test_run_validate_with_a_failed_validation_exits_1(tmp_path):
    (tmp_path / "peek_features.py").write_text(PEEK)
    (tmp_path / "bqx.toml").write_text('plugins = ["peek_features"]\n')
    res = bqx("run", "--store", str(tmp_path / "st"), "--pairs", "EURUSD", "--start", "2024-07", "--end", "2024-07",
              "--stages", "rate_index", "--executor", "serial", "--validate", cwd=tmp_path,
              env={"BQX_VALIDATE__SAMPLES": "2"})
    assert res.returncode == 1, res.stderr
    assert "peek: leak" in one_line_error(res)


def test_interrupted_ingest_exits_130_and_the_rerun_completes(tmp_path):
    """Ctrl-C during `bqx ingest`: exit 130 with the one line; the rerun ingests every file (exit 0)."""
    bars = tmp_path / "bars"
    res = bqx("sample", "--out", str(bars), "--format", "csv", "--months", "2")
    assert res.returncode == 0, res.stderr
    store = tmp_path / "st"
    proc = start("ingest", str(bars), "--store", str(store))
    deadline = time.time() + 120
    while not store.exists() and proc.poll() is None and time.time() < deadline:  # the ingest is under way
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted; rerun to resume" in err
    res = bqx("ingest", str(bars), "--store", str(store), "--json")
    assert res.returncode == 0, res.stderr
    assert len(list((store / "bars").glob("pair=*/year_month=*/data.parquet"))) == 28 * 2
