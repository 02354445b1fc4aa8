"""A feature family: one pure function plus its declaration (columns, inputs, context, lookahead).

`@family` (in `bqx.core.registry`) builds a `Family` and registers it.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np
import polars as pl

from bqx.bar_schema import PairSource as PairInfo  # what the store knows about one pair's bars

Kind = Literal["continuous", "level", "binary", "categorical", "ordinal", "count", "cyclic"]
KINDS: tuple[str, ...] = ("continuous", "level", "binary", "categorical", "ordinal", "count", "cyclic")
DISCRETE_KINDS: frozenset[str] = frozenset({"binary", "categorical", "ordinal", "count"})


@dataclass(frozen=True)
class Column:
    """One output column: its name, kind, warm-up rows and when it may be NULL after warm-up.

    `bounded` marks bounded ratios (r2, correlations, pctb, ranks, fractions), compared to 1e-6
    absolute (FEATURES.md Numerics).
    """

    name: str
    kind: Kind
    warmup: int
    description: str
    nullable_when: str | None = None
    bounded: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column {self.name}: kind {self.kind!r} is not one of {KINDS}")
        if self.warmup < 0:
            raise ValueError(f"column {self.name}: warmup must be >= 0, got {self.warmup}")


@dataclass(frozen=True)
class Ctx:
    """Everything a family function may know besides its frame.

    - `params`: the family's parameters (defaults overlaid with configuration).
    - `pair`: the pair of a per-pair task; `pairs`: every pair's info for cross-pair tasks.
    - `anchor`: what the family's `anchor` function fixed once per store (e.g. the baseline price).
    - `baseline_time`: 00:00 UTC on the first day of the earliest month in the store.
    """

    params: Mapping[str, Any]
    baseline_time: datetime
    pair: PairInfo | None = None
    pairs: Mapping[str, PairInfo] = field(default_factory=dict)
    anchor: Mapping[str, Any] | None = None


ComputeFn = Callable[[pl.DataFrame, Ctx], Any]
IntOrFn = int | Callable[[Mapping[str, Any]], int]


@dataclass(frozen=True)
class Family:
    """A declared feature family.

    `compute(frame, ctx)` receives the bars (and its input families' columns) of one pair in time
    order — context rows first — and returns a frame of exactly the declared columns, one row per
    input row, all Float64. A cross-pair family receives a long frame with a `pair` column for all
    pairs and returns `{"pairs": frame(pair, ts, columns...), <table>: frame(ts, ...)}`.
    """

    name: str
    stage: str
    inputs: tuple[str, ...]
    compute: ComputeFn
    columns_fn: Callable[[Mapping[str, Any]], Sequence[Column]]
    context_fn: IntOrFn
    lookahead_fn: IntOrFn = 0
    params: Mapping[str, Any] = field(default_factory=dict)
    view: bool = False
    cross_pair: bool = False
    tables: tuple[str, ...] = ()
    anchor: Callable[[pl.DataFrame, Ctx], Mapping[str, Any]] | None = None
    description: str = ""
    module: str = ""

    # -- declaration, resolved for a parameter set -------------------------------------------
    def resolve_params(self, overrides: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        params = dict(self.params)
        for key, value in (overrides or {}).items():
            if key not in params:
                known = ", ".join(sorted(params)) or "none"
                raise ValueError(f"family {self.name}: unknown parameter {key!r} (known: {known})")
            params[key] = _freeze(value)
        return MappingProxyType(params)

    def columns(self, params: Mapping[str, Any] | None = None) -> tuple[Column, ...]:
        return tuple(self.columns_fn(self.resolve_params(params) if params is None else params))

    def column_names(self, params: Mapping[str, Any] | None = None) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns(params))

    def context(self, params: Mapping[str, Any] | None = None) -> int:
        return _int_or_fn(self.context_fn, self.resolve_params() if params is None else params)

    def lookahead(self, params: Mapping[str, Any] | None = None) -> int:
        return _int_or_fn(self.lookahead_fn, self.resolve_params() if params is None else params)

    def __call__(self, frame: pl.DataFrame, ctx: Ctx) -> Any:
        return self.compute(frame, ctx)

    def source(self) -> str:
        return inspect.getsource(inspect.getmodule(self.compute))


def _int_or_fn(value: IntOrFn, params: Mapping[str, Any]) -> int:
    return int(value(params) if callable(value) else value)


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


class FamilyOutputError(RuntimeError):
    """A family returned something that does not match its declaration."""


def check_output(fam: Family, out: pl.DataFrame, height: int, params: Mapping[str, Any]) -> pl.DataFrame:
    """Verify one per-pair output against the declaration: names, order, Float64, height, no NaN/inf."""
    expected = fam.column_names(params)
    if not isinstance(out, pl.DataFrame):
        raise FamilyOutputError(f"family {fam.name} returned {type(out).__name__}, not a polars DataFrame")
    if tuple(out.columns) != expected:
        missing = [c for c in expected if c not in out.columns]
        extra = [c for c in out.columns if c not in expected]
        raise FamilyOutputError(
            f"family {fam.name} returned columns that differ from its declaration: "
            f"missing {missing}, undeclared {extra}" + ("" if missing or extra else " (order differs)")
        )
    if out.height != height:
        raise FamilyOutputError(f"family {fam.name} returned {out.height} rows for {height} input rows")
    bad_types = {c: str(t) for c, t in out.schema.items() if t != pl.Float64}
    if bad_types:
        raise FamilyOutputError(f"family {fam.name}: columns must be Float64, got {bad_types}")
    if out.height:
        # fast screen: a float sum skips NULLs and is finite whenever every value is finite (NaN and ±inf
        # propagate); only columns whose sum is not finite (NaN/inf, or an overflow) get the exact check
        sums = out.select(pl.all().sum()).row(0)
        suspect = [c for c, s in zip(out.columns, sums) if s is None or not math.isfinite(s)]
        bad: list[str] = []
        if suspect:
            finite = out.select([(pl.col(c).is_finite() | pl.col(c).is_null()).all() for c in suspect]).row(0)
            bad = [c for c, ok in zip(suspect, finite) if ok is not True]
        if bad:
            raise FamilyOutputError(
                f"family {fam.name}: columns {bad} contain NaN or infinity; undefined values must be NULL"
            )
    return out


def series(name: str, values: np.ndarray) -> pl.Series:
    """A Float64 series from a numpy array, NaN (and ±inf) becoming NULL."""
    arr = np.asarray(values, dtype=np.float64)
    if not np.isfinite(arr).all():
        arr = np.where(np.isfinite(arr), arr, np.nan)
    return pl.Series(name, arr, dtype=pl.Float64, nan_to_null=True)


def null_frame(names: Sequence[str], height: int) -> pl.DataFrame:
    """`height` rows of NULL Float64 columns: a family's output where it is undefined throughout (or empty input)."""
    return pl.DataFrame([pl.Series(n, [None] * height, dtype=pl.Float64) for n in names])
