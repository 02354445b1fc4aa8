"""The report's signal section: drawn in a real headless chromium from `bqx signal`'s files, and listed in `bqx report`."""

from __future__ import annotations

from pathlib import Path

from bqx.report import build_report, sec_signal
from bqx.report.context import load_context
from bqx.report.page import render
from bqx.signal import compute_signal
from bqx.signal.importance import permutation_importance
from tests.report.browser import Browser, chromium

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"  # ignored by git


def test_signal_section_draws_in_chromium(store_copy, tmp_path):
    chromium()
    empty = sec_signal.section(load_context(store_copy, lambda s: None))
    assert empty.charts == [] and "run `bqx signal`" in empty.notes[0]
    result = compute_signal(store_copy, families=["rate_index", "bqx"], workers=1, sample_rows=4000)
    permutation_importance(result, folds=2, workers=1)
    sec = sec_signal.section(load_context(store_copy, lambda s: None))
    assert sec.notes == [] and len(sec.charts) == 3  # heat map, IC per month, decay by horizon
    heat = sec.charts[0].figure["data"][0]
    assert heat["y"] == ["rate_index", "bqx"] and heat["x"] == result.targets
    decay = sec.charts[2].figure["data"]
    assert decay and all(t["x"] in ([15, 30, 45, 60, 75], [15, 30, 60]) for t in decay)  # targets; labels' series
    html = sec.blocks
    assert any("Permutation importance" in b.text for b in html if hasattr(b, "text"))
    out = tmp_path / "signal.html"
    out.write_text(render("bqx signal", "test", [sec]))
    browser = Browser()
    try:
        page = browser.load(out)
    finally:
        browser.close()
    assert page.errors == [] and page.requests == []
    assert page.state["drawn"]["signal"] == 3 and page.state["errors"] == "0"
    assert page.screenshot[:8] == b"\x89PNG\r\n\x1a\n" and len(page.screenshot) > 10_000
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "report-signal.png").write_bytes(page.screenshot)


def test_bqx_report_lists_the_signal_section(store_copy, tmp_path):
    compute_signal(store_copy, families=["rate_index"], workers=1)
    result = build_report(store_copy, tmp_path / "report.html")
    assert result.sections["signal"] == 3
    assert 'id="signal"' in (tmp_path / "report.html").read_text() or "id=signal" in (tmp_path / "report.html").read_text()
