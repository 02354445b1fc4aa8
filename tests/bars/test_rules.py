"""One case per validation rule, under both policies: strict names the place, repair quarantines it."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl
import pytest

from bqx.bars.readers import read_source
from bqx.bars.rules import QUARANTINE_SCHEMA, RULES
from bqx.errors import InputError

from bars_fixtures import SAMPLE_HEADER, sample_text

# Sample rows: header = line 1, minute i on line i + 2; minute 2 (line 4) has mid 1.102:
# open 1.102, high 1.1025, low 1.1015, close 1.1021; bid = mid - 0.0001, ask = mid + 0.0001.
BASE = sample_text(5)
COLS = SAMPLE_HEADER.split(",")


def edit(text: str, line: int, column: str, value: str) -> str:
    lines = text.split("\n")
    fields = lines[line - 1].split(",")
    fields[COLS.index(column)] = value
    lines[line - 1] = ",".join(fields)
    return "\n".join(lines)


def replace_line(text: str, line: int, new: str) -> str:
    lines = text.split("\n")
    lines[line - 1] = new
    return "\n".join(lines)


def line_of(text: str, line: int) -> str:
    return text.split("\n")[line - 1]


MT = "2024.03.31,00:59,1.1,1.2,1.0,1.1,1\n2024.03.31,01:30,1.1,1.2,1.0,1.1,1\n2024.03.31,02:30,1.1,1.2,1.0,1.1,1\n"
MT_AMBIG = "2024.10.27,00:30,1.1,1.2,1.0,1.1,1\n2024.10.27,01:30,1.1,1.2,1.0,1.1,1\n2024.10.27,02:30,1.1,1.2,1.0,1.1,1\n"
DUKA = "Gmt time,Open,High,Low,Close,Volume\n01.07.2024 00:00:00.000,1.1,1.2,1.0,1.1,1\n01.07.2024 00:01:00.000,1.1,1.2,1.0,1.1,1\n"
LONG = (SAMPLE_HEADER.replace("ts,", "pair,ts,", 1) + "\n"
        + "\n".join(("EURXXX," if i == 2 else "EURUSD,") + line_of(BASE, i + 2) for i in range(3)) + "\n")


@dataclass
class Case:
    rule: str
    files: dict[str, str]
    line: int | None  # strict: the line named
    column: str | None = None
    value: str | None = None
    file: str = "EURUSD.csv"
    kwargs: dict = field(default_factory=dict)
    quarantined: list[tuple[str, int | None]] | None = None  # repair: (file, line) records; None = same as strict
    rows_out: int | None = 4
    fatal: bool = False  # an error under repair too


CASES = [
    Case("unparseable", {"EURUSD.csv": replace_line(BASE, 4, "garbage;here")}, 4, None, "garbage;here"),
    Case("bad-timestamp", {"EURUSD.csv": edit(BASE, 4, "ts", "2024-13-45T00:00:00Z")}, 4, "ts", "2024-13-45T00:00:00Z"),
    Case("bad-number", {"EURUSD.csv": edit(BASE, 4, "open", "1.1o2")}, 4, "open", "1.1o2"),
    Case("non-finite-price", {"EURUSD.csv": edit(BASE, 4, "high", "nan")}, 4, "high", "NaN"),
    Case("non-positive-price", {"EURUSD.csv": edit(BASE, 4, "low", "0")}, 4, "low", "0.0"),
    Case("price-out-of-bounds", {"EURUSD.csv": edit(BASE, 4, "high", "1e308")}, 4, "high", "1e+308"),
    Case("price-out-of-bounds", {"EURUSD.csv": edit(BASE, 4, "bid_high", "2e6")}, 4, "bid_high", "2000000.0"),
    Case("high-below-low", {"EURUSD.csv": edit(BASE, 4, "high", "1.1010")}, 4, "high", "1.101"),
    Case("open-outside-range", {"EURUSD.csv": edit(BASE, 4, "open", "1.1030")}, 4, "open", "1.103"),
    Case("close-outside-range", {"EURUSD.csv": edit(BASE, 4, "close", "1.1000")}, 4, "close", "1.1"),
    Case("close-outside-range", {"EURUSD.csv": edit(BASE, 4, "bid_close", "1.2")}, 4, "bid_close", "1.2"),
    Case("bid-above-ask", {"EURUSD.csv": edit(BASE, 4, "ask_close", "1.1018")}, 4, "bid_close", "1.102"),
    Case("negative-volume", {"EURUSD.csv": edit(BASE, 4, "volume", "-1")}, 4, "volume", "-1.0"),
    Case("duplicate-identical", {"EURUSD.csv": replace_line(BASE, 5, line_of(BASE, 4))}, 5, "ts"),
    Case("duplicate-conflict", {"EURUSD.csv": replace_line(BASE, 5, edit(line_of(BASE, 4), 1, "volume", "99"))}, 4, "ts",
         quarantined=[("EURUSD.csv", 4), ("EURUSD.csv", 5)], rows_out=3),
    Case("unknown-pair", {"long.csv": LONG}, 4, "pair", "EURXXX", file="long.csv", rows_out=2),
    Case("naive-timestamp", {"EURUSD.csv": edit(BASE, 4, "ts", "2024-07-01T00:02:00")}, 4, "ts", "2024-07-01T00:02:00"),
    Case("naive-timestamp", {"EURUSD.csv": BASE.replace("Z,", ",")}, 2, "ts", file="EURUSD.csv", fatal=True),
    Case("nonexistent-local-time", {"EURUSD.csv": MT}, 2, "ts", "2024.03.31 01:30", kwargs={"tz": "Europe/London"}, rows_out=2),
    Case("ambiguous-local-time", {"EURUSD.csv": MT_AMBIG}, 2, "ts", "2024.10.27 01:30", kwargs={"tz": "Europe/London"}, rows_out=2),
    Case("empty-file", {"EURUSD.csv": ""}, None, quarantined=[("EURUSD.csv", None)], rows_out=0),
    Case("empty-file", {"EURUSD.csv": SAMPLE_HEADER + "\n\n"}, 1, rows_out=0),
    Case("wrong-format", {"EURUSD.csv": BASE}, 1, None, SAMPLE_HEADER, kwargs={"fmt": "histdata"}, rows_out=0),
    Case("missing-column", {"EURUSD.csv": BASE.replace(",close,", ",shut,", 1)}, 1, rows_out=0),
    Case("unknown-pair", {"SAMPLE.csv": BASE}, None, None, "SAMPLE.csv", file="SAMPLE.csv",
         quarantined=[("SAMPLE.csv", None)], rows_out=0),
    Case("pair-overlap", {"EURUSD.csv": BASE, "EURUSD_2.csv": sample_text(5, start=3)}, 2, "ts", file="EURUSD_2.csv",
         quarantined=[("EURUSD_2.csv", 2), ("EURUSD_2.csv", 3)], rows_out=8),
    Case("bid-ask-unmatched", {"EURUSD_BID.csv": DUKA, "EURUSD_ASK.csv": DUKA.replace("1.1,1.2,1.0,1.1", "1.2,1.3,1.1,1.2").rsplit("\n", 2)[0] + "\n"},
         3, "ts", file="EURUSD_BID.csv", rows_out=1),
    Case("bid-ask-unmatched", {"EURUSD_BID.csv": DUKA.rsplit("\n", 2)[0] + "\n", "EURUSD_ASK.csv": DUKA.replace("1.1,1.2,1.0,1.1", "1.2,1.3,1.1,1.2")},
         3, "ts", file="EURUSD_ASK.csv", rows_out=1),
    Case("bid-above-ask", {"EURUSD_BID.csv": DUKA, "EURUSD_ASK.csv": DUKA.replace("00:01:00.000,1.1,", "00:01:00.000,1.05,")},
         3, "ask_open", "1.05", file="EURUSD_ASK.csv", rows_out=1,
         quarantined=[("EURUSD_BID.csv", 3), ("EURUSD_ASK.csv", 3)]),
    Case("mixed-basis", {"EURUSD_BID.csv": DUKA, "EURUSD.csv": BASE}, None, fatal=True),
]


def _ids(case: Case) -> str:
    return case.rule


@pytest.mark.parametrize("case", CASES, ids=[f"{c.rule}-{i}" for i, c in enumerate(CASES)])
def test_strict_names_file_line_column_value_rule(case: Case, tmp_path):
    for name, text in case.files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(InputError) as err:
        read_source(tmp_path, policy="strict", **case.kwargs)
    e = err.value
    assert e.rule == case.rule and e.exit_code == 2
    if case.rule != "mixed-basis":
        assert e.file.endswith(case.file) and e.line == case.line
    if case.column is not None:
        assert e.column == case.column
    if case.value is not None:
        assert e.value == case.value
    assert case.rule in str(e) and "\n" not in str(e)


@pytest.mark.parametrize("case", CASES, ids=[f"{c.rule}-{i}" for i, c in enumerate(CASES)])
def test_repair_quarantines_with_reason_and_drops_nothing_silently(case: Case, tmp_path):
    for name, text in case.files.items():
        (tmp_path / name).write_text(text)
    if case.fatal:
        with pytest.raises(InputError) as err:
            read_source(tmp_path, policy="repair", **case.kwargs)
        assert err.value.rule == case.rule
        return
    res = read_source(tmp_path, policy="repair", **case.kwargs)
    q = res.quarantine
    assert q.schema == pl.Schema(QUARANTINE_SCHEMA)
    expected = case.quarantined or [(case.file, case.line)]
    got = sorted((f.split("/")[-1], ln) for f, ln in zip(q["file"], q["line"]))
    assert got == sorted(expected, key=lambda x: (x[0], x[1] or 0))
    assert set(q["rule"]) == {case.rule}
    assert q["detail"].str.starts_with(RULES[case.rule]).all()
    file_level = case.rows_out == 0 and case.rule in ("empty-file", "wrong-format", "missing-column", "unknown-pair")
    assert set(q["scope"]) == {"file" if file_level else "row"}
    if file_level:
        assert res.rejected_files and res.rows_in == 0
    for rec in q.iter_rows(named=True):  # raw is the physical line's text
        if not file_level:
            assert rec["raw"] == (tmp_path / rec["file"].split("/")[-1]).read_text().split("\n")[rec["line"] - 1]
    assert res.rows_out == case.rows_out
    assert res.rows_in == res.rows_out + res.rows_merged + res.rows_quarantined + res.rows_skipped
    assert res.counts() == {case.rule: q.height}


def test_out_of_order_strict_stops_repair_sorts(tmp_path):
    lines = BASE.split("\n")
    lines[3], lines[4] = lines[4], lines[3]  # minute 3 now on line 4, minute 2 on line 5
    (tmp_path / "EURUSD.csv").write_text("\n".join(lines))
    with pytest.raises(InputError) as err:
        read_source(tmp_path)
    assert (err.value.rule, err.value.line, err.value.value) == ("out-of-order", 5, "2024-07-01T00:02:00Z")
    res = read_source(tmp_path, policy="repair")
    assert res.fixes == {"out-of-order": 1} and res.quarantine.height == 0
    assert res.rows_out == 5 and res.bars["ts"].is_sorted()


def test_strict_reports_the_earliest_of_several_problems(tmp_path):
    text = edit(edit(BASE, 6, "high", "1.0"), 3, "volume", "-5")
    (tmp_path / "EURUSD.csv").write_text(text)
    with pytest.raises(InputError) as err:
        read_source(tmp_path)
    assert err.value.line == 3 and err.value.rule == "negative-volume"
    assert "first of 2 problems" in str(err.value)


def test_every_rule_is_described():
    rules_used = {c.rule for c in CASES} | {"out-of-order"}
    assert rules_used <= set(RULES)
