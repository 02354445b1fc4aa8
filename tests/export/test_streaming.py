"""The streaming export: one read per pair-month, threads that do not change a byte, checks from summaries."""

from __future__ import annotations

import json

import polars as pl

from bqx.export import export, source
from bqx.export.scaler import written_summary
from bqx.export.checks import run_checks
from bqx.export.writer import open_destination

SMALL = dict(families=["rate_index", "bqx", "lags"], embargo=100, no_validate=True)


def test_stream_equals_load_across_months(store):
    """Each month as the stream gives it (lags from the previous month's kept tail) equals `load`'s."""
    sel = source.select(store)
    for pair in sel.pairs:
        months = list(source.PairStream(sel, pair).months())
        assert [m for m, _ in months] == ["2024-07", "2024-08"]
        for month, frame in months:
            expected = source.read_month(sel, pair, month)
            assert frame.columns == expected.columns
            assert frame.equals(expected), (pair, month)
        lagged = months[1][1]["bqx_w15_return_lag240"]
        assert lagged.head(240).null_count() < 240, "the second month's lags reach into the first month"


def test_threads_do_not_change_the_export(store, tmp_path):
    one = export(store, str(tmp_path / "one"), workers=1, **SMALL)
    two = export(store, str(tmp_path / "two"), workers=2, **SMALL)
    assert one.ok and two.ok and one.rows == two.rows
    files = [json.loads((tmp_path / d / "metadata" / "files.json").read_text()) for d in ("one", "two")]
    assert [(f["path"], f["sha256"]) for f in files[0]] == [(f["path"], f["sha256"]) for f in files[1]]
    assert (tmp_path / "one" / "scalers" / "scaler.json").read_bytes() == \
        (tmp_path / "two" / "scalers" / "scaler.json").read_bytes()


def test_checks_from_written_summaries_can_fail(store, tmp_path):
    dest_path = tmp_path / "s"
    export(store, str(dest_path), **SMALL)
    dest = open_destination(str(dest_path))
    files = json.loads((dest_path / "metadata" / "files.json").read_text())
    scaler = json.loads((dest_path / "scalers" / "scaler.json").read_text())
    cols = sorted(c for c, p in scaler["columns"].items() if p["mean"] is not None)

    def summaries(shift: float = 0.0) -> dict:
        out = {}
        for f in files:
            frame = pl.read_parquet(dest_path / f["path"])
            s = written_summary(frame, cols if f["split"] == "train" else [])
            if shift and "moments" in s:
                s["moments"].mean = s["moments"].mean + shift
            out[f["path"]] = s
        return out

    assert all(c.passed for c in run_checks(dest, store=store, require_complete=False, written=summaries()))
    failed = {c.name for c in run_checks(dest, store=store, require_complete=False, written=summaries(1e-3))
              if c.passed is False}
    assert failed == {"scaler.reproducible"}
    good = summaries()
    victim = next(f for f in files if f["split"] == "validation")
    frame = pl.read_parquet(dest_path / victim["path"])
    frame.head(frame.height - 1).write_parquet(dest_path / victim["path"])
    failed = {c.name for c in run_checks(dest, store=store, require_complete=False, written=good) if c.passed is False}
    assert {"export.files", "rows.counts"} <= failed
