"""The export, when one exists: split boundaries, rows per split and pair, the scaler."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from bqx.report import figures
from bqx.report.context import Context
from bqx.report.page import Chart, Section, table

MARKER = Path("metadata") / "COMPLETE.json"


def find_export(root: Path | str) -> Path | str | None:
    """An export next to the store: `<store>/export` or `export` beside the store (the README's layout);
    for a store on object storage, the `export/` prefix in it."""
    if not isinstance(root, Path):
        from bqx.store.backend import backend_for

        backend = backend_for(root)
        return backend.join("export") if backend.exists(f"export/{MARKER.as_posix()}") else None
    for cand in (root / "export", root.parent / "export"):
        if (cand / MARKER).is_file():
            return cand
    return None


def section(ctx: Context, export: str | None) -> Section:
    from bqx.export import IncompleteExportError, read_export_metadata

    sec = Section("export", "Export")
    where = export if export is not None else find_export(ctx.root)
    if where is None:
        sec.note("No export found (looked for export/ in and beside the store): run `bqx export --to DIR`, "
                 "then `bqx report --export DIR`.")
        return sec
    try:
        meta = read_export_metadata(str(where))
    except (IncompleteExportError, FileNotFoundError, OSError, ValueError) as exc:
        sec.note(f"The export at {where} cannot be read: {exc}")
        return sec
    split = meta.get("split", {})
    b = split.get("boundaries", {})
    purge, embargo = split_numbers(split)
    start, end = common_range(split)
    sec.add(f"<p>Export {meta.get('export_id', '')[:12]} at {where}, created {meta.get('created_at')}: "
            f"{len(meta.get('pairs', []))} pairs, {len(meta.get('columns', [])) - 1} columns ({meta.get('precision')}), "
            f"method {split.get('method')}, purge {purge} bars, embargo {embargo} bars, common range {start} to "
            f"{end}.</p>")
    sec.add(table(["boundary", "timestamp"], [["common start", start], *([k, v] for k, v in b.items()),
                                              ["common end", end]]))
    columns_note(sec, meta)
    rows = meta.get("rows", {})
    pairs = sorted({p for s in rows.values() for p in s})
    splits = [s for s in ("train", "validation", "test") if s in rows]
    sec.add(Chart(figures.bars(pairs, {s: [rows[s].get(p, 0) for p in pairs] for s in splits},
                               "Rows per split and pair", stacked=True, ytitle="rows")))
    edges = [start, b.get("train_end"), b.get("validation_end"), end]
    bounds = [e for e in edges if e]
    spans = {s: [(bounds[i], bounds[i + 1], s)] for i, s in enumerate(("train", "validation", "test")[:len(bounds) - 1])}
    if spans:
        fig = figures.timeline(spans, "Split boundaries (one timestamp for every pair)")
        fig["layout"]["xaxis"] = {"type": "date", "title": {"text": "time (UTC)"}}
        sec.add(Chart(fig))
    scaler = meta.get("scaler_params", {})
    cols: dict[str, Any] = scaler.get("columns") or next(iter(scaler.get("pairs", {}).values()), {})
    fitted = [(c, p) for c, p in cols.items() if p.get("std") is not None]
    if fitted:
        names = [c for c, _ in fitted]
        std = [float(np.log10(p["std"])) if p["std"] > 0 else None for _, p in fitted]
        fig = {"data": [{"type": "scatter", "mode": "markers", "x": list(range(len(names))), "y": std, "text": names,
                         "marker": {"size": 5, "color": ["#c62828" if p["constant"] else "#1f77b4" for _, p in fitted]},
                         "hovertemplate": "%{text}: log10 std %{y:.3f}<extra></extra>"}],
               "layout": {"title": {"text": f"Scaler ({scaler.get('scope')}): log10 std per scaled column "
                                    "(red: constant, scale 1)", "font": {"size": 14}}, "height": 360,
                          "xaxis": {"title": {"text": "column (hover for its name)"}}, "yaxis": {"title": {"text": "log10 std"}}}}
        sec.add(Chart(fig))
    rep = scaler.get("report", {})
    const = sorted({c for g in rep.get("constant", {}).values() for c in g})
    empty = sorted({c for g in (rep.get("empty") or rep.get("no_training_values") or {}).values() for c in g})
    sec.add(f"<p>Constant columns (scale 1): {', '.join(const) or 'none'}. Without training values: "
            f"{', '.join(empty) or 'none'}.</p>")
    return sec


def split_numbers(split: dict[str, Any]) -> tuple[Any, Any]:
    """(purge, embargo) bars as the export's metadata records them (SplitPlan.to_dict: purge_bars, embargo_bars)."""
    return split.get("purge_bars", split.get("purge")), split.get("embargo_bars", split.get("embargo"))


def common_range(split: dict[str, Any]) -> tuple[Any, Any]:
    """(start, end) of the pairs' common date range (SplitPlan.to_dict: common_range [start, end])."""
    rng = split.get("common_range") or [split.get("common_start"), split.get("common_end")]
    return rng[0], rng[1]


def columns_note(sec: Section, meta: dict[str, Any]) -> None:
    """The census of empty and constant columns (metadata/columns.json), when the export has one."""
    census = meta.get("column_census")
    if not census:
        return
    c = census.get("counts", {})
    dropped = census.get("dropped", [])
    text = (f"<p>Columns: {c.get('exported')} exported of {c.get('selected')} selected; {len(dropped)} dropped "
            f"(no value in the store for any pair){': ' + html.escape(', '.join(dropped[:12])) if dropped else ''}"
            f"{f' and {len(dropped) - 12} more' if len(dropped) > 12 else ''}. {c.get('empty_somewhere', 0)} columns are empty and "
            f"{c.get('constant_somewhere', 0)} constant for some pair or split (metadata/columns.json).</p>")
    sec.add(text)
    by_pair = census.get("by_pair", {})
    rows = [[p, sp, v.get("rows"), v.get("empty"), v.get("constant")]
            for p, splits in by_pair.items() for sp, v in splits.items() if v.get("empty")]
    if rows:
        sec.add(table(["pair", "split", "rows", "empty columns", "constant columns"], rows,
                      caption=f"Pairs and splits with empty columns ({len(rows)} of "
                              f"{sum(len(v) for v in by_pair.values())}; the others have none)"))
