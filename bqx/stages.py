"""The stage DAG of PIPELINE.md §3: 18 ids, the plan's numbering, names used by the store and CLI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Unit = Literal["source", "pair-month", "month", "view", "check", "dataset"]


@dataclass(frozen=True)
class Stage:
    id: str
    name: str
    inputs: tuple[str, ...]  # stage names
    unit: Unit
    title: str


STAGES: tuple[Stage, ...] = (
    Stage("1.1", "bars", (), "source", "validated M1 bars"),
    Stage("1.5", "rate_index", ("bars",), "pair-month", "rate index"),
    Stage("1.6", "bqx", ("rate_index",), "pair-month", "backward momentum (BQX)"),
    Stage("1.7", "targets", ("bqx", "extraction"), "pair-month", "forward BQX targets and triple-barrier labels"),
    Stage("2.1.1", "bollinger_bqx", ("bqx",), "pair-month", "Bollinger bands on BQX"),
    Stage("2.1.2", "regression", ("rate_index", "bqx"), "pair-month", "rolling regressions"),
    Stage("2.1.3", "extraction", ("bars", "rate_index"), "pair-month",
          "bollinger_rate, statistics, volume, spread, time"),
    Stage("2.2", "lags", ("bqx",), "view", "lagged BQX (view, computed on load and export)"),
    Stage("2.3", "currency_indices", ("bars",), "month", "currency strength indices"),
    Stage("2.4", "arbitrage", ("bars",), "month", "triangular arbitrage"),
    Stage("2.5", "derived", ("bqx", "regression"), "pair-month", "derived features"),
    Stage("2.8", "fit_quality", ("regression", "rate_index", "bqx"), "pair-month", "R2/RMSE fit quality"),
    Stage("2.9", "regimes", ("technical", "extraction", "rate_index"), "pair-month", "regime detection"),
    Stage("S2.1", "quick_win", ("bars",), "pair-month", "quick-win price features"),
    Stage("S2.2", "technical", ("rate_index", "bars"), "pair-month", "technical indicators"),
    Stage("S2.3", "advanced", ("technical", "extraction", "currency_indices", "bars"), "month",
          "advanced cross-pair features"),
    Stage("2.6", "validation", ("*",), "check", "causality validation"),
    Stage("2.7", "export", ("*",), "dataset", "training-ready export"),
)

_BY_KEY = {s.name: s for s in STAGES} | {s.id: s for s in STAGES}


def stage(key: str) -> Stage:
    """A stage by name or id; an unknown key lists the known ones."""
    try:
        return _BY_KEY[key]
    except KeyError:
        known = ", ".join(f"{s.id} {s.name}" for s in STAGES)
        raise KeyError(f"unknown stage {key!r}; stages are: {known}") from None


#: Stages whose tasks compute and store features.
FEATURE_STAGES: tuple[Stage, ...] = tuple(s for s in STAGES if s.unit in ("pair-month", "month"))
