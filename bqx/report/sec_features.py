"""Features: per family a small multiple of distributions, NULL share, constant columns and a correlation heat map.

Exact from every Parquet footer of the stage (no data read): NULL share, min, max, constant (min == max).
From a sample (SAMPLE_PARTITIONS pair-months spread over pairs and months, at most SAMPLE_ROWS rows
each, only the family's columns): quantiles, histograms and correlations.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from bqx.report import figures
from bqx.report.context import Context
from bqx.report.page import Chart, Section, table

SAMPLE_PARTITIONS = 6
SAMPLE_ROWS = 10_000
BINS = 30
CORR_ROWS = 5_000  # evenly spaced rows of the sample for the correlation heat map


def footer_stats(files: Sequence[Any], columns: Sequence[str],
                 metadata: Callable[[Any], Any] = pq.read_metadata) -> dict[str, dict[str, Any]]:
    """Per column: rows, nulls, min, max over every row group of every file (Parquet statistics only);
    `metadata(file)` reads a file's footer (the store's backend: `Context.metadata`)."""
    wanted = set(columns)

    def one(path: Any) -> dict[str, list[Any]]:
        meta = metadata(path)
        names = [meta.schema.column(i).name for i in range(meta.num_columns)]
        out: dict[str, list[Any]] = {}
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            for i, name in enumerate(names):
                if name not in wanted:
                    continue
                col = rg.column(i)
                s = col.statistics
                acc = out.setdefault(name, [0, 0, None, None])
                acc[0] += rg.num_rows
                if s is None:
                    continue
                acc[1] += s.null_count if s.has_null_count else 0
                if s.has_min_max:
                    acc[2] = s.min if acc[2] is None else min(acc[2], s.min)
                    acc[3] = s.max if acc[3] is None else max(acc[3], s.max)
        return out

    total: dict[str, dict[str, Any]] = {c: {"rows": 0, "nulls": 0, "min": None, "max": None} for c in columns}
    with ThreadPoolExecutor(4) as pool:
        for part in pool.map(one, files):
            for name, (rows, nulls, lo, hi) in part.items():
                t = total[name]
                t["rows"] += rows
                t["nulls"] += nulls
                if lo is not None:
                    t["min"] = lo if t["min"] is None else min(t["min"], lo)
                    t["max"] = hi if t["max"] is None else max(t["max"], hi)
    return total


def spread(keys: Sequence[tuple[str, str]], n: int) -> list[tuple[str, str]]:
    """At most n (pair, month) keys along the diagonal: pairs and months both evenly spaced, first to last."""
    keys = sorted(keys)
    if len(keys) <= n:
        return list(keys)
    have = set(keys)
    pairs = sorted({p for p, _ in keys})
    months = sorted({m for _, m in keys})
    out: list[tuple[str, str]] = []
    for k in range(n):
        p = pairs[round(k * (len(pairs) - 1) / max(1, n - 1))]
        m = months[round(k * (len(months) - 1) / max(1, n - 1))]
        if (p, m) not in have:  # the pair's month nearest to m
            m = min((q for r, q in keys if r == p), key=lambda q: abs(months.index(q) - months.index(m)))
        if (p, m) not in out:
            out.append((p, m))
    return out


def sample(files: dict[tuple[str, str], Any], columns: Sequence[str],
           scan: Callable[[Any], pl.LazyFrame] = pl.scan_parquet) -> pl.DataFrame:
    parts = []
    for key in spread(list(files), SAMPLE_PARTITIONS):
        lf = scan(files[key]).select(columns)
        n = lf.select(pl.len()).collect().item()
        parts.append(lf.gather_every(max(1, -(-n // SAMPLE_ROWS))).collect())
    return pl.concat(parts) if parts else pl.DataFrame(schema={c: pl.Float64 for c in columns})


def pairwise_corr(x: np.ndarray) -> np.ndarray:
    """Pearson correlation of every pair of columns over the rows where both are non-NULL (NaN in x)."""
    ok = ~np.isnan(x)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(x, axis=0, keepdims=True)
    x0 = np.where(ok, x - mean, 0.0)  # centred first: the sums below lose no precision to large means
    m = ok.astype(float)
    n = m.T @ m
    sx = x0.T @ m  # sum of x_i over rows where j is present
    sxx = (x0 * x0).T @ m
    sxy = x0.T @ x0
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sxy - sx * sx.T / n
        var_i = sxx - sx * sx / n
        r = cov / np.sqrt(var_i * var_i.T)
    r[n < 3] = np.nan
    return np.clip(r, -1.0, 1.0)


def family_blocks(sec: Section, name: str, columns: list[str], files: dict[tuple[str, str], Any],
                  ctx: Context | None = None) -> None:
    stats = footer_stats(list(files.values()), columns, *([ctx.metadata] if ctx is not None else []))
    with np.errstate(all="ignore"):
        s = sample(files, columns, *([ctx.scan] if ctx is not None else []))
    x = s.select(pl.all().cast(pl.Float64)).to_numpy() if s.height else np.empty((0, len(columns)))
    panels, rows, constant, all_null = [], [], [], []
    for j, c in enumerate(columns):
        st = stats[c]
        share = st["nulls"] / st["rows"] if st["rows"] else None
        is_const = st["min"] is not None and st["min"] == st["max"]
        if st["rows"] and st["nulls"] == st["rows"]:
            all_null.append(c)
        if is_const:
            constant.append(c)
        v = x[:, j][~np.isnan(x[:, j])] if x.size else np.empty(0)
        qs = np.quantile(v, [0.005, 0.01, 0.5, 0.99, 0.995]) if v.size else [None] * 5
        if v.size:
            lo, hi = float(qs[0]), float(qs[4])
            if hi <= lo:
                lo, hi = lo - 0.5, hi + 0.5
            counts, edges = np.histogram(np.clip(v, lo, hi), BINS, range=(lo, hi))
            left = np.round(edges[:-1], 6).tolist()
            counts = counts.tolist()
        else:
            left, counts = [], []
        label = f"{c} · NULL {share:.1%}" if share else c
        if c not in all_null:  # an all-NULL column has nothing to draw: it is named in the text instead
            panels.append((label, left, counts, is_const))
        rows.append([c, None if share is None else round(share, 4), st["min"], *(None if q is None else float(q) for q in qs[1:4]),
                     st["max"], "constant" if is_const else ("all NULL" if c in all_null else "")])
    g = name
    sec.add(f"<p><b>{name}</b>: {len(columns)} columns over {len(files)} partitions; sample of {s.height:,} rows "
            f"from {min(len(files), SAMPLE_PARTITIONS)} partitions. Constant: {', '.join(constant) or 'none'}. "
            f"All NULL: {', '.join(all_null) or 'none'}.</p>", group=g)
    if panels:
        sec.add(Chart(figures.small_multiples(panels, f"{name}: distributions (sample, q0.5–q99.5; red: constant; "
                                              "all-NULL columns not drawn)", ncols=6 if len(panels) > 12 else 4), group=g))
    seen = [j for j in range(len(columns)) if x.size and np.count_nonzero(~np.isnan(x[:, j])) >= 3]
    if len(seen) > 1:
        step = max(1, -(-x.shape[0] // CORR_ROWS))
        r = np.round(pairwise_corr(x[::step][:, seen]), 3)
        names = [columns[j] for j in seen]
        left_out = "" if len(seen) == len(columns) else f"; {len(columns) - len(seen)} columns without sample values left out"
        sec.add(Chart(figures.heatmap(r.tolist(), names, names, f"{name}: correlation within the family (sample{left_out})",
                                      colorscale="RdBu", zmin=-1, zmax=1, colorbar="corr",
                                      height=min(1400, max(420, 9 * len(names) + 200))), group=g))
    sec.add(table(["column", "NULL share", "min", "q01", "median", "q99", "max", ""], rows,
                  caption="NULL share, min and max exact over the stage's files; quantiles from the sample"), group=g)


def section(ctx: Context) -> Section:
    sec = Section("features", "Features")
    done = []
    for stage, spec in ctx.specs.items():
        files = ctx.stage_files(stage)
        for fam in spec.families:
            cols = list(fam.column_names(spec.params[fam.name]))
            if not files:
                continue
            ctx.progress(f"features: {fam.name} ({len(cols)} columns, {len(files)} partitions)")
            family_blocks(sec, fam.name, cols, files, ctx)
            done.append(fam.name)
    missing = [f.name for spec in ctx.specs.values() for f in spec.families if f.name not in done]
    if missing:
        sec.note(f"Not stored yet: {', '.join(missing)}.")
    if not done:
        sec.note("No feature is stored: run `bqx run` first.")
    sec.note("Views (lags) are not stored; their distributions are those of the BQX columns they lag.")
    sec.groups = done
    return sec
