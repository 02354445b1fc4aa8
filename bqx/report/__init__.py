"""`bqx report`: one self-contained HTML page of a store (run, coverage, strength, triangles, validation, features, export).

`build_report(store, out)` reads only what each section needs (column projection, Parquet footers,
a sample of partitions for distributions, downsampled series) and writes one file with plotly.js and
the data inlined: it opens offline. Needs the `report` extra (plotly).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bqx.errors import UsageError


@dataclass(frozen=True)
class ReportResult:
    path: Path
    bytes: int
    seconds: float
    sections: dict[str, int]  # section id -> charts
    notes: dict[str, list[str]]
    timings: dict[str, float]  # seconds per section, and "page" for the HTML


def build_report(store: str | os.PathLike[str], out: str | os.PathLike[str], *, export: str | None = None,
                 progress: Callable[[str], None] | None = None) -> ReportResult:
    """Write the report of `store` to `out`; `export`: an export directory (default: export/ in or beside the store)."""
    try:
        import plotly  # noqa: F401
    except ModuleNotFoundError:
        raise UsageError("bqx report needs plotly", hint="pip install 'bqx[report]'") from None
    from bqx.io import atomic_write_text
    from bqx.report import sec_coverage, sec_export, sec_features, sec_run, sec_strength, sec_triangles, sec_validation
    from bqx.report.context import load_context
    from bqx.report.page import render

    t0 = time.perf_counter()
    from bqx.store.backend import store_exists
    from bqx.store.layout import store_root

    root = store_root(store)  # a Path, or the URL of a store on object storage
    if not (root.is_dir() if isinstance(root, Path) else store_exists(root)):
        raise UsageError(f"store {root} does not exist", hint="Run `bqx run --store DIR` first, or pass --store.")
    say = progress or (lambda s: None)
    ctx = load_context(root, say)
    steps = [("run", lambda: sec_run.section(ctx)), ("coverage", lambda: sec_coverage.section(ctx)),
             ("currency strength", lambda: sec_strength.section(ctx)), ("triangles", lambda: sec_triangles.section(ctx)),
             ("validation", lambda: sec_validation.section(ctx)), ("features", lambda: sec_features.section(ctx)),
             ("export", lambda: sec_export.section(ctx, export))]
    steps.append(("signal", lambda: __import__("bqx.report.sec_signal", fromlist=["section"]).section(ctx)))
    sections = []
    timings = {"context": time.perf_counter() - t0}
    for i, (name, make) in enumerate(steps, 1):
        say(f"[{i}/{len(steps)}] {name}")
        t = time.perf_counter()
        sections.append(make())
        timings[sections[-1].id] = time.perf_counter() - t
    t = time.perf_counter()
    subtitle = (f"store {root.resolve() if isinstance(root, Path) else root} · {len(ctx.pairs)} pairs · {ctx.months[0] if ctx.months else '-'} to "
                f"{ctx.months[-1] if ctx.months else '-'} · built {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    text = render("bqx report", subtitle, sections)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    timings["page"] = time.perf_counter() - t
    return ReportResult(path=path, bytes=path.stat().st_size, seconds=time.perf_counter() - t0,
                        sections={s.id: len(s.charts) for s in sections}, notes={s.id: list(s.notes) for s in sections},
                        timings={k: round(v, 2) for k, v in timings.items()})


__all__ = ["build_report", "ReportResult"]
