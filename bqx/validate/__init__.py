"""Causality validation (stage 2.6): no feature uses the future (PIPELINE.md §6).

`validate(store)` runs, per registered family (built-in or user-defined):
- static: only targets declare a lookahead; no family reads targets (targets are then exempt from the
  next three, but go through the boundary check and the reach check of bqx.validate.reach: rows after
  t + lookahead perturbed or removed leave row t unchanged);
- truncation: at N sampled bars per checked partition, recomputed on the rows up to t, the value
  at t equals the stored one;
- perturbation: altering the values, or removing and inserting rows, after t changes no row <= t;
- sweep: many cut points per recompute (bars perturbed at cuts spaced more than the declared
  context apart; every row outside the context of each perturbed bar must not change), so a leak
  on a fraction p of rows is caught with probability 1 - (1 - p)^cuts (docs/VALIDATION.md);
- boundary: a month computed with the declared context equals the continuous series from the
  pair's first bar (a failure here alone is a context error, not a leak).

Default coverage: per per-pair family 3 partitions (a JPY pair first, the first and last month
among them) x 6 timestamps (first and last bar of the month, the last bar of the data, the bar
after the longest gap, a bar after a short gap, random bars); per cross-pair family 1 month x 6
timestamps over every pair; boundary on 1 month (2 pairs, or every pair for cross-pair families)
over its first 2,000+ bars; sweep: 500 cuts per checked partition within 8 recomputes, and at least
500 per family (cuts spaced by the measured reach of a perturbation, see bqx.validate.sweep). The report is written to `<store>/validation/latest.json`.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

from bqx.store.lock import read_lock
from bqx.errors import TaskError, UsageError
from bqx.core.registry import REGISTRY
from bqx.validate.datachecks import (boundaries, check_family, default_workers, poolable, submit_all,
                                     submit_boundaries)
from bqx.validate.report import CheckResult, FamilyResult, ValidationReport, read_latest, write_latest
from bqx.validate.sampling import (DEFAULT_BOUNDARY_MONTHS, DEFAULT_BOUNDARY_PAIRS, DEFAULT_MONTH_TASKS,
                                   DEFAULT_PARTITIONS, DEFAULT_SAMPLES)
from bqx.validate.sweep import MAX_SWEEPS, TARGET_CUTS
from bqx.validate.reach import check_lookahead_families
from bqx.validate.static import check_static, is_target, target_path
from bqx.validate.storeview import StoreView, current_fingerprint

Progress = Callable[[str], None]


def validate(
    store: str | os.PathLike[str],
    families: Sequence[str] | None = None,
    samples: int | None = None,
    seed: int = 0,
    *,
    partitions: int | None = None,
    month_tasks: int | None = None,
    boundary_months: int | None = None,
    boundary_pairs: int | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    save: bool = True,
    workers: int | None = None,
    progress: Progress | None = None,
    cuts: int | None = None,
    sweeps: int | None = None,
) -> ValidationReport:
    """Validate the causality of the store's families; returns the report (see `report.passed`).

    `families`: names to check (default every registered family). `samples`: timestamps per
    checked partition (default 6). `partitions`: (pair, month) partitions per per-pair family
    (default 3); `month_tasks`: months per cross-pair family (default 1). `params`: family
    parameter overrides (default: those the store's run recorded). `workers`: processes for the
    built-in families' checks (default: up to 2, one per core; user families always run in this
    process). `save`: write the report to
    `<store>/validation/latest.json` (a validation of some families only goes to `partial.json`,
    so it never replaces the latest complete one). `cuts`: sweep cut points per checked partition
    (default 500), in at most `sweeps` recomputes (default 8); 0 turns the sweep off.
    """
    from bqx.store.state import open_state

    with read_lock(store, "validation"):
        state = open_state(store)  # read once under the lock: the gate and the store view share it
        _require_current(store, families, state)
        return _validate(store, families, samples, seed, partitions=partitions, month_tasks=month_tasks,
                         boundary_months=boundary_months, boundary_pairs=boundary_pairs, params=params, save=save,
                         workers=workers, progress=progress, cuts=cuts, sweeps=sweeps, state=state)


def _validate(store, families, samples, seed, *, partitions, month_tasks, boundary_months, boundary_pairs, params,
              save, workers, progress, cuts, sweeps, state=None) -> ValidationReport:
    t_start = time.perf_counter()
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    say = progress or (lambda _: None)
    n = DEFAULT_SAMPLES if samples is None else int(samples)
    k = DEFAULT_PARTITIONS if partitions is None else int(partitions)
    k_month = DEFAULT_MONTH_TASKS if month_tasks is None else int(month_tasks)
    b_months = DEFAULT_BOUNDARY_MONTHS if boundary_months is None else int(boundary_months)
    b_pairs = DEFAULT_BOUNDARY_PAIRS if boundary_pairs is None else int(boundary_pairs)
    n_cuts = TARGET_CUTS if cuts is None else int(cuts)
    n_sweeps = MAX_SWEEPS if sweeps is None else int(sweeps)
    if min(n, k, k_month, b_months, b_pairs, n_cuts, n_sweeps) < 0:
        raise UsageError("samples, partitions, month tasks, boundary months/pairs, cuts and sweeps must be >= 0")
    known = list(REGISTRY.names())
    selected = list(dict.fromkeys(families)) if families else known
    for name in selected:
        try:
            REGISTRY.get(name)
        except KeyError as exc:
            raise UsageError(str(exc)) from None
    view = StoreView(store, params, state=state)
    results: list[FamilyResult] = []
    checked = []
    lookahead_fams = []  # targets and labels: boundary and reach checks (bqx.validate.reach)
    for name in selected:
        fam = REGISTRY.get(name)
        p = view.fam_params(fam)
        res = FamilyResult(fam.name, fam.stage, fam.cross_pair, fam.context(p))
        res.checks["static"] = check_static(fam, p) if not is_target(fam) else _static_target(fam, p)
        results.append(res)
        if is_target(fam):
            res.verdict = "exempt"
            lookahead_fams.append((fam, res))
            continue
        if res.checks["static"].status != "pass":
            continue
        if not view.done(fam):
            res.verdict = "not stored"
            continue
        checked.append((fam, res))

    boundary: dict[str, CheckResult] = {}
    data_end = view.last_ts()
    kwargs = dict(samples=n, partitions=k, month_tasks=k_month, seed=seed, data_end=data_end, cuts=n_cuts,
                  sweeps=n_sweeps)
    contexts: dict[str, CheckResult] = {}
    n_workers = default_workers() if workers is None else max(1, int(workers))
    pooled = [f for f, _ in checked if poolable(f)]
    pool, futures = submit_all(view, pooled, n_workers, kwargs)
    in_pool = [f for f, _ in checked if f.name in futures]
    pending = submit_boundaries(pool, view, in_pool, seed, b_months, b_pairs) if pool is not None else []
    try:
        for fam, res in checked:
            boundary[fam.name] = CheckResult("boundary")
            if fam.name in futures:
                continue
            say(f"checking {fam.name}")
            trunc, pert, sweep, contexts[fam.name], res.partitions = check_family(view, fam, **kwargs)
            res.checks.update(truncation=trunc, perturbation=pert, sweep=sweep)
            view.clear()
        here = [f for f, _ in checked if f.name not in futures]
        if here:
            say("checking month boundaries")
            for cross in (True, False):
                group = [f for f in here if f.cross_pair == cross]
                if group:
                    boundary.update(boundaries(view, group, seed, b_months, b_pairs))
        for fam, res in checked:
            if fam.name in futures:
                say(f"waiting for {fam.name}")
                try:
                    trunc, pert, sweep, contexts[fam.name], res.partitions = futures[fam.name].result()
                except Exception:  # noqa: BLE001 - a worker that died: check the family here instead
                    trunc, pert, sweep, contexts[fam.name], res.partitions = check_family(view, fam, **kwargs)
                res.checks.update(truncation=trunc, perturbation=pert, sweep=sweep)
        if pending:
            say("waiting for the month boundaries")
        for group, job in pending:
            try:
                boundary.update(job.result())
            except Exception:  # noqa: BLE001 - a worker that died: check here instead
                boundary.update(boundaries(view, group, seed, b_months, b_pairs))
        for fam, res in checked:
            res.checks["boundary"] = merge_context(boundary[fam.name], contexts.get(fam.name))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if lookahead_fams:
        say("checking the boundary and reach of targets and labels")
        check_lookahead_families(view, lookahead_fams, seed=seed, months=b_months, pairs=b_pairs, samples=n,
                                 partitions=k)
    for res in results:
        res.decide()
    report = ValidationReport(
        store=str(view.root),
        passed=all(r.ok for r in results),
        complete=families is None or set(selected) >= set(known),
        fingerprint=view.fingerprint(),
        started_at=started,
        seconds=round(time.perf_counter() - t_start, 3),
        settings={"samples": n, "partitions": k, "month_tasks": k_month, "boundary_months": b_months,
                  "boundary_pairs": b_pairs, "seed": seed, "cuts": n_cuts, "sweeps": n_sweeps, "families": selected},
        coverage=(f"per per-pair family {k} partitions x {n} timestamps; per cross-pair family {k_month} month(s) x "
                  f"{n} timestamps over every pair; sweep {n_cuts} cuts per partition in <= {n_sweeps} recomputes; "
                  f"boundary on {b_months} month(s), {b_pairs} pairs (every pair for cross-pair families)"),
        families=results,
    )
    if save:
        write_latest(view.root, report, partial=not report.complete)
    return report


def _require_current(store: str | os.PathLike[str], families: Sequence[str] | None, state: Any) -> None:
    """Refuse (exit 1) a store whose computed stages have failed, blocked, stale or missing tasks (bqx.engine.gate).

    The stages checked are those the manifest has tasks of (a stage never computed is reported
    "not stored" by the validation itself), of the selected families when `families` is given.
    """
    from bqx.engine.gate import require_current

    if not state.has_manifest:
        return  # not a store: StoreView says so
    computed = state.stages()
    if families:
        wanted = set()
        for name in families:
            try:
                wanted.add(REGISTRY.get(name).stage)
            except KeyError as exc:
                raise UsageError(str(exc)) from None
        computed &= wanted
    if computed:
        require_current(store, stages=sorted(computed), action="validate", store_state=state)


def merge_context(boundary: CheckResult, context: CheckResult | None) -> CheckResult:
    """The boundary check with the sweep's context failures (rows changed beyond the declared context) added."""
    if context is None or context.status == "pass":
        return boundary
    if boundary.status == "skip":
        boundary.status, boundary.note = "pass", ""
    for failure in context.failures:
        boundary.fail(failure)
    boundary.mismatches += max(0, context.mismatches - len(context.failures))
    return boundary


def _static_target(fam: Any, params: Mapping[str, Any]) -> CheckResult:
    res = CheckResult("static", samples=1, compared=1, note="targets may look ahead")
    return res


def latest_validation(store: str | os.PathLike[str], state: Any = None) -> dict[str, Any] | None:
    """The store's latest validation report as a dict (None when there is none).

    Adds `current`: True when the store's manifest state (tasks and bars) is still the one validated
    (`state`: the store's StoreState when the caller has opened it already, else it is read).
    Export requires `passed and complete and current`.
    """
    import json

    try:
        text = read_latest(store)
        data = json.loads(text) if text is not None else None
    except (OSError, ValueError):
        return None
    if data is None:
        return None
    data["current"] = data.get("fingerprint") == current_fingerprint(store, state)
    return data


def require_passed(store: str | os.PathLike[str]) -> dict[str, Any]:
    """The latest validation, or a TaskError saying why it does not allow an export."""
    data = latest_validation(store)
    if data is None:
        raise TaskError(f"store {store} has not been validated", hint="Run `bqx validate` (or export with --no-validate).")
    if not data.get("passed"):
        raise TaskError(f"the latest validation of {store} failed", hint="See `bqx validate`; fix the families, rerun.")
    if not data.get("complete"):
        raise TaskError(f"the latest validation of {store} checked only some families", hint="Run `bqx validate`.")
    if not data.get("current"):
        raise TaskError(f"store {store} changed since its latest validation", hint="Run `bqx validate` again.")
    return data


def validate_after_run(store: str | os.PathLike[str], **kwargs: Any) -> ValidationReport:
    """For `bqx run --validate`: validate every family, save the report, raise TaskError (exit 1) if it failed."""
    report = validate(store, **kwargs)
    if not report.passed:
        raise TaskError(report.summary(), hint="Run `bqx validate` for the full report.")
    return report


__all__ = ["validate", "latest_validation", "require_passed", "validate_after_run", "ValidationReport", "target_path"]
