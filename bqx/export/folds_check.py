"""The folds checks of `bqx validate --export` (and of the export itself) for an export written with --cv.

- folds.columns: every pool row's cv_group, cv_reach and cv_embargo recomputed from the rows as
  written: its group from its timestamp and the groups' time ranges in folds.json, the time its
  span ends (the row span_t rows later among the pair's exported rows, span_t from the exported
  targets and labels), the group containing that time, and whether it is among the first
  `embargo` rows of the pair after a group's end; test rows carry −1.
- folds.purged: for every split, no training row's [t, t + span_t] meets a test group's time
  range, and no training row is in a test group (counted on the cells of the verified columns).
- folds.embargoed: no training row of a split is among the `embargo` rows after one of its test groups.
- folds.paths: the CPCV paths are complete: each path takes, for every group, a split that tests it,
  and every (split, tested group) appears in exactly one path; the split count is C(N, k).
"""

from __future__ import annotations

import json
from math import comb
from typing import Any, Callable

import numpy as np
import polars as pl

from bqx.export.folds import CV_COLUMNS, FOLDS_JSON, FoldPlan
from bqx.export.spans import row_spans
from bqx.export.splits import _to_us


def check_folds(dest: Any, meta: dict[str, Any], files: list[dict[str, Any]], catalog: list[dict[str, Any]],
                result: Callable[[str, list[str], str], Any]) -> list[Any]:
    if not dest.exists(FOLDS_JSON):
        return [result("folds.columns", [f"{FOLDS_JSON} is missing"], "")]
    doc = json.loads(dest.read_bytes(FOLDS_JSON))
    fp = FoldPlan.from_dict(doc)
    targets = list(meta["targets"])
    look = {r["name"]: r["lookahead"] for r in catalog}
    starts = np.asarray([_to_us(e) for e in fp.edges[:-1]], dtype=np.int64)
    ends = np.asarray([_to_us(e) for e in fp.edges[1:]], dtype=np.int64)
    starts[0] = np.iinfo(np.int64).min  # the first group also holds earlier rows
    col_fail, purge_fail, emb_fail = [], [], []
    cells: list[pl.DataFrame] = []
    for pair in meta["pairs"]:
        rels = sorted(f["path"] for f in files if f["pair"] == pair)
        if not rels:
            continue
        frame = pl.concat([pl.read_parquet(dest.read_bytes(r), columns=["ts", *targets, *CV_COLUMNS]) for r in rels],
                          how="vertical_relaxed").sort("ts")
        ts = frame["ts"].dt.cast_time_unit("us").cast(pl.Int64).to_numpy()
        g, r, e = (frame[c].to_numpy().astype(np.int64) for c in CV_COLUMNS)
        pool = g >= 0
        span = row_spans(frame.with_columns(pl.col(targets).cast(pl.Float64)), targets, look)
        end_ts = ts[np.minimum(np.arange(len(ts)) + span, len(ts) - 1)]
        want_g = np.full(len(ts), -1)
        want_r = np.full(len(ts), -1)
        for k in range(fp.spec.groups):  # the group whose time range holds the time (the last open-ended)
            want_g = np.where((ts >= starts[k]) & ((ts < ends[k]) | (k == fp.spec.groups - 1)), k, want_g)
            want_r = np.where((end_ts >= starts[k]) & ((end_ts < ends[k]) | (k == fp.spec.groups - 1)), k, want_r)
        want_e = np.full(len(ts), -1)
        for k in range(fp.spec.groups - 1):
            first = int(np.searchsorted(ts, ends[k], side="left"))
            want_e[first: first + fp.embargo] = np.where(want_e[first: first + fp.embargo] < 0, k, want_e[first: first + fp.embargo])
        for name, got, want in (("cv_group", g, want_g), ("cv_reach", r, want_r), ("cv_embargo", e, want_e)):
            bad = pool & (got != want)
            if bad.any():
                i = int(np.argmax(bad))
                col_fail.append(f"{pair} {name} at {frame['ts'][i]}: written {got[i]}, recomputed {want[i]}")
        if (~pool & ((r >= 0) | (e >= 0))).any():
            col_fail.append(f"{pair}: a row outside the pool has cv columns set")
        cells.append(pl.DataFrame({"g": want_g[pool], "r": want_r[pool], "e": want_e[pool], "t": ts[pool],
                                   "end": end_ts[pool]}))
    # per cell of verified columns: every row of a cell has its t in group g and its span's end in group r, so
    # the earliest t and the latest end decide whether some row's [t, t + span_t] meets a group's time range
    allc = (pl.concat(cells) if cells else pl.DataFrame(schema={"g": pl.Int64, "r": pl.Int64, "e": pl.Int64,
                                                                "t": pl.Int64, "end": pl.Int64}))
    agg = allc.group_by("g", "r", "e").agg(pl.len().alias("n"), pl.col("t").min(), pl.col("end").max())
    g, r, e, n = (agg[c].to_numpy().astype(np.int64) for c in ("g", "r", "e", "n"))
    t, tend = agg["t"].to_numpy(), agg["end"].to_numpy()
    for s, (test, _) in enumerate(fp.splits):
        train = fp.train_mask(s, g, r, e)
        for k in test:  # [t, t + span] against the test group's time range
            last = k == fp.spec.groups - 1
            meets = train & (tend >= starts[k]) & ((t < ends[k]) | last)
            if meets.any():
                purge_fail.append(f"split {s}: {int(n[meets].sum())} training rows reach test group {k}")
            if not last:
                emb = train & (e == k)
                if emb.any():
                    emb_fail.append(f"split {s}: {int(n[emb].sum())} training rows in the embargo after group {k}")
    path_fail = []
    n, k = fp.spec.groups, fp.spec.k
    if fp.spec.method == "cpcv":
        if len(fp.splits) != comb(n, k):
            path_fail.append(f"{len(fp.splits)} splits, C({n}, {k}) = {comb(n, k)}")
        if len(fp.paths) != comb(n - 1, k - 1):
            path_fail.append(f"{len(fp.paths)} paths, k/N·C(N, k) = {comb(n - 1, k - 1)}")
        used: dict[tuple[int, int], int] = {}
        for p, path in enumerate(fp.paths):
            if len(path) != n:
                path_fail.append(f"path {p} covers {len(path)} groups of {n}")
            for grp, s in enumerate(path):
                if grp not in fp.splits[s][0]:
                    path_fail.append(f"path {p} takes split {s} for group {grp}, which it does not test")
                used[(s, grp)] = used.get((s, grp), 0) + 1
        want = {(s, grp) for s, (test, _) in enumerate(fp.splits) for grp in test}
        if set(used) != want or any(v != 1 for v in used.values()):
            path_fail.append("not every (split, tested group) is in exactly one path")
    else:
        if len(fp.splits) != n - 1:
            path_fail.append(f"walk-forward with {n} groups has {len(fp.splits)} splits, not {n - 1}")
    return [
        result("folds.columns", col_fail, f"cv_group, cv_reach, cv_embargo of {allc.height} pool rows as recomputed"),
        result("folds.purged", purge_fail, f"{len(fp.splits)} splits: no training row's [t, t + span_t] meets a test group"),
        result("folds.embargoed", emb_fail, f"no training row within {fp.embargo} rows after a test group"),
        result("folds.paths", path_fail, f"{fp.spec.text}: {len(fp.splits)} splits, {len(fp.paths)} complete paths"),
    ]
