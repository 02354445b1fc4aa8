"""`bqx report` in a real headless chromium: no console error, no network, every section draws a chart."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bqx.report import build_report
from tests.report.browser import Browser, chromium

SECTIONS = ("run", "coverage", "strength", "triangles", "validation", "features", "export")


@pytest.fixture(scope="module")
def browser():
    chromium()
    b = Browser()
    yield b
    b.close()


def _open(browser: Browser, store: Path, out: Path, artifacts: Path, name: str):
    result = build_report(store, out)
    loaded = browser.load(out)
    shot = artifacts / f"{name}.png"
    shot.write_bytes(loaded.screenshot)
    print(f"\nscreenshot: {shot}; {result.bytes / 1e6:.1f} MB built in {result.seconds:.1f} s, "
          f"drawn in {loaded.seconds:.1f} s")
    assert loaded.screenshot[:8] == b"\x89PNG\r\n\x1a\n" and len(loaded.screenshot) > 10_000
    return result, loaded


def test_full_report_draws_every_section(browser, store, tmp_path, artifacts):
    result, page = _open(browser, store, tmp_path / "report.html", artifacts, "report-4-pairs")
    assert page.errors == [], page.errors
    assert page.requests == [], "the page must not fetch anything"
    assert page.state["errors"] == "0"
    for sec in SECTIONS:
        if sec != "strength":  # 4 pairs define no strength index: a note, no empty chart
            assert page.state["drawn"][sec] >= 1, f"section {sec} drew no chart: {page.state}"
    assert page.state["drawn"]["strength"] == 0
    # every chart outside the family selector is drawn, plus the first family's charts
    eager = sum(n for s, n in result.sections.items() if s != "features")
    assert int(page.state["rendered"]) == eager + page.state["drawn"]["features"]
    assert page.state["svgs"] >= int(page.state["rendered"])  # plotly put an SVG into each drawn chart
    assert result.bytes < 20e6
    notes = page.state["notes"]
    assert any("24 of the 28 pairs are missing" in n for n in notes["coverage"])
    assert any("Undefined throughout" in n for n in notes["strength"])
    assert any("No currency-strength index is defined" in n for n in notes["strength"])
    assert any("55 of 56 triangles are never evaluated" in n for n in notes["triangles"])
    assert notes["export"] == []  # the export beside the store was found and shown
    assert not any(n.startswith("FAILED") for n in notes["validation"])
    # drawn, not only written: the coverage heat maps have one row per pair of the store, the strength
    # chart no line without a value, and the export paragraph shows purge, embargo and the common range
    rows = browser.evaluate("Array.from(document.querySelectorAll('#coverage .chart')).filter(d => d.data && "
                            "d.data[0].type === 'heatmap').map(d => d.data[0].y.length)")
    assert rows == [4, 4], rows
    empty_lines = browser.evaluate("Array.from(document.querySelectorAll('#strength .chart')).flatMap(d => "
                                   "(d.data || []).filter(t => t.type === 'scatter' && t.y.every(v => v === null)))"
                                   ".length")
    assert empty_lines == 0
    text = browser.evaluate("document.getElementById('export').innerText")
    assert "purge 75 bars, embargo 60 bars, common range 2024-07-" in text, text[:400]
    splits = browser.evaluate("Array.from(document.querySelectorAll('#export .chart')).filter(d => d.layout && "
                              "d.layout.title.text.startsWith('Split boundaries')).map(d => d.data.length)")
    assert splits == [3]


def test_choosing_another_family_draws_it(browser, store, tmp_path):
    out = tmp_path / "report.html"
    build_report(store, out)
    page = browser.load(out)
    before = page.state["drawn"]["features"]
    drawn = browser.evaluate("""(() => {
      const s = document.querySelector('#features select.groups');
      s.value = 'regression'; s.dispatchEvent(new Event('change'));
      return new Promise(r => setTimeout(() => r(Number(document.getElementById('features').dataset.drawn)), 3000));
    })()""")
    assert drawn >= before + 2  # the small multiple and the heat map of regression
    shown = browser.evaluate("Array.from(document.querySelectorAll('#features .group')).filter("
                             "g => g.style.display !== 'none').map(g => g.dataset.group)")
    assert shown == ["regression"]


def test_failed_validation_and_no_export(browser, failed_store, tmp_path, artifacts):
    result, page = _open(browser, failed_store, tmp_path / "report.html", artifacts, "report-failed-validation")
    assert page.errors == [] and page.requests == []
    for sec in ("run", "coverage", "triangles", "validation", "features"):
        assert page.state["drawn"][sec] >= 1, sec
    notes = page.state["notes"]
    assert any(n.startswith("FAILED") and "peek (leak)" in n for n in notes["validation"]), notes["validation"]
    assert any("No export found" in n for n in notes["export"])
    assert page.state["drawn"]["export"] == 0
    html = (tmp_path / "report.html").read_text()
    assert "peek_x" in html  # the first offending value names the column


def test_store_without_runs_reports_notes(browser, tmp_path, sample):
    from bqx.store.layout import write_bars

    root = tmp_path / "bars-only"
    write_bars(root, sample(("EURUSD",), "2024-07", 1), source="sample")
    result, page = _open(browser, root, tmp_path / "report.html", tmp_path, "bars-only")
    assert page.errors == []
    assert page.state["drawn"]["coverage"] >= 1
    notes = result.notes
    assert any("no finished task" in n for n in notes["run"])
    assert any("no validation yet" in n for n in notes["validation"])
    assert any("No currency-strength table" in n for n in notes["strength"])
    assert any("No feature is stored" in n for n in notes["features"])


def test_cli_writes_the_page(store, tmp_path):
    from typer.testing import CliRunner

    from bqx.cli.app import app

    out = tmp_path / "cli.html"
    res = CliRunner().invoke(app, ["report", "--store", str(store), "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["path"] == str(out) and out.stat().st_size == data["bytes"]
    assert set(data["sections"]) == set(SECTIONS) | {"signal"}  # signal: a note when the store has no signal table
    text = out.read_text()
    assert re.search(r"<(script|link|img|iframe)\b[^>]*\b(src|href)=", text) is None  # everything inlined
