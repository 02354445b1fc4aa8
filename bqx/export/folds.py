"""Cross-validation folds over the export's pool (PIPELINE.md §7, Cross-validation folds).

The pool is the rows before the test boundary. It is cut into N groups of equal length in time
(walk-forward K: N = K + 1) on minute boundaries common to all pairs. Each pool row carries three
int8 columns from which every split's train and test sets follow:

- `cv_group`: the group of its timestamp;
- `cv_reach`: the group of the row `span_t` rows later on the same pair (the last group that
  [t, t + span_t] meets; span_t from bqx.export.spans);
- `cv_embargo`: the group whose embargo (the E rows of the pair after the group's end) covers
  it, −1 if none.

Split s with test groups T trains on the rows with cv_group not in T, no g in T with cv_group <= g
<= cv_reach, and cv_embargo not in T (walk-forward split i also only on groups before i). Rows
outside the pool (the test split) carry −1 in all three.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations
from math import comb
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from bqx.errors import UsageError
from bqx.export.splits import SplitPlan, _to_us, parse_ts, plan_splits

CV_COLUMNS: tuple[str, ...] = ("cv_group", "cv_reach", "cv_embargo")
FOLDS_JSON = "metadata/folds.json"
CV_SCALERS = "scalers/cv"
MAX_GROUPS = 127  # int8


@dataclass(frozen=True)
class CvSpec:
    method: str  # "walk-forward" or "cpcv"
    groups: int  # N
    k: int  # test groups per split (walk-forward: 1)

    @property
    def text(self) -> str:
        return f"walk-forward:{self.groups - 1}" if self.method == "walk-forward" else f"cpcv:{self.groups},{self.k}"


def parse_cv(text: str) -> CvSpec:
    """`walk-forward:K` (K >= 1) or `cpcv:N,k` (1 <= k < N)."""
    t = text.strip().lower().replace(" ", "")
    m = re.fullmatch(r"walk-?forward:(\d+)", t)
    if m and 1 <= int(m.group(1)) < MAX_GROUPS:
        return CvSpec("walk-forward", int(m.group(1)) + 1, 1)
    m = re.fullmatch(r"cpcv:(\d+),(\d+)", t)
    if m and 1 <= int(m.group(2)) < int(m.group(1)) <= MAX_GROUPS:
        return CvSpec("cpcv", int(m.group(1)), int(m.group(2)))
    raise UsageError(f"--cv {text!r} is not walk-forward:K or cpcv:N,k",
                     hint=f"e.g. --cv walk-forward:5 or --cv cpcv:6,2 (1 <= k < N <= {MAX_GROUPS}).")


def splits_of(spec: CvSpec) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(test groups, train groups before purging) per split, in split order."""
    n = spec.groups
    if spec.method == "walk-forward":
        return [((i,), tuple(range(i))) for i in range(1, n)]
    return [(t, tuple(g for g in range(n) if g not in t)) for t in combinations(range(n), spec.k)]


def paths_of(spec: CvSpec, splits: Sequence[tuple[tuple[int, ...], Any]]) -> list[list[int]]:
    """CPCV backtest paths: path p takes, for each group g, the p-th split (in split order) that tests g."""
    if spec.method != "cpcv":
        return []
    testing = [[s for s, (t, _) in enumerate(splits) if g in t] for g in range(spec.groups)]
    n_paths = comb(spec.groups - 1, spec.k - 1)  # = k/N · C(N, k)
    return [[testing[g][p] for g in range(spec.groups)] for p in range(n_paths)]


def pool_plan(ts_by_pair: Mapping[str, np.ndarray], *, split: Sequence[float], train_end: Any, val_end: Any,
              purge: int, embargo: int) -> SplitPlan:
    """The split plan of a folds export: the pool (train and validation as one range) and the test split."""
    if train_end is None:
        fr = tuple(float(f) for f in split)
        if len(fr) != 3 or fr[2] <= 0:
            raise UsageError("--cv needs a test split (a test fraction > 0): the pool is the rows before it")
        return plan_splits(ts_by_pair, fractions=(fr[0] + fr[1], 0.0, fr[2]), purge=purge, embargo=embargo)
    at = parse_ts(val_end if val_end is not None else train_end)
    plan = plan_splits(ts_by_pair, train_end=at, purge=purge, embargo=embargo)
    return SplitPlan(plan.train_end, plan.train_end, plan.purge, plan.embargo, plan.method, plan.fractions,
                     plan.common_start, plan.common_end, plan.exclusions)


@dataclass
class FoldPlan:
    spec: CvSpec
    edges: list[datetime]  # N + 1 group edges; group g = [edges[g], edges[g+1]) (the first and last open-ended)
    embargo: int
    splits: list[tuple[tuple[int, ...], tuple[int, ...]]]
    paths: list[list[int]]

    def group_of(self, ts_us: np.ndarray) -> np.ndarray:
        inner = np.asarray([_to_us(e) for e in self.edges[1:-1]], dtype=np.int64)
        return np.searchsorted(inner, ts_us, side="right").astype(np.int64)

    def columns(self, ts_all: np.ndarray, frame_ts: np.ndarray, spans: np.ndarray, in_pool: np.ndarray) -> dict[str, np.ndarray]:
        """cv_group, cv_reach, cv_embargo (int8) for rows `frame_ts` of a pair whose sorted timestamps are `ts_all`."""
        idx = np.searchsorted(ts_all, frame_ts, side="left")
        group = self.group_of(frame_ts)
        reach = self.group_of(ts_all[np.minimum(idx + spans, len(ts_all) - 1)])
        reach = np.minimum(np.maximum(reach, group), self.spec.groups - 1)
        emb = np.full(len(frame_ts), -1, dtype=np.int64)
        for g in range(self.spec.groups - 1):
            end = int(np.searchsorted(ts_all, _to_us(self.edges[g + 1]), side="left"))
            inside = (idx >= end) & (idx < end + self.embargo)
            emb = np.where(inside & (emb < 0), g, emb)
        out = {"cv_group": group, "cv_reach": reach, "cv_embargo": emb}
        return {k: np.where(in_pool, v, -1).astype(np.int8) for k, v in out.items()}

    def train_mask(self, s: int, group: np.ndarray, reach: np.ndarray, emb: np.ndarray) -> np.ndarray:
        test = np.asarray(self.splits[s][0])
        ok = (group >= 0) & ~np.isin(group, test) & ~np.isin(emb, test)
        for g in test:
            ok &= ~((group <= g) & (reach >= g))
        if self.spec.method == "walk-forward":
            ok &= group < test[0]
        return ok

    def test_mask(self, s: int, group: np.ndarray) -> np.ndarray:
        return np.isin(group, np.asarray(self.splits[s][0])) & (group >= 0)

    def train_expr(self, s: int) -> pl.Expr:
        test = list(self.splits[s][0])
        ok = (pl.col("cv_group") >= 0) & ~pl.col("cv_group").is_in(test) & ~pl.col("cv_embargo").is_in(test)
        for g in test:
            ok = ok & ~((pl.col("cv_group") <= g) & (pl.col("cv_reach") >= g))
        if self.spec.method == "walk-forward":
            ok = ok & (pl.col("cv_group") < test[0])
        return ok

    def test_expr(self, s: int) -> pl.Expr:
        return pl.col("cv_group").is_in(list(self.splits[s][0]))

    def to_dict(self, span_rule: Any, counts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        return {
            "method": self.spec.method, "cv": self.spec.text, "n_groups": self.spec.groups, "k": self.spec.k,
            "groups": [{"group": g, "start": self.edges[g].isoformat(), "end": self.edges[g + 1].isoformat()}
                       for g in range(self.spec.groups)],
            "group_rule": "group g holds the rows with start <= ts < end (the first also earlier rows, the last up to "
                          "the test boundary); equal lengths in time, edges on minutes common to all pairs",
            "splits": [{"split": s, "test_groups": list(t), "train_groups": list(tr)} for s, (t, tr) in enumerate(self.splits)],
            "paths": self.paths,
            "path_rule": "path p takes, for each group g, the p-th split (in split order) that tests g" if self.paths else None,
            "span_rule": span_rule,
            "purge_rule": "a row trains split s only if [t, t + span_t] (rows of its pair) meets no test group of s: "
                          "no test group g with cv_group <= g <= cv_reach",
            "embargo_bars": self.embargo,
            "embargo_rule": f"a row trains split s only if it is not among the {self.embargo} rows of its pair after the end "
                            "of a test group of s (cv_embargo, -1 if none)",
            "columns": {"cv_group": "int8", "cv_reach": "int8", "cv_embargo": "int8"},
            "rows": counts,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FoldPlan":
        spec = CvSpec(d["method"], int(d["n_groups"]), int(d["k"]))
        edges = [parse_ts(g["start"]) for g in d["groups"]] + [parse_ts(d["groups"][-1]["end"])]
        splits = [(tuple(s["test_groups"]), tuple(s["train_groups"])) for s in d["splits"]]
        return cls(spec, edges, int(d["embargo_bars"]), splits, [list(p) for p in d["paths"]])


def plan_folds(spec: CvSpec, plan: SplitPlan, ts_by_pair: Mapping[str, np.ndarray], embargo: int) -> FoldPlan:
    """Group edges over the pool [common start, test boundary), floored to minutes; refuses groups with fewer
    rows of some pair than the embargo (an embargo must not reach past the next group)."""
    start = plan.common_start.replace(second=0, microsecond=0)
    end = plan.train_end
    if end <= start:
        raise UsageError(f"the pool before the test boundary {end.isoformat()} is empty")
    width = (end - start) / spec.groups
    edges = [start] + [(start + width * g).replace(second=0, microsecond=0) for g in range(1, spec.groups)] + [end]
    if len(set(edges)) != len(edges):
        raise UsageError(f"--cv {spec.text}: the pool ({start} to {end}) is too short for {spec.groups} groups of whole minutes")
    splits = splits_of(spec)
    fp = FoldPlan(spec, edges, int(embargo), splits, paths_of(spec, splits))
    for pair, ts in ts_by_pair.items():
        counts = np.bincount(fp.group_of(ts[ts < _to_us(end)]), minlength=spec.groups)
        short = [g for g in range(1, spec.groups) if counts[g] <= embargo]
        if short:
            raise UsageError(f"--cv {spec.text}: group {short[0]} of {pair} has {counts[short[0]]} rows, not more than the "
                             f"embargo of {embargo}", hint="Use fewer groups or a shorter --embargo.")
    return fp


def cell_counts(group: np.ndarray, reach: np.ndarray, emb: np.ndarray) -> pl.DataFrame:
    """Rows per (cv_group, cv_reach, cv_embargo) cell: what split row counts and scalers are built from."""
    return (pl.DataFrame({"cv_group": group, "cv_reach": reach, "cv_embargo": emb})
            .group_by(CV_COLUMNS).len("rows").sort(CV_COLUMNS))


def split_counts(fp: FoldPlan, cells: Mapping[str, pl.DataFrame]) -> dict[str, Any]:
    """Train and test rows per split and pair, from each pair's cell counts."""
    out: dict[str, Any] = {}
    for s in range(len(fp.splits)):
        per = {}
        for pair, c in sorted(cells.items()):
            g, r, e, n = (c[k].to_numpy() for k in (*CV_COLUMNS, "rows"))
            per[pair] = {"train": int(n[fp.train_mask(s, g, r, e)].sum()), "test": int(n[fp.test_mask(s, g)].sum())}
        out[str(s)] = per
    return out


__all__ = ["CV_COLUMNS", "FOLDS_JSON", "CvSpec", "FoldPlan", "parse_cv", "plan_folds", "pool_plan", "splits_of",
           "paths_of", "cell_counts", "split_counts"]
