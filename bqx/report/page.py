"""The page: sections of notes, tables and Plotly figures, assembled into one self-contained HTML file.

plotly.js is read from the installed `plotly` package and inlined; figures are plain JSON dicts drawn
by `Plotly.newPlot`. The page counts what it drew: `<body data-rendered=N data-errors=M data-ms=T>` once
every chart of the first view is drawn (T: milliseconds since navigation), and each section gets
`data-drawn` (charts drawn in it).
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from typing import Any, Sequence


@dataclass
class Chart:
    figure: dict[str, Any]
    group: str = ""  # charts of one group are drawn together; groups other than "" are drawn on demand


@dataclass
class Html:
    text: str
    group: str = ""


@dataclass
class Section:
    id: str
    title: str
    notes: list[str] = field(default_factory=list)  # plain text, shown as notes (missing data, failures)
    blocks: list[Chart | Html] = field(default_factory=list)  # charts and HTML fragments, in order
    groups: list[str] = field(default_factory=list)  # selectable chart groups (features: families)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def add(self, block: Chart | str, group: str = "") -> None:
        self.blocks.append(Html(block, group) if isinstance(block, str) else block)

    @property
    def charts(self) -> list[Chart]:
        return [b for b in self.blocks if isinstance(b, Chart)]


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, caption: str = "") -> str:
    """An HTML table; cells are escaped, floats shown with 6 significant digits."""
    def cell(v: Any) -> str:
        if v is None:
            return "<td class=null>NULL</td>"
        if isinstance(v, float):
            return f"<td>{v:.6g}</td>"
        return f"<td>{html.escape(str(v))}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(cell(v) for v in r) + "</tr>" for r in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<div class=tablewrap><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and inf become null, numpy scalars plain numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "tolist"):
        return _clean(value.tolist())
    return value


def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


_CSS = """
body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3b57;color:#fff;padding:12px 24px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;font-size:13px;opacity:.85}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:6px 24px;z-index:10}
nav a{margin-right:16px;color:#1f3b57;text-decoration:none;font-size:14px}
section{background:#fff;margin:16px 24px;padding:8px 20px 16px;border:1px solid #e3e3e3;border-radius:6px}
h2{font-size:19px;margin:8px 0}.note{background:#fff6d6;border-left:4px solid #e0a800;padding:6px 10px;margin:6px 0;font-size:14px}
.note.bad{background:#fde2e1;border-color:#c62828}.chart{width:100%;min-height:120px}
.tablewrap{max-height:360px;overflow:auto;margin:8px 0}
table{border-collapse:collapse;font-size:12px}th,td{border:1px solid #ddd;padding:2px 6px;text-align:right}
th{background:#f0f3f6;position:sticky;top:0}td:first-child,th:first-child{text-align:left}
td.null{color:#999}caption{text-align:left;font-weight:600;padding:4px 0}select{font-size:14px;margin:6px 0}
"""

_JS = """
const FIGS = JSON.parse(document.getElementById('figs').textContent);
let errors = 0;
window.addEventListener('error', () => { errors += 1; document.body.dataset.errors = errors; });
function drawGroup(sec, group) {
  const divs = Array.from(document.querySelectorAll(`#${sec} .chart[data-group="${group}"]`));
  return Promise.all(divs.map(div => {
    if (div.dataset.drawn) return Promise.resolve(0);
    const f = FIGS[div.id];
    return Plotly.newPlot(div, f.data, f.layout, {displaylogo: false, responsive: true}).then(() => {
      div.dataset.drawn = '1';
      const s = document.getElementById(sec);
      s.dataset.drawn = String(Number(s.dataset.drawn || 0) + 1);
      return 1;
    });
  }));
}
function showGroup(sec, group) {
  document.querySelectorAll(`#${sec} .group`).forEach(g => { g.style.display = g.dataset.group === group ? '' : 'none'; });
  return drawGroup(sec, group);
}
const first = [];
document.querySelectorAll('section').forEach(s => {
  first.push(drawGroup(s.id, ''));
  const sel = s.querySelector('select.groups');
  if (sel) { first.push(showGroup(s.id, sel.value)); sel.addEventListener('change', () => showGroup(s.id, sel.value)); }
});
Promise.all(first).then(() => {
  document.body.dataset.rendered = String(document.querySelectorAll('.chart[data-drawn]').length);
  document.body.dataset.errors = String(errors);
  document.body.dataset.ms = String(Math.round(performance.now()));
}).catch(e => { errors += 1; document.body.dataset.errors = String(errors); console.error(e); });
"""


def render(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The whole page as one HTML string."""
    figs: dict[str, Any] = {}
    parts = []
    for sec in sections:
        out = [f'<section id="{sec.id}"><h2>{html.escape(sec.title)}</h2>']
        for n in sec.notes:
            cls = "note bad" if n.startswith("FAILED") else "note"
            out.append(f'<div class="{cls}">{html.escape(n)}</div>')
        if sec.groups:
            opts = "".join(f"<option>{html.escape(g)}</option>" for g in sec.groups)
            out.append(f'<label>family <select class="groups">{opts}</select></label>')
        current = ""
        for block in sec.blocks:
            group = block.group
            if group != current:
                if current:
                    out.append("</div>")
                if group:
                    out.append(f'<div class="group" data-group="{html.escape(group)}">')
                current = group
            if isinstance(block, Chart):
                cid = f"c{len(figs)}"
                figs[cid] = _clean(block.figure)
                h = block.figure.get("layout", {}).get("height", 420)
                out.append(f'<div class="chart" id="{cid}" data-group="{html.escape(block.group)}" style="height:{h}px"></div>')
            else:
                out.append(block.text)
        if current:
            out.append("</div>")
        out.append("</section>")
        parts.append("".join(out))
    nav = "".join(f'<a href="#{s.id}">{html.escape(s.title)}</a>' for s in sections)
    data = json.dumps(figs, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style>"
        f"<script>{plotly_js()}</script></head><body>"
        f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header><nav>{nav}</nav>"
        + "".join(parts)
        + f'<script type="application/json" id="figs">{data}</script><script>{_JS}</script></body></html>'
    )
