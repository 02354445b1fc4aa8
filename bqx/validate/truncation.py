"""The truncation check: the family recomputed on its task's rows up to t equals the stored value at t.

Each sampled t gets its own recompute (rows from the task's context start to t, every pair cut at
t for a month task); every column is compared at t, for every pair with a bar at t, with the stored
value (NULL must match NULL; agreement by bqx.numerics). Views are not stored: their reference is
the view computed on the task's whole rows, as load() computes it.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from bqx.validate.recompute import Window, compute, differ, value
from bqx.validate.report import CheckResult, Failure
from bqx.validate.storeview import StoreView


def reference(view: StoreView, win: Window) -> dict[str, pl.DataFrame]:
    """Per pair: ts + the family's columns over the month, as stored (or, for a view, as load computes it)."""
    if win.fam.view:
        full = compute(view, win.fam, win.frames)
    else:
        full = {p: view.stored_family(win.fam, p, [win.month]) for p in win.frames}
    return {p: f.filter((pl.col("ts") >= win.start) & (pl.col("ts") < win.end)) for p, f in full.items()}


def compare_rows(win: Window, want: pl.DataFrame, got: pl.DataFrame, pair: str, result: CheckResult,
                 ref: pl.DataFrame, detail: str = "") -> None:
    """Compare two frames of the family's columns row by row (same ts); record mismatches in `result`."""
    if want.height != got.height or not want["ts"].equals(got["ts"]):
        result.fail(Failure(None, pair, None, float(want.height), float(got.height),
                            f"{detail}: the recompute returned rows at other timestamps".strip(": ")))
        return
    cols = [c for c in win.columns]
    names = [c.name for c in cols]
    e_all = want.select(names).to_numpy().astype(np.float64, copy=False)
    a_all = got.select(names).to_numpy().astype(np.float64, copy=False)
    result.compared += e_all.size
    if np.array_equal(e_all, a_all, equal_nan=True):
        return
    for j, col in enumerate(cols):
        e, a = e_all[:, j], a_all[:, j]
        if np.array_equal(e, a, equal_nan=True):
            continue
        full = ref[col.name].to_numpy().astype(np.float64) if ref is not want and col.name in ref.columns else None
        bad = differ(col, e, a, full)
        if bad.any():
            i = int(np.argmax(bad))
            result.fail(Failure(col.name, pair, str(want["ts"][i]), value(e[i]), value(a[i]), detail),
                        int(bad.sum()))


def check_truncation(view: StoreView, win: Window, samples: list[tuple[datetime, str]], result: CheckResult,
                     refs: dict[str, pl.DataFrame]) -> None:
    """Run the truncation check at each sampled t (one recompute at a time in memory)."""
    for t, why in samples:
        result.samples += 1
        try:
            out = compute(view, win.fam, win.upto(t))
        except Exception as exc:  # noqa: BLE001 - reported with the place it happened
            result.error(f"recompute truncated at {t} raised {type(exc).__name__}: {exc}",
                         win.pair, str(t))
            continue
        for pair, got in out.items():
            if got.height == 0 or got["ts"][-1] != t:
                continue  # this pair has no bar at t
            ref = refs.get(pair)
            if ref is None:
                continue
            i = int(ref["ts"].search_sorted(t, side="left"))
            if i >= ref.height or ref["ts"][i] != t:
                result.fail(Failure(None, pair, str(t), None, None, "no stored row at this bar"))
                continue
            compare_rows(win, ref.slice(i, 1), got.tail(1), pair, result, ref, f"truncated at t ({why})")
        del out
