"""The reach check of the families that look ahead (targets, labels): PIPELINE.md §6.

They are exempt from truncation, perturbation and the sweep (they read the future by definition)
but not from reading further than they declare. For sampled partitions the family is recomputed
on its task's rows (the month, its context before it and twice its lookahead after it); the
month's rows are compared with the stored ones (the task's lookahead window was enough); then, at
sampled rows t, the bars and input columns after row t + lookahead are (a) replaced by different
values and (b) removed, and row t and every row before it must be unchanged. A family reading
row t + L + 1 or later while declaring L fails here, as a leak of its declaration.
"""

from __future__ import annotations

import time
import numpy as np
import polars as pl

from bqx.core.declaration import Family
from bqx.validate.recompute import compute, differ, value
from bqx.validate.report import CheckResult, FamilyResult, Failure
from bqx.validate.sampling import rng_for
from bqx.validate.storeview import StoreView

PRICE_SCALE = 0.01  # perturbed values: x · (1 + 0.01 · u), u uniform in [-1, 1], independent per value


def check_reach(view: StoreView, fam: Family, *, partitions: int = 2, samples: int = 6, seed: int = 0) -> CheckResult:
    """Perturb and remove the rows after t + lookahead at `samples` rows of `partitions` stored partitions."""
    t0 = time.perf_counter()
    res = CheckResult("reach")
    p = view.fam_params(fam)
    look, ctx = fam.lookahead(p), fam.context(p)
    rng = rng_for(seed, "reach", fam.name)
    done = [k for k in view.done(fam) if k[0] is not None]
    if not done or samples <= 0:
        res.status, res.note = "skip", "nothing stored" if not done else "no samples"
        return res
    picks = list(dict.fromkeys([done[0], done[-1]] + [done[i] for i in rng.permutation(len(done))]))[:partitions]
    for pair, month in picks:
        frame, i0, i1 = _task_rows(view, fam, pair, month, ctx, look)
        if i1 <= i0:
            continue
        try:
            ref = compute(view, fam, {pair: frame})[pair]
        except Exception as exc:  # noqa: BLE001
            res.error(f"recompute of {pair} {month} raised {type(exc).__name__}: {exc}", pair)
            continue
        _compare_stored(view, fam, pair, month, ref, i0, i1, res)
        rows = np.unique(np.r_[i1 - 1, i0, rng.integers(i0, i1, size=max(samples - 2, 0))])
        for k in rows[:samples]:
            res.samples += 1
            cut = int(k) + look + 1  # rows >= cut lie after t + lookahead
            if cut >= frame.height:
                continue
            for how, altered in (("perturbed", _perturb(frame, cut, rng)), ("removed", frame.slice(0, cut))):
                try:
                    got = compute(view, fam, {pair: altered})[pair]
                except Exception as exc:  # noqa: BLE001
                    res.error(f"recompute with rows after t + {look} {how} raised {type(exc).__name__}: {exc}", pair)
                    continue
                _compare(fam, view, ref.slice(0, int(k) + 1), got.slice(0, int(k) + 1), pair, res,
                         f"rows after t + {look} (declared lookahead) {how} at t = {frame['ts'][int(k)]}")
    res.seconds = time.perf_counter() - t0
    return res


def _task_rows(view: StoreView, fam: Family, pair: str, month: str, ctx: int, look: int) -> tuple[pl.DataFrame, int, int]:
    """The pair's rows from `ctx` before the month to 2 x `look` after it, and the month's [first, end) rows."""
    months = sorted(view.months_by_pair[pair])
    i = months.index(month)
    use = view.months_before(pair, month, ctx) + months[i + 1: i + 2 + (2 * look) // 20_000]
    frame = view.input_frame(fam, pair, use)
    start, end = view.month_bounds(month)
    a = int(frame["ts"].search_sorted(start, side="left"))
    b = int(frame["ts"].search_sorted(end, side="left"))
    lo, hi = max(0, a - ctx), min(frame.height, b + 2 * look)
    return frame.slice(lo, hi - lo), a - lo, b - lo


def _perturb(frame: pl.DataFrame, cut: int, rng: np.random.Generator) -> pl.DataFrame:
    """Bars and input columns of rows >= cut multiplied by independent factors 1 + 0.01 u (ts and counts kept)."""
    n = frame.height - cut
    cols = []
    for name, dtype in frame.schema.items():
        if name == "ts" or not dtype.is_float():
            continue
        factor = np.r_[np.ones(cut), 1.0 + PRICE_SCALE * rng.uniform(-1.0, 1.0, size=n)]
        cols.append((pl.col(name) * pl.Series(factor)).alias(name))
    out = frame.with_columns(cols)
    if "high" in out.columns and "low" in out.columns:  # keep bars well formed
        hi = pl.max_horizontal("open", "high", "low", "close") if "open" in out.columns else pl.col("high")
        lo = pl.min_horizontal("open", "high", "low", "close") if "open" in out.columns else pl.col("low")
        out = out.with_columns(hi.alias("high"), lo.alias("low"))
    return out


def _compare(fam: Family, view: StoreView, want: pl.DataFrame, got: pl.DataFrame, pair: str, res: CheckResult,
             detail: str) -> None:
    for col in fam.columns(view.fam_params(fam)):
        e = want[col.name].to_numpy().astype(np.float64)
        a = got[col.name].to_numpy().astype(np.float64)
        res.compared += len(e)
        bad = differ(col, e, a)
        if bad.any():
            j = int(np.argmax(bad))
            res.fail(Failure(col.name, pair, str(want["ts"][j]), value(e[j]), value(a[j]), detail), int(bad.sum()))
            return


def _compare_stored(view: StoreView, fam: Family, pair: str, month: str, ref: pl.DataFrame, i0: int, i1: int,
                    res: CheckResult) -> None:
    """The stored month equals the recompute on its task's rows, where the recompute had its lookahead rows."""
    want = view.stored_family(fam, pair, [month])  # the task's rows hold 2 x lookahead after the month (or the data end)
    got = ref.slice(i0, i1 - i0)
    _compare(fam, view, want, got, pair, res, f"stored {month} vs recomputed on the task's rows")


def target_verdict(res: FamilyResult) -> str:
    """A family that looks ahead: exempt while its static, boundary and reach checks pass."""
    st = {name: c.status for name, c in res.checks.items()}
    if st.get("static") == "fail" or st.get("reach") == "fail":
        res.verdict = "leak"
    elif "error" in st.values():
        res.verdict = "error"
    elif st.get("boundary") == "fail":
        res.verdict = "context error"
    else:
        res.verdict = "exempt"
    return res.verdict


def check_lookahead_families(view: StoreView, items: list[tuple[Family, FamilyResult]], *, seed: int, months: int,
                             pairs: int, samples: int, partitions: int) -> None:
    """Boundary and reach checks of the stored families that look ahead; sets their verdicts."""
    from bqx.validate.datachecks import boundaries

    stored = [(f, r) for f, r in items if r.checks["static"].status == "pass" and view.done(f)]
    bound = boundaries(view, [f for f, _ in stored], seed, months, pairs) if stored else {}
    for fam, res in stored:
        res.checks["boundary"] = bound[fam.name]
        res.checks["reach"] = check_reach(view, fam, partitions=partitions, samples=samples, seed=seed)
    for _, res in items:
        target_verdict(res)


__all__ = ["check_reach", "check_lookahead_families", "target_verdict"]
