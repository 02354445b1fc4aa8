"""The command line as a user meets it: help texts, exit codes, one small end-to-end run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

COMMANDS = {
    "run": ["--store", "--source", "--pairs", "--start", "--end", "--stages", "--workers", "--executor",
            "--dry-run", "--force", "--retry-failed", "--validate", "--config", "--json"],
    "plan": ["--store", "--pairs", "--start", "--end", "--stages", "--json"],
    "status": ["--store", "--json"],
    "features": ["--family", "--json", "--markdown"],
    "sample": ["--out", "--pairs", "--start", "--months", "--seed", "--format"],
    "ingest": ["--store", "--format", "--policy", "--tz", "--pairs", "--column-map", "--table", "--pair-column"],
    "live": ["--source", "--out", "--store", "--pairs", "--on-missing", "--wait", "--idle", "--append-to-store",
             "--flush-minutes", "--table", "--pair-column"],
    "report": ["--store", "--out", "--export", "--json"],
}


def bqx(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "bqx", *args], capture_output=True, text=True, cwd=cwd,
                          env=full_env, timeout=300)


def test_top_level_help_lists_every_command():
    res = bqx("--help")
    assert res.returncode == 0
    for cmd in [*COMMANDS, "config"]:
        assert re.search(rf"\b{cmd}\b", res.stdout), cmd


@pytest.mark.parametrize("cmd", sorted(COMMANDS))
def test_every_option_is_explained(cmd):
    res = bqx(cmd, "--help")
    assert res.returncode == 0, res.stderr
    for opt in COMMANDS[cmd]:
        line = next((ln for ln in res.stdout.splitlines()
                     if re.match(rf"^[\s│*]*(-\w, )?{re.escape(opt)}\b", ln)), None)
        assert line is not None, f"{cmd} --help lacks {opt}"
        assert len(line.split(opt, 1)[1].strip(" │")) > 3, f"{cmd} {opt} has no explanation"


def test_usage_errors_exit_2_with_one_message(tmp_path):
    res = bqx("run", "--store", str(tmp_path / "s"), "--pairs", "USDEUR", "--dry-run")
    assert res.returncode == 2
    assert "USDEUR" in res.stderr and "Traceback" not in res.stderr
    res = bqx("status", "--store", str(tmp_path / "missing"))
    assert res.returncode == 2 and "bqx run" in res.stderr
    res = bqx("run", "--bogus")
    assert res.returncode == 2


def test_features_json_is_the_catalog():
    res = bqx("features", "--json", "--family", "bqx")
    rows = json.loads(res.stdout)
    assert len(rows) == 37 and rows[0]["name"] == "bqx_w15_return" and rows[0]["warmup"] == 15


def test_run_status_and_rerun(tmp_path):
    store = str(tmp_path / "store")
    args = ["run", "--store", store, "--pairs", "EURUSD,USDJPY", "--start", "2024-07", "--end", "2024-07",
            "--stages", "targets", "--executor", "serial"]
    res = bqx(*args)
    assert res.returncode == 0, res.stderr
    assert "tasks done" in res.stderr
    status = json.loads(bqx("status", "--store", store, "--json").stdout)
    by_name = {r["name"]: r for r in status}
    for name in ("rate_index", "bqx", "extraction", "targets"):  # extraction: the labels' σ
        assert by_name[name]["status"] == "done" and by_name[name]["done"] == by_name[name]["total"] == 2
    again = bqx(*args, "--json")
    assert again.returncode == 0
    result = json.loads(again.stdout)
    assert result["to_run"] == 0 and result["skipped"] == 8 and result["done"] == []
    other = bqx("status", "--store", store, env={"BQX_SOMETHING": "1", "BQX_PY": "/usr/bin/python3"})
    assert other.returncode == 0, other.stderr
    assert "rate_index" in other.stdout and "done" in other.stdout
    warnings = [ln for ln in other.stderr.splitlines() if "BQX_" in ln]
    assert warnings == ["bqx: warning: ignoring BQX_PY, BQX_SOMETHING (not bqx settings)"], other.stderr


def test_misspelt_setting_in_the_environment_is_an_error(tmp_path):
    res = bqx("status", "--store", str(tmp_path / "missing"), env={"BQX_WORKRES": "2"})
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "BQX_WORKRES is not a setting; did you mean BQX_WORKERS?" in res.stderr


def test_verbose_anywhere_shows_traceback(tmp_path):
    res = bqx("status", "--store", str(tmp_path / "missing"), "--verbose")
    assert res.returncode == 2 and "Traceback" in res.stderr


def test_error_messages_are_printed_verbatim(monkeypatch, capsys):
    """Brackets in a message or hint (pip extras, paths, values) are text, not console markup."""
    from bqx.cli import app as app_module
    from bqx.errors import UsageError

    def boom(**_):
        raise UsageError("bqx report needs plotly", hint="pip install 'bqx[report]' (value [1.5])")

    monkeypatch.setattr(app_module, "app", boom)
    with pytest.raises(SystemExit) as exit_info:
        app_module.main(["report"])
    assert exit_info.value.code == 2
    assert "pip install 'bqx[report]' (value [1.5])" in capsys.readouterr().err
