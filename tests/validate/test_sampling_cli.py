"""Sampling strata and seeds; the `bqx validate` command's output and exit codes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from bqx.cli.app import main
from bqx.validate.sampling import choose_partitions, choose_timestamps, rng_for
from tests.validate.conftest import user_family
from tests.validate.test_validate import next_bar


def _ts(minutes: list[int]) -> pl.Series:
    t0 = datetime(2024, 8, 1, tzinfo=timezone.utc)
    return pl.Series("ts", [t0 + timedelta(minutes=m) for m in minutes], pl.Datetime("us", "UTC"))


def test_timestamps_cover_the_strata():
    # bars at minutes 0..99, a 3-minute hole after 49 (short gap), a 2-day gap after 79 (longest)
    minutes = list(range(0, 50)) + list(range(53, 80)) + [m + 2880 for m in range(80, 100)]
    ts = _ts(minutes)
    picked = choose_timestamps(ts, 5, rng_for(0, "x"), data_end=ts[-1])
    why = {str(t): w for t, w in picked}
    assert why[str(ts[0])] == "first bar of month"
    assert why[str(ts[-1])] == "last bar of the data"
    assert why[str(ts[77])] == "after the longest gap"  # minute 80 + 2880
    assert len(picked) == 5
    assert choose_timestamps(ts, 5, rng_for(0, "x"), data_end=ts[-1]) == picked  # seeded
    assert why[str(ts[50])] == "after a short gap"  # minute 53, the only gap of 2-10 minutes
    assert list(why.values()).count("random bar") == 1  # 5 = first + last + longest gap + short gap + 1 random


def test_partitions_start_with_a_jpy_pair_and_cover_first_and_last_month():
    done = [(p, m) for p in ("EURUSD", "GBPNZD", "AUDCAD", "USDJPY") for m in ("2024-07", "2024-08", "2024-09")]
    parts = choose_partitions(done, 3, rng_for(0, "fam"))
    assert parts[0][0] == "USDJPY"
    assert len({p for p, _ in parts}) == 3
    assert {m for _, m in parts} >= {"2024-07", "2024-09"}
    assert choose_partitions([(None, "2024-07"), (None, "2024-08")], 1, rng_for(0, "f")) == [(None, "2024-08")]


def _cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code)


def test_cli_exit_codes_json_and_report(store, tmp_path, capsys):
    report = tmp_path / "out" / "report.json"
    assert _cli(["validate", "--store", str(store), "-f", "rate_index,time", "-n", "2", "--json",
                 "--report", str(report)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is True and data["exit_code"] == 0
    assert [f["family"] for f in data["families"]] == ["rate_index", "time"]
    assert json.loads(report.read_text())["fingerprint"] == data["fingerprint"]
    with user_family(store, "leak_next", next_bar, context=30):
        assert _cli(["validate", "--store", str(store), "-f", "leak_next", "-n", "3"]) == 1
    text = capsys.readouterr()
    assert "leak_next: leak (truncation: " in text.err.replace("\n", " ") and "leak_next_x" in text.err
    assert "FAIL" in text.out
    assert _cli(["validate", "--store", str(tmp_path / "none")]) == 2
    assert _cli(["validate", "--store", str(store), "-f", "nope"]) == 2
