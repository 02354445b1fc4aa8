"""The scaler: mean and population std per continuous column, fitted in one streaming pass.

Each block (one pair-month of training rows) is summarised in float64 by an exact two-pass
count/mean/M2 over its non-NULL values; blocks are merged with Chan's parallel update, so the
whole dataset is never in memory and the result does not depend on how rows were cut into blocks
(beyond float64 rounding). A column is constant when its std is <= max(1e-9 * |mean|, 1e-12)
(FEATURES.md Numerics); it is reported and transformed with scale 1. A column with no training
value gets no entry (there is nothing to fit): it is listed under `empty` (per group: "all" for
a global scaler, the pair for a per-pair one) with the reason, and left untransformed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

#: Kinds scaled by default (FEATURES.md Declarations); the others are only scaled when asked.
SCALED_KINDS: tuple[str, ...] = ("continuous", "level")
GLOBAL = "global"
PER_PAIR = "per-pair"


class Moments:
    """Running count, mean and M2 (sum of squared deviations) per column, in float64."""

    def __init__(self, columns: Sequence[str]):
        self.columns = tuple(columns)
        k = len(self.columns)
        self.n = np.zeros(k, dtype=np.float64)
        self.mean = np.zeros(k, dtype=np.float64)
        self.m2 = np.zeros(k, dtype=np.float64)

    def update(self, frame: pl.DataFrame) -> None:
        """Fold one block of rows in (NULLs ignored)."""
        if not self.columns or frame.height == 0:
            return
        cols = [pl.col(c).cast(pl.Float64) for c in self.columns]
        x = frame.select(self.columns)
        stats = x.select(pl.all().count().name.prefix("n_"), pl.all().cast(pl.Float64).mean().name.prefix("m_")).row(0)
        k = len(self.columns)
        n_b = np.asarray(stats[:k], dtype=np.float64)
        mean_b = np.asarray([np.nan if v is None else v for v in stats[k:]], dtype=np.float64)
        m2_row = x.select([
            ((c - (0.0 if np.isnan(m) else float(m))) ** 2).sum().alias(f"s{i}")
            for i, (c, m) in enumerate(zip(cols, mean_b))
        ]).row(0)
        m2_b = np.asarray(m2_row, dtype=np.float64)
        self._merge(n_b, np.nan_to_num(mean_b), m2_b)

    def merge(self, other: "Moments") -> None:
        if other.columns != self.columns:
            other = other.subset(self.columns)
        self._merge(other.n, other.mean, other.m2)

    def subset(self, columns: Sequence[str]) -> "Moments":
        """These moments for `columns` only (each must be one of this object's columns)."""
        at = {c: i for i, c in enumerate(self.columns)}
        try:
            idx = np.asarray([at[c] for c in columns], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"no moments for column {exc.args[0]}") from None
        out = Moments(columns)
        out.n, out.mean, out.m2 = self.n[idx], self.mean[idx], self.m2[idx]
        return out

    def _merge(self, n_b: np.ndarray, mean_b: np.ndarray, m2_b: np.ndarray) -> None:
        n = self.n + n_b
        safe = np.where(n > 0, n, 1.0)
        delta = mean_b - self.mean
        self.mean = np.where(n > 0, self.mean + delta * (n_b / safe), 0.0)
        self.m2 = self.m2 + m2_b + delta * delta * (self.n * n_b / safe)
        self.n = n

    def std(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.m2, 0.0) / np.where(self.n > 0, self.n, 1.0))


@dataclass(frozen=True)
class ColumnScale:
    """One column's fitted parameters; `scale` is std, or 1 for a constant column."""

    n: int
    mean: float | None
    std: float | None
    scale: float | None
    constant: bool

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "std": self.std, "scale": self.scale, "constant": self.constant}


EMPTY_REASON = "no non-NULL value in the training rows: nothing to fit, left untransformed"


def column_scales(m: Moments) -> dict[str, ColumnScale]:
    """The fitted columns (at least one training value); columns without one are left out (see `empty_columns`)."""
    std = m.std()
    out = {}
    for i, name in enumerate(m.columns):
        n = int(m.n[i])
        if n == 0:
            continue
        mean, s = float(m.mean[i]), float(std[i])
        constant = s <= max(1e-9 * abs(mean), 1e-12)
        out[name] = ColumnScale(n, mean, s, 1.0 if constant else s, constant)
    return out


def empty_columns(m: Moments) -> list[str]:
    return [c for i, c in enumerate(m.columns) if m.n[i] == 0]


@dataclass
class Scaler:
    """Fitted parameters, global (`pairs` empty, `columns` set) or per pair (`pairs` set)."""

    scope: str
    kinds: tuple[str, ...]
    columns: dict[str, ColumnScale] = field(default_factory=dict)
    pairs: dict[str, dict[str, ColumnScale]] = field(default_factory=dict)
    empty: dict[str, list[str]] = field(default_factory=dict)  # group ("all" or pair) -> columns without training values

    def for_pair(self, pair: str) -> dict[str, ColumnScale]:
        return self.pairs.get(pair, {}) if self.scope == PER_PAIR else self.columns

    def transform(self, frame: pl.DataFrame, pair: str) -> pl.DataFrame:
        """(x - mean) / scale in float64 for every fitted column; other columns unchanged."""
        exprs = [((pl.col(c).cast(pl.Float64) - p.mean) / p.scale).alias(c)
                 for c, p in self.for_pair(pair).items() if p.mean is not None and c in frame.columns]
        return frame.with_columns(exprs) if exprs else frame

    def report(self) -> dict[str, Any]:
        groups = {"all": self.columns} if self.scope == GLOBAL else self.pairs
        return {
            "constant": {g: sorted(c for c, p in cols.items() if p.constant) for g, cols in groups.items()},
            "empty": {g: sorted(self.empty.get(g, [])) for g in groups},
        }

    def fitted_columns(self) -> list[str]:
        """Every column with an entry (fitted on at least one training value) in some group."""
        groups = [self.columns] if self.scope == GLOBAL else list(self.pairs.values())
        return sorted({c for cols in groups for c in cols})

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "scope": self.scope,
            "kinds": list(self.kinds),
            "fitted_on": "purged training rows only, NULLs ignored, one streaming pass (float64, Chan merge)",
            "std": "population (ddof = 0)",
            "transform": "(x - mean) / scale; scale = std, or 1 for a constant column; unfitted columns unchanged",
        }
        if self.scope == GLOBAL:
            body["columns"] = {c: p.to_dict() for c, p in self.columns.items()}
        else:
            body["pairs"] = {pair: {c: p.to_dict() for c, p in cols.items()} for pair, cols in sorted(self.pairs.items())}
        body["empty"] = {g: {c: EMPTY_REASON for c in sorted(cols)} for g, cols in sorted(self.empty.items()) if cols}
        body["report"] = self.report()
        return body

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Scaler":
        empty = {g: list(v) for g, v in d.get("empty", {}).items()}

        def cols(m: Mapping[str, Any], group: str) -> dict[str, ColumnScale]:
            for c, v in m.items():  # an export written before the `empty` list: entries with n = 0
                if not v.get("n"):
                    empty.setdefault(group, []).append(c)
            return {c: ColumnScale(**v) for c, v in m.items() if v.get("n")}

        return cls(scope=d["scope"], kinds=tuple(d.get("kinds", SCALED_KINDS)), columns=cols(d.get("columns", {}), "all"),
                   pairs={p: cols(v, p) for p, v in d.get("pairs", {}).items()}, empty=empty)


class ScalerFit:
    """Accumulates training blocks, globally or per pair, and yields the Scaler."""

    def __init__(self, columns: Sequence[str], scope: str = GLOBAL, kinds: Sequence[str] = SCALED_KINDS):
        if scope not in (GLOBAL, PER_PAIR):
            raise ValueError(f"scaler scope must be {GLOBAL!r} or {PER_PAIR!r}, got {scope!r}")
        self.columns = tuple(columns)
        self.scope = scope
        self.kinds = tuple(kinds)
        self.moments: dict[str, Moments] = {}

    def update(self, pair: str, frame: pl.DataFrame) -> None:
        key = pair if self.scope == PER_PAIR else GLOBAL
        if key not in self.moments:
            self.moments[key] = Moments(self.columns)
        self.moments[key].update(frame)

    def moments_of(self, frame: pl.DataFrame) -> Moments:
        """One block's moments, to `merge` later (blocks may be summarised on several threads)."""
        m = Moments(self.columns)
        m.update(frame)
        return m

    def merge(self, pair: str, block: Moments | None) -> None:
        """Fold in a block summarised by `moments_of` (in a fixed order, for reproducible rounding)."""
        if block is None:
            return
        key = pair if self.scope == PER_PAIR else GLOBAL
        if key not in self.moments:
            self.moments[key] = Moments(self.columns)
        self.moments[key].merge(block)

    def result(self, pairs: Sequence[str] = ()) -> Scaler:
        if self.scope == GLOBAL:
            m = self.moments.get(GLOBAL, Moments(self.columns))
            return Scaler(GLOBAL, self.kinds, columns=column_scales(m), empty={"all": empty_columns(m)})
        keys = sorted(set(pairs) | set(self.moments))
        ms = {p: self.moments.get(p, Moments(self.columns)) for p in keys}
        return Scaler(PER_PAIR, self.kinds, pairs={p: column_scales(m) for p, m in ms.items()},
                      empty={p: empty_columns(m) for p, m in ms.items()})


def written_summary(frame: pl.DataFrame, columns: Sequence[str]) -> dict[str, Any]:
    """What the export checks need of a file beyond its bytes: rows, and for training files the
    moments and largest magnitude of `columns`, computed from the values exactly as written."""
    out: dict[str, Any] = {"rows": frame.height}
    if columns:
        m = Moments(columns)
        m.update(frame)
        x = frame.select(columns)
        mx = x.select(pl.all().cast(pl.Float64).abs().max().fill_null(0.0)).row(0)
        out.update(moments=m, maxabs=dict(zip(columns, (float(v) for v in mx))))
    return out
