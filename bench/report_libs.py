"""Compare Plotly, Altair/Vega-Lite and Bokeh for `bqx report`: build time and size of one representative page.

    .venv/bin/pip install plotly==7.1.0 altair==6.3.0 vl-convert-python==1.9.0.post1 bokeh==3.9.0
    .venv/bin/python bench/report_libs.py --out /tmp/report-libs

The page has the shape of a full-year report (synthetic data): a task timeline (4,000 tasks over
14 stages), a coverage heat map (28 x 12), 8 strength series of 4,000 points, an 8 x 8 correlation
matrix, 56 residual histograms, 5 worst-residual series, opportunities per month, and per family
small multiples of histograms (460 columns in 17 families) with one correlation heat map each.
Every library inlines its JavaScript (no CDN). With chromium present, also the time to load and
draw the page headless (wall time of one `--screenshot` run, chromium start-up included).
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import numpy as np

FAMILIES = [180, 45, 37, 25, 23, 21, 20, 20, 20, 15, 15, 10, 8, 8, 5, 5, 4]  # columns per family (lags omitted)
BINS = 30


def data(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n = 4000
    t = np.arange(n, dtype=float)
    stages = [f"stage{i}" for i in range(14)]
    tasks = [(stages[i % 14], float(rng.uniform(0, 3000)), float(rng.uniform(0.5, 8))) for i in range(4000)]
    fams = []
    for k, ncol in enumerate(FAMILIES):
        x = rng.standard_normal((2000, ncol)).cumsum(axis=0)
        hists = [np.histogram(x[:, j], BINS) for j in range(ncol)]
        fams.append({"name": f"family{k}", "cols": [f"f{k}_c{j}" for j in range(ncol)],
                     "hists": [(c.tolist(), e.tolist()) for c, e in hists], "corr": np.corrcoef(x.T).round(3).tolist()})
    return {
        "t": t, "tasks": tasks, "coverage": rng.integers(0, 31000, (28, 12)).tolist(),
        "strength": rng.standard_normal((8, n)).cumsum(axis=1).round(4), "ccorr": np.corrcoef(rng.standard_normal((8, 500))).round(3).tolist(),
        "resid": [np.histogram(rng.standard_normal(5000), 60) for _ in range(56)],
        "worst": rng.standard_normal((5, n)).round(4), "opp": rng.integers(0, 500, (12, 28)).tolist(), "fams": fams,
    }


def build_plotly(d: dict) -> str:
    import plotly.graph_objects as go
    import plotly.io as pio
    from plotly.subplots import make_subplots

    figs = []
    fig = go.Figure()
    for s in sorted({s for s, _, _ in d["tasks"]}):
        xs, ys = [], []
        for st, a, dur in d["tasks"]:
            if st == s:
                xs += [a, a + dur, None]
                ys += [s, s, None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"width": 8}, name=s))
    figs.append(fig)
    figs.append(go.Figure(go.Heatmap(z=d["coverage"])))
    figs.append(go.Figure([go.Scatter(x=d["t"], y=y, name=f"C{i}") for i, y in enumerate(d["strength"])]))
    figs.append(go.Figure(go.Heatmap(z=d["ccorr"])))
    figs.append(go.Figure([go.Bar(x=e[:-1], y=c, name=f"T{i}") for i, (c, e) in enumerate(d["resid"])]))
    figs.append(go.Figure([go.Scatter(x=d["t"], y=y) for y in d["worst"]]))
    figs.append(go.Figure(go.Heatmap(z=d["opp"])))
    for f in d["fams"]:
        ncol = len(f["cols"])
        cols = 8
        rows = -(-ncol // cols)
        sub = make_subplots(rows=rows, cols=cols, subplot_titles=f["cols"])
        for j, (c, e) in enumerate(f["hists"]):
            sub.add_trace(go.Bar(x=e[:-1], y=c, showlegend=False), row=j // cols + 1, col=j % cols + 1)
        sub.update_layout(height=120 * rows)
        figs.append(sub)
        figs.append(go.Figure(go.Heatmap(z=f["corr"], x=f["cols"], y=f["cols"])))
    parts = [pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0)) for i, fig in enumerate(figs)]
    return "<html><body>" + "".join(parts) + "</body></html>"


def build_altair(d: dict) -> str:
    import altair as alt
    import pandas as pd

    alt.data_transformers.disable_max_rows()
    charts = []
    tasks = pd.DataFrame(d["tasks"], columns=["stage", "start", "dur"]).assign(end=lambda f: f.start + f.dur)
    charts.append(alt.Chart(tasks).mark_bar().encode(x="start", x2="end", y="stage"))
    cov = pd.DataFrame([(p, m, v) for p, row in enumerate(d["coverage"]) for m, v in enumerate(row)], columns=["p", "m", "v"])
    charts.append(alt.Chart(cov).mark_rect().encode(x="m:O", y="p:O", color="v"))
    s = pd.DataFrame([(t, i, v) for i, row in enumerate(d["strength"]) for t, v in zip(d["t"], row)], columns=["t", "c", "v"])
    charts.append(alt.Chart(s).mark_line().encode(x="t", y="v", color="c:N"))
    cc = pd.DataFrame([(i, j, v) for i, row in enumerate(d["ccorr"]) for j, v in enumerate(row)], columns=["i", "j", "v"])
    charts.append(alt.Chart(cc).mark_rect().encode(x="i:O", y="j:O", color="v"))
    r = pd.DataFrame([(k, e, c) for k, (cs, es) in enumerate(d["resid"]) for c, e in zip(cs, es)], columns=["k", "e", "c"])
    charts.append(alt.Chart(r).mark_bar().encode(x="e", y="c", facet=alt.Facet("k:N", columns=8)).properties(width=80, height=60))
    w = pd.DataFrame([(t, i, v) for i, row in enumerate(d["worst"]) for t, v in zip(d["t"], row)], columns=["t", "c", "v"])
    charts.append(alt.Chart(w).mark_line().encode(x="t", y="v", color="c:N"))
    o = pd.DataFrame([(m, p, v) for m, row in enumerate(d["opp"]) for p, v in enumerate(row)], columns=["m", "p", "v"])
    charts.append(alt.Chart(o).mark_rect().encode(x="m:O", y="p:O", color="v"))
    for f in d["fams"]:
        h = pd.DataFrame([(name, e, c) for name, (cs, es) in zip(f["cols"], f["hists"]) for c, e in zip(cs, es)],
                         columns=["col", "e", "c"])
        charts.append(alt.Chart(h).mark_bar().encode(x="e", y="c", facet=alt.Facet("col:N", columns=8))
                      .resolve_scale(x="independent", y="independent").properties(width=80, height=60))
        m = pd.DataFrame([(a, b, v) for a, row in zip(f["cols"], f["corr"]) for b, v in zip(f["cols"], row)], columns=["a", "b", "v"])
        charts.append(alt.Chart(m).mark_rect().encode(x="a:N", y="b:N", color="v"))
    return alt.vconcat(*charts).to_html(inline=True)


def build_bokeh(d: dict) -> str:
    from bokeh.embed import file_html
    from bokeh.layouts import column, gridplot
    from bokeh.models import LinearColorMapper
    from bokeh.plotting import figure
    from bokeh.resources import INLINE

    items = []
    stages = sorted({s for s, _, _ in d["tasks"]})
    p = figure(y_range=stages, width=900, height=300)
    p.hbar(y=[s for s, _, _ in d["tasks"]], left=[a for _, a, _ in d["tasks"]], right=[a + x for _, a, x in d["tasks"]], height=0.6)
    items.append(p)

    def heat(z: list) -> figure:
        z = np.asarray(z, dtype=float)
        f = figure(width=500, height=400)
        f.image(image=[z], x=0, y=0, dw=z.shape[1], dh=z.shape[0], color_mapper=LinearColorMapper(palette="Viridis256"))
        return f

    items.append(heat(d["coverage"]))
    p = figure(width=900, height=300)
    for y in d["strength"]:
        p.line(d["t"], y)
    items.append(p)
    items.append(heat(d["ccorr"]))
    grid = []
    for c, e in d["resid"]:
        f = figure(width=110, height=80, toolbar_location=None)
        f.quad(top=c, bottom=0, left=e[:-1], right=e[1:])
        grid.append(f)
    items.append(gridplot(grid, ncols=8))
    p = figure(width=900, height=300)
    for y in d["worst"]:
        p.line(d["t"], y)
    items.append(p)
    items.append(heat(d["opp"]))
    for fam in d["fams"]:
        grid = []
        for c, e in fam["hists"]:
            f = figure(width=110, height=80, toolbar_location=None)
            f.quad(top=c, bottom=0, left=e[:-1], right=e[1:])
            grid.append(f)
        items.append(gridplot(grid, ncols=8))
        items.append(heat(fam["corr"]))
    return file_html(column(*items), INLINE, "bench")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/report-libs")
    ap.add_argument("--libs", default="plotly,altair,bokeh")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    d = data()
    for lib in args.libs.split(","):
        t = time.perf_counter()
        html = {"plotly": build_plotly, "altair": build_altair, "bokeh": build_bokeh}[lib](d)
        build = time.perf_counter() - t
        path = out / f"{lib}.html"
        path.write_text(html)
        line = f"{lib:7s} build {build:6.2f} s  size {path.stat().st_size / 1e6:6.2f} MB"
        if Path("/usr/bin/chromium").exists():
            t = time.perf_counter()
            subprocess.run(["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            "--disable-background-networking", f"--user-data-dir={out / ('ud-' + lib)}",
                            f"--screenshot={out / (lib + '.png')}", "--window-size=1400,1000", path.as_uri()],
                           capture_output=True, timeout=300)
            line += f"  chromium load+screenshot {time.perf_counter() - t:6.2f} s"
        print(line, flush=True)


if __name__ == "__main__":
    main()
