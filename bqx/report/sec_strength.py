"""Currency strength: the 8 indices S_C over time and the correlation of their hourly changes."""

from __future__ import annotations

import polars as pl

from bqx.report import downsample, figures
from bqx.report.context import Context
from bqx.report.page import Chart, Section
from bqx.universe import CURRENCIES

TABLE = "currency_index"
CHANGE_MINUTES = 60


def section(ctx: Context) -> Section:
    sec = Section("strength", "Currency strength")
    files = ctx.table_files(TABLE)
    if not files:
        sec.note("No currency-strength table in the store: the currency_indices stage has not run.")
        return sec
    every = [f"ccy_{c}" for c in CURRENCIES]
    lf_all = pl.concat([ctx.scan(f).select("ts", *every) for f in files.values()]).sort("ts")
    n = lf_all.select(pl.col(every).count()).collect().row(0)
    defined = [c for c, k in zip(CURRENCIES, n) if k]
    empty = [c for c in CURRENCIES if c not in defined]
    if empty:
        sec.note(f"Undefined throughout (a pair of theirs is missing), not drawn: {', '.join(empty)}.")
    if not defined:
        sec.note("No currency-strength index is defined anywhere in the store (too few pairs): nothing to draw.")
        return sec
    cols = [f"ccy_{c}" for c in defined]
    lf = lf_all.select("ts", *cols)
    small = downsample.last(lf, cols)
    x = downsample.iso(small["ts"])
    sec.add(Chart(figures.lines({c: (x, small[f"ccy_{c}"].round(5).to_list()) for c in defined},
                                "Strength indices S_C (last value per bucket of "
                                f"{downsample.every(lf)})", ytitle="S_C")))
    if len(defined) < 2:
        sec.note("Only one index is defined: no correlation to draw.")
        return sec
    hourly = (lf.group_by_dynamic("ts", every=f"{CHANGE_MINUTES}m").agg([pl.col(c).drop_nulls().last() for c in cols])
              .with_columns([pl.col(c).diff() for c in cols]).drop_nulls().collect())
    if hourly.height <= 2:
        sec.note(f"Only {hourly.height} hours with every defined index: no correlation to draw.")
        return sec
    m = hourly.select(cols).to_numpy()
    import numpy as np

    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.corrcoef(m.T)
    corr = np.round(c, 3).tolist()
    text = [[("" if v is None or v != v else f"{v:.2f}") for v in r] for r in corr]
    sec.add(Chart(figures.heatmap(corr, defined, defined,
                                  f"Correlation of {CHANGE_MINUTES}-minute changes of S_C ({hourly.height:,} hours)",
                                  colorscale="RdBu", zmin=-1, zmax=1, text=text, height=420, colorbar="corr")))
    return sec
