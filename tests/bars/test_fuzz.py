"""Property: every reader, fed random bytes or damaged valid files, ends in bars or one InputError."""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bqx.bars.readers import read_source
from bqx.errors import InputError

from bars_fixtures import sample_text

VALID = {
    "histdata": ("DAT_ASCII_EURUSD_M1_2024.csv", "".join(
        f"20240701 00{m:02d}00;1.0710{m};1.0720{m};1.0700{m};1.0715{m};0\n" for m in range(6)), None),
    "dukascopy": ("EURUSD_Candlestick_1_M_BID_01.07.2024-31.07.2024.csv", "Gmt time,Open,High,Low,Close,Volume\n" + "".join(
        f"01.07.2024 00:{m:02d}:00.000,1.0710{m},1.0720{m},1.0700{m},1.0715{m},1{m}.5\n" for m in range(6)), None),
    "metatrader": ("USDJPY.csv", "".join(
        f"2024.07.01,0{m // 2}:{(m % 2) * 30:02d},161.00{m},161.10{m},160.90{m},161.05{m},5{m}\n" for m in range(6)), "Europe/London"),
    "generic": ("EURUSD.csv", sample_text(6), None),
}
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def damage(data: bytes, draw_ops: list[tuple[str, int, int]]) -> bytes:
    lines = data.split(b"\n")
    for op, a, b in draw_ops:
        n = max(len(lines), 1)
        i, j = a % n, b % n
        if op == "truncate":
            flat = b"\n".join(lines)
            lines = flat[: a % (len(flat) + 1)].split(b"\n")
        elif op == "flip" and lines[i]:
            k = b % len(lines[i])
            lines[i] = lines[i][:k] + bytes([lines[i][k] ^ (1 << (a % 8))]) + lines[i][k + 1:]
        elif op == "duplicate":
            lines.insert(j, lines[i])
        elif op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "swap":
            lines[i], lines[j] = lines[j], lines[i]
    return b"\n".join(lines)


OPS = st.lists(st.tuples(st.sampled_from(["truncate", "flip", "duplicate", "delete", "swap"]),
                         st.integers(0, 10_000), st.integers(0, 10_000)), min_size=1, max_size=4)


def check(name: str, data: bytes, fmt: str | None, tz: str | None) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(data)
        for policy in ("strict", "repair"):
            try:
                res = read_source(path, fmt=fmt, tz=tz, policy=policy)
            except InputError as e:
                assert e.exit_code == 2 and e.rule and str(e)
                if policy == "repair":
                    assert e.rule in ("naive-timestamp", "mixed-basis"), str(e)
                continue
            assert res.bars.columns[0] == "pair"
            assert res.rows_in == res.rows_out + res.rows_merged + res.rows_quarantined + res.rows_skipped
            if policy == "strict":
                assert res.quarantine.height == 0
            if res.bars.height:
                assert res.bars["ts"].dtype == pl.Datetime("us", "UTC")
                assert res.bars["ts"].is_sorted()
                assert (res.bars["high"] >= res.bars["low"]).all()


def _fuzz(fmt: str):
    name, text, tz = VALID[fmt]

    @SETTINGS
    @given(ops=OPS, explicit=st.booleans())
    def damaged(ops, explicit):
        check(name, damage(text.encode(), ops), fmt if explicit else None, tz)

    @SETTINGS
    @given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode), explicit=st.booleans())
    def random_bytes(data, explicit):
        check(name, data, fmt if explicit else None, tz)

    return damaged, random_bytes


test_histdata_damaged, test_histdata_random = _fuzz("histdata")
test_dukascopy_damaged, test_dukascopy_random = _fuzz("dukascopy")
test_metatrader_damaged, test_metatrader_random = _fuzz("metatrader")
test_generic_damaged, test_generic_random = _fuzz("generic")


def test_valid_files_read_clean():
    for fmt, (name, text, tz) in VALID.items():
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / name).write_text(text)
            res = read_source(Path(d) / name, tz=tz)
            assert res.rows_out == 6 and res.quarantine.height == 0, fmt
