"""Plotly figure dicts for the report: lines, bars, heat maps, boxes and small multiples."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

#: Sequential scales, light (nothing) to dark (all): plotly's named "Blues" and "Oranges" run dark to light.
SEQ_BLUE = [[0.0, "#f7fbff"], [0.5, "#6baed6"], [1.0, "#08519c"]]
SEQ_ORANGE = [[0.0, "#ffffff"], [0.5, "#fdae6b"], [1.0, "#d94801"]]
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def _layout(title: str, height: int, **extra: Any) -> dict[str, Any]:
    base = {"title": {"text": title, "font": {"size": 14}}, "height": height, "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
            "hovermode": "closest", "legend": {"font": {"size": 11}}}
    base.update(extra)
    return base


def lines(series: Mapping[str, tuple[Sequence[Any], Sequence[Any]]], title: str, *, ytitle: str = "",
          height: int = 380) -> dict[str, Any]:
    data = [{"type": "scattergl" if len(x) > 5000 else "scatter", "mode": "lines", "name": name, "x": list(x), "y": list(y),
             "line": {"width": 1.2, "color": PALETTE[i % len(PALETTE)]}} for i, (name, (x, y)) in enumerate(series.items())]
    return {"data": data, "layout": _layout(title, height, yaxis={"title": {"text": ytitle}})}


def bars(x: Sequence[Any], traces: Mapping[str, Sequence[Any]], title: str, *, ytitle: str = "", stacked: bool = False,
         height: int = 360, horizontal: bool = False) -> dict[str, Any]:
    data = []
    for i, (name, y) in enumerate(traces.items()):
        t = {"type": "bar", "name": name, "marker": {"color": PALETTE[i % len(PALETTE)]}}
        t.update({"y": list(x), "x": list(y), "orientation": "h"} if horizontal else {"x": list(x), "y": list(y)})
        data.append(t)
    axis = {"title": {"text": ytitle}}
    lay = _layout(title, height, barmode="stack" if stacked else "group", **({"xaxis": axis} if horizontal else {"yaxis": axis}))
    return {"data": data, "layout": lay}


def heatmap(z: Sequence[Sequence[Any]], x: Sequence[Any], y: Sequence[Any], title: str, *, colorscale: Any = "Viridis",
            zmin: float | None = None, zmax: float | None = None, text: Sequence[Sequence[str]] | None = None,
            height: int | None = None, colorbar: str = "") -> dict[str, Any]:
    trace: dict[str, Any] = {"type": "heatmap", "z": z, "x": list(x), "y": list(y), "colorscale": colorscale,
                             "colorbar": {"title": {"text": colorbar}}, "hoverongaps": False}
    if zmin is not None:
        trace["zmin"] = zmin
    if zmax is not None:
        trace["zmax"] = zmax
    if text is not None:
        trace["text"] = text
        trace["texttemplate"] = "%{text}"
        trace["textfont"] = {"size": 10}
    h = height or max(260, 22 * len(y) + 120)
    lay = _layout(title, h, yaxis={"autorange": "reversed", "type": "category", "automargin": True},
                  xaxis={"type": "category", "automargin": True})
    return {"data": [trace], "layout": lay}


def boxes(names: Sequence[str], q: Mapping[str, Sequence[float]], title: str, *, ytitle: str = "",
          height: int = 420) -> dict[str, Any]:
    """Precomputed boxes: q has q1, median, q3, lowerfence, upperfence (one value per name)."""
    trace = {"type": "box", "name": "", "x": list(names), "q1": list(q["q1"]), "median": list(q["median"]),
             "q3": list(q["q3"]), "lowerfence": list(q["lowerfence"]), "upperfence": list(q["upperfence"]),
             "marker": {"color": PALETTE[0]}, "showlegend": False}
    return {"data": [trace], "layout": _layout(title, height, yaxis={"title": {"text": ytitle}},
                                               xaxis={"tickangle": -60, "tickfont": {"size": 9}})}


def timeline(rows: Mapping[str, Sequence[tuple[float, float, str]]], title: str, *, highlight: Sequence[str] = (),
             height: int | None = None) -> dict[str, Any]:
    """One row per name; each (start, end, label) a segment; names in `highlight` drawn red."""
    data = []
    for i, (name, segs) in enumerate(rows.items()):
        xs: list[Any] = []
        ys: list[Any] = []
        text: list[Any] = []
        for a, b, label in segs:
            xs += [a, b, None]
            ys += [name, name, None]
            text += [label, label, None]
        colour = "#c62828" if name in highlight else PALETTE[0]
        data.append({"type": "scatter", "mode": "lines", "x": xs, "y": ys, "text": text, "name": name, "showlegend": False,
                     "hovertemplate": "%{text}<extra></extra>", "line": {"width": 10, "color": colour}})
    h = height or max(260, 26 * len(rows) + 100)
    return {"data": data, "layout": _layout(title, h, xaxis={"title": {"text": "seconds since the run started"}},
                                            yaxis={"type": "category", "autorange": "reversed", "automargin": True})}


def small_multiples(panels: Sequence[tuple[str, Sequence[float], Sequence[float], bool]], title: str, *,
                    ncols: int = 6, panel_height: int = 110) -> dict[str, Any]:
    """A grid of histograms: (title, bin left edges, counts, flagged); flagged panels' titles are red."""
    n = len(panels)
    nrows = max(1, -(-n // ncols))
    gap_x, gap_y = 0.03, 0.5 / max(nrows, 1) * 0.6
    w = (1 - gap_x * (ncols - 1)) / ncols
    hrow = (1 - gap_y * (nrows - 1)) / nrows
    data, annotations, layout = [], [], {}
    for k, (name, left, counts, flagged) in enumerate(panels):
        r, c = divmod(k, ncols)
        ax = "" if k == 0 else str(k + 1)
        x0 = c * (w + gap_x)
        y1 = 1 - r * (hrow + gap_y)
        layout[f"xaxis{ax}"] = {"domain": [x0, x0 + w], "anchor": f"y{ax}", "tickfont": {"size": 8}, "nticks": 4}
        layout[f"yaxis{ax}"] = {"domain": [max(0.0, y1 - hrow), y1], "anchor": f"x{ax}", "showticklabels": False}
        data.append({"type": "bar", "x": list(left), "y": list(counts), "xaxis": f"x{ax}", "yaxis": f"y{ax}", "name": name,
                     "showlegend": False, "marker": {"color": "#c62828" if flagged else PALETTE[0]}, "hovertemplate":
                     f"{name}<br>%{{x:.4g}}: %{{y}}<extra></extra>"})
        annotations.append({"text": name, "x": x0 + w / 2, "y": y1, "xref": "paper", "yref": "paper", "yanchor": "bottom",
                            "showarrow": False, "font": {"size": 9, "color": "#c62828" if flagged else "#333"}})
    height = nrows * panel_height + 80
    lay = _layout(title, height, annotations=annotations, bargap=0.05, margin={"l": 20, "r": 20, "t": 50, "b": 20})
    lay.update(layout)
    return {"data": data, "layout": lay}
