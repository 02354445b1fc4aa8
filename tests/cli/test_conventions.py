"""What users expect of a CLI: --version, flags shown and parsed as flags, --json everywhere results are printed,
plugins found as the README says, and messages naming the files written."""

from __future__ import annotations

import json
import re

import pytest

from bqx import __version__
from tests.cli.conftest import bqx

COMMANDS = ["run", "plan", "status", "features", "sample", "ingest", "validate", "export", "report", "live",
            "config show"]


def test_version():
    res = bqx("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"bqx {__version__}"


@pytest.mark.parametrize("command", COMMANDS)
def test_flags_are_shown_as_flags_and_json_is_offered(command):
    res = bqx(*command.split(), "--help")
    assert res.returncode == 0, res.stderr
    assert "<bool>" not in res.stdout, "a flag is shown as taking a value"
    assert re.search(r"--json\s", res.stdout), f"{command} has no --json"


def test_a_value_after_a_flag_is_refused_with_a_hint():
    res = bqx("features", "--json", "true")
    assert res.returncode == 2
    assert "--json is a flag and takes no value" in res.stderr


def test_sample_json_lists_the_files(tmp_path):
    res = bqx("sample", "--out", str(tmp_path / "b"), "--pairs", "EURUSD", "--months", "1", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["files"] == [str(tmp_path / "b" / "EURUSD.parquet")] and data["start"] == "2024-07"


def test_validate_of_some_families_names_partial_json(small_store):
    res = bqx("validate", "--store", str(small_store), "--families", "rate_index", "--cuts", "0")
    assert res.returncode == 0, res.stderr
    partial = small_store / "validation" / "partial.json"
    assert partial.is_file()
    assert f"report saved to {partial}" in res.stderr and "latest.json" not in res.stderr.replace(
        "latest.json keeps the latest complete one", "")
