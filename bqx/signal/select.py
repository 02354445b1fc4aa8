"""What `bqx signal` correlates: the features, the targets (from the declarations) and each pair's training rows.

Targets are the columns of every *target family* in the store, i.e. every family that declares a
lookahead (the fixed-horizon targets, the triple-barrier labels, a user family declared like a
target). Of the labels only the outcomes count: `lbl_tb_h{h}_side` and `lbl_tb_h{h}_ret`, not the
span `_t1` nor the weight `_w`. Features are the columns of the other families (views included).

Training rows are the export's: `bqx.export.splits.plan_splits` with the export's split settings
(fractions, purge, embargo from the configuration), purge and embargo applied; `split="all"` takes
every row.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from bqx.core.registry import REGISTRY
from bqx.core.runner import params_for
from bqx.errors import UsageError
from bqx.export import source
from bqx.export.spans import largest_span
from bqx.export.splits import SplitPlan, plan_splits
from bqx.store.backend import backend_for, is_url
from bqx.store.layout import partition_rel

LABELS = "labels"
LABEL_NON_OUTCOMES = re.compile(r"_(t1|w)$")  # the labels' span and sample weight are not outcomes
HORIZON = re.compile(r"_h(\d+)(?:_|$)")


@dataclass(frozen=True)
class Target:
    name: str
    family: str
    horizon: int


@dataclass(frozen=True)
class SignalSelection:
    """Features, targets and rows of one `bqx signal` run."""

    sel: source.Selection  # features + targets as columns, for the export's PairStream reader
    family_of: Mapping[str, str]  # feature -> family
    targets: tuple[Target, ...]
    plan: SplitPlan | None  # None with split "all"
    months: Mapping[str, tuple[str, ...]]  # pair -> months whose IC is computed
    read: Mapping[str, tuple[str, ...]]  # pair -> months read (one before the first computed one, for views)

    @property
    def features(self) -> tuple[str, ...]:
        return self.sel.features


def target_families(store: str | os.PathLike[str]) -> list[str]:
    """Registered families that declare a lookahead and are in the store, registry order."""
    root = os.fspath(store)
    if is_url(root):  # object storage: a stage is there when objects are under its prefix
        backend = backend_for(root)
        return [f.name for f in REGISTRY if not f.view and f.lookahead() > 0 and backend.stats(f.stage)]
    return [f.name for f in REGISTRY if not f.view and f.lookahead() > 0 and os.path.isdir(os.path.join(root, f.stage))]


def signal_targets(store: str | os.PathLike[str], params: Mapping[str, Mapping[str, Any]]) -> list[Target]:
    """The target columns of the store: every column of each target family, the labels' outcomes only."""
    out = []
    for name in target_families(store):
        fam = REGISTRY.get(name)
        p = params_for(fam, params)
        for col in fam.column_names(p):
            if name == LABELS and LABEL_NON_OUTCOMES.search(col):
                continue
            m = HORIZON.search(col)
            out.append(Target(col, name, int(m.group(1)) if m else fam.lookahead(p)))
    return out


def select(store: str | os.PathLike[str], *, pairs: Sequence[str] | None = None, families: Sequence[str] | None = None,
           start: str | None = None, end: str | None = None, split: str = "train",
           fractions: Sequence[float] = (0.8, 0.1, 0.1), purge: int | None = None, embargo: int = 1440) -> SignalSelection:
    """Resolve features, targets, the split plan and the months to compute; refuse what cannot be computed."""
    if split not in ("train", "all"):
        raise UsageError(f"--split must be train or all, got {split!r}")
    base = source.select(store, pairs, families, action="compute the signal of")
    params = base.params
    tnames = target_families(store)
    if families:
        looking = [f for f in families if f in tnames or REGISTRY.get(f).lookahead() > 0]
        if looking:
            raise UsageError(f"--families {looking}: these are targets, not features",
                             hint="Targets are always the store's target families; name feature families only.")
    feats = [n for n in base.families if n not in tnames and REGISTRY.get(n).lookahead() == 0]
    family_of = {c: n for n in feats for c in REGISTRY.get(n).column_names(params_for(REGISTRY.get(n), params))}
    targets = signal_targets(store, params)
    for t in {t.family for t in targets}:
        stage = REGISTRY.get(t).stage
        there = backend_for(base.store).stats(stage)  # one listing of the stage
        missing = [(p, m) for p, ms in base.months.items() for m in ms if partition_rel(stage, p, m) not in there]
        if missing:
            p, m = missing[0]
            raise UsageError(f"store {base.store} is incomplete: target family {t} lacks {len(missing)} partitions, "
                             f"e.g. pair {p} month {m}", hint=f"Run `bqx run --stages {stage}` first.")
    features = tuple(family_of)
    if not features:
        raise UsageError(f"store {base.store} has no feature families to correlate",
                         hint="Run `bqx run` first, or name stored families with --families.")
    sel = dataclasses.replace(base, families=tuple(feats) + tuple(dict.fromkeys(t.family for t in targets)),
                              features=features, targets=tuple(t.name for t in targets))
    plan = None
    if split == "train":
        horizon = largest_span(base.targets, {r["name"]: r["lookahead"] for r in base.catalog})  # the export's purge
        plan = plan_splits({p: source.pair_ts(base, p) for p in base.pairs}, fractions=fractions,
                           purge=horizon if purge is None else int(purge), embargo=embargo)
    months, read = {}, {}
    last = None if plan is None else plan.train_end.strftime("%Y-%m")
    for p, ms in base.months.items():
        keep = [m for m in ms if (start is None or m >= start) and (end is None or m <= end) and (last is None or m <= last)]
        if not keep:
            continue
        i = ms.index(keep[0])
        months[p] = tuple(keep)
        read[p] = tuple(ms[max(i - 1, 0):ms.index(keep[-1]) + 1])
    if not months:
        raise UsageError(f"no month of store {base.store} has {'training ' if plan else ''}rows in the selected range "
                         f"{start or 'first'} .. {end or 'last'}")
    return SignalSelection(sel, family_of, tuple(targets), plan, months, read)
