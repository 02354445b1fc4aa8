"""Validation: per family the checks, samples, verdicts and the first offending value (from validation/latest.json)."""

from __future__ import annotations

from bqx.report import figures
from bqx.report.context import Context
from bqx.report.page import Chart, Section, table
from bqx.validate.report import CHECKS

STATUS = {"pass": 0, "skip": 1, "fail": 2, "error": 3}
SCALE = [[0.0, "#4caf50"], [0.25, "#4caf50"], [0.25, "#bdbdbd"], [0.5, "#bdbdbd"], [0.5, "#e53935"], [0.75, "#e53935"],
         [0.75, "#8e24aa"], [1.0, "#8e24aa"]]


def section(ctx: Context) -> Section:
    from bqx.validate import latest_validation

    sec = Section("validation", "Validation")
    rep = latest_validation(ctx.root)
    if rep is None:
        sec.note("The store has no validation yet: run `bqx validate` to check that no feature reads the future.")
        return sec
    fams = rep.get("families", [])
    bad = [f for f in fams if f.get("verdict") not in ("pass", "exempt", "not stored")]
    if not rep.get("passed"):
        sec.note(f"FAILED: the latest validation ({rep.get('started_at')}) failed for {len(bad)} of {len(fams)} families: "
                 + ", ".join(f"{f['family']} ({f['verdict']})" for f in bad) + ".")
    else:
        sec.add(f"<p>Validation passed ({rep.get('started_at')}, {rep.get('seconds', 0):.1f} s): {rep.get('coverage', '')}</p>")
    if rep.get("current") is False:
        sec.note("The store changed since this validation: run `bqx validate` again.")
    if rep.get("complete") is False:
        sec.note("This validation checked only some families.")
    names = [f["family"] for f in fams]
    z, text = [], []
    for f in fams:
        zr, tr = [], []
        for c in CHECKS:
            ch = f.get("checks", {}).get(c)
            if ch is None:
                zr.append(None)
                tr.append("")
                continue
            zr.append(STATUS.get(ch["status"], 3))
            tr.append(ch["status"] if c == "static" else f"{ch['status']} {ch['mismatches']}/{ch['compared']}")
        z.append(zr)
        text.append(tr)
    fig = figures.heatmap(z, list(CHECKS), names, "Checks per family (green pass, grey skip, red fail, purple error; "
                          "mismatches/compared)", colorscale=SCALE, zmin=0, zmax=3, text=text)
    fig["data"][0]["showscale"] = False
    sec.add(Chart(fig))
    rows = []
    for f in fams:
        first = ""
        for c in CHECKS:
            ch = f.get("checks", {}).get(c)
            if ch and ch.get("failures"):
                fl = ch["failures"][0]
                first = (f"{c}: {fl.get('column') or ''} {fl.get('pair') or ''} {fl.get('ts') or ''} stored={fl.get('stored')} "
                         f"recomputed={fl.get('recomputed')} {fl.get('detail') or ''}").strip()
                break
        samples = sum((f.get("checks", {}).get(c) or {}).get("samples", 0) for c in CHECKS)
        compared = sum((f.get("checks", {}).get(c) or {}).get("compared", 0) for c in CHECKS)
        rows.append([f["family"], f.get("verdict"), samples, compared, ", ".join(f.get("partitions", [])[:4]), first])
    sec.add(table(["family", "verdict", "samples", "values compared", "partitions", "first offending value"], rows))
    return sec
