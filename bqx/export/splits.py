"""Chronological train/validation/test splits: one boundary timestamp for all pairs, purge and embargo.

A bar stamped `ts` belongs to train when ts < train_end, to validation when train_end <= ts <
validation_end, to test when ts >= validation_end. Around each boundary b, counted per pair on that
pair's rows: the last `purge` rows before b are dropped (a target at row t reads rows t+1 ... t+h,
so with purge >= the largest horizon no row's target window reaches past b), and the first
`embargo` rows at or after b are dropped. A dropped bar is in no split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from bqx.errors import UsageError

SPLITS: tuple[str, ...] = ("train", "validation", "test")
BOUNDARY_NAMES: tuple[str, ...] = ("train_end", "validation_end")


@dataclass(frozen=True)
class Exclusion:
    """The rows one pair loses around one boundary: [first, last] timestamps and row counts."""

    boundary: str
    purge_first: datetime | None
    purge_last: datetime | None
    purge_rows: int
    embargo_first: datetime | None
    embargo_last: datetime | None
    embargo_rows: int

    def to_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Exclusion":
        return cls(**{k: (parse_ts(v) if k.endswith(("_first", "_last")) and v else v) for k, v in d.items()})


@dataclass(frozen=True)
class SplitPlan:
    """Boundaries (train_end, validation_end; None = that boundary does not exist) and per-pair exclusions."""

    train_end: datetime
    validation_end: datetime | None
    purge: int
    embargo: int
    method: str
    fractions: tuple[float, float, float] | None
    common_start: datetime
    common_end: datetime
    exclusions: Mapping[str, tuple[Exclusion, ...]] = field(default_factory=dict)

    @property
    def boundaries(self) -> dict[str, datetime]:
        out = {"train_end": self.train_end}
        if self.validation_end is not None:
            out["validation_end"] = self.validation_end
        return out

    def label(self, pair: str, ts: pl.Series) -> pl.Series:
        """Each row's split name, or NULL when it is purged or embargoed."""
        col = pl.col("ts")
        split = pl.when(col < self.train_end).then(pl.lit("train"))
        if self.validation_end is not None:
            split = split.when(col < self.validation_end).then(pl.lit("validation")).otherwise(pl.lit("test"))
        else:
            split = split.otherwise(pl.lit("validation"))
        dropped = pl.lit(False)
        for ex in self.exclusions.get(pair, ()):
            if ex.purge_rows:
                dropped = dropped | col.is_between(ex.purge_first, ex.purge_last)
            if ex.embargo_rows:
                dropped = dropped | col.is_between(ex.embargo_first, ex.embargo_last)
        expr = pl.when(dropped).then(pl.lit(None, dtype=pl.String)).otherwise(split)
        return pl.DataFrame({"ts": ts}).select(expr.alias("split"))["split"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "fractions": list(self.fractions) if self.fractions else None,
            "common_range": [self.common_start.isoformat(), self.common_end.isoformat()],
            "boundaries": {k: v.isoformat() for k, v in self.boundaries.items()},
            "rule": ("train: ts < train_end; validation: train_end <= ts < validation_end; test: ts >= "
                     "validation_end. One boundary timestamp for all pairs."),
            "purge_bars": self.purge,
            "embargo_bars": self.embargo,
            "purge_rule": (f"the last {self.purge} bars of each pair before each boundary are dropped, so no "
                           f"kept row's target window (rows t+1 ... t+h, h <= {self.purge}) reaches the boundary"),
            "embargo_rule": f"the first {self.embargo} bars of each pair at or after each boundary are dropped",
            "exclusions": {p: [e.to_dict() for e in exs] for p, exs in sorted(self.exclusions.items())},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "SplitPlan":
        b = d["boundaries"]
        return cls(
            train_end=parse_ts(b["train_end"]),
            validation_end=parse_ts(b["validation_end"]) if b.get("validation_end") else None,
            purge=int(d["purge_bars"]), embargo=int(d["embargo_bars"]), method=d["method"],
            fractions=tuple(d["fractions"]) if d.get("fractions") else None,
            common_start=parse_ts(d["common_range"][0]), common_end=parse_ts(d["common_range"][1]),
            exclusions={p: tuple(Exclusion.from_dict(e) for e in exs) for p, exs in d.get("exclusions", {}).items()},
        )


def parse_ts(value: str | datetime) -> datetime:
    """A UTC datetime from an ISO string or datetime; naive values are taken as UTC."""
    if isinstance(value, datetime):
        ts = value
    else:
        try:
            ts = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(f"{value!r} is not an ISO timestamp", hint="Write e.g. 2024-08-20 or 2024-08-20T12:00.") from None
    return ts.replace(tzinfo=timezone.utc) if ts.tzinfo is None else ts.astimezone(timezone.utc)


def _floor_minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def plan_splits(
    ts_by_pair: Mapping[str, np.ndarray],
    *,
    fractions: Sequence[float] | None = (0.8, 0.1, 0.1),
    train_end: str | datetime | None = None,
    validation_end: str | datetime | None = None,
    purge: int = 75,
    embargo: int = 1440,
) -> SplitPlan:
    """Boundaries and exclusions from each pair's sorted bar timestamps (int64 microseconds, UTC).

    With explicit `train_end` (and optionally `validation_end`) those are the boundaries; otherwise
    `fractions` cut the common date range (latest first bar to earliest last bar over the pairs)
    by time, each boundary floored to the minute.
    """
    if purge < 0 or embargo < 0:
        raise UsageError(f"purge and embargo must be >= 0, got {purge} and {embargo}")
    spans = {p: (int(t[0]), int(t[-1])) for p, t in ts_by_pair.items() if len(t)}
    if not spans:
        raise UsageError("no bars to split: the selected pairs have no rows in the store")
    start_us = max(s for s, _ in spans.values())
    end_us = min(e for _, e in spans.values())
    common_start, common_end = _from_us(start_us), _from_us(end_us)
    if train_end is not None:
        b1 = parse_ts(train_end)
        b2 = parse_ts(validation_end) if validation_end is not None else None
        if b2 is not None and b2 <= b1:
            raise UsageError(f"--val-end {b2.isoformat()} must be later than --train-end {b1.isoformat()}")
        method, fracs = "explicit", None
    else:
        if validation_end is not None:
            raise UsageError("--val-end needs --train-end")
        fracs = tuple(float(f) for f in (fractions or (0.8, 0.1, 0.1)))
        if len(fracs) != 3 or any(f < 0 for f in fracs) or abs(sum(fracs) - 1.0) > 1e-9:
            raise UsageError(f"--split needs three fractions >= 0 that sum to 1, got {fracs}")
        if fracs[0] <= 0:
            raise UsageError("the training fraction must be > 0 (the scaler is fitted on training rows)")
        if end_us <= start_us:
            raise UsageError(f"the pairs have no common date range (latest first bar {common_start}, earliest "
                             f"last bar {common_end})", hint="Export fewer pairs, or give --train-end/--val-end.")
        span = common_end - common_start
        b1 = _floor_minute(common_start + span * fracs[0])
        b2 = None if fracs[2] == 0 else _floor_minute(common_start + span * (fracs[0] + fracs[1]))
        b2 = b1 if (b2 is not None and fracs[1] == 0) else b2
        method = "fractions"
    bounds = [("train_end", b1)] + ([("validation_end", b2)] if b2 is not None else [])
    exclusions = {p: tuple(_exclusion(name, b, np.asarray(t, dtype=np.int64), purge, embargo) for name, b in bounds)
                  for p, t in sorted(ts_by_pair.items())}
    return SplitPlan(b1, b2, purge, embargo, method, fracs, common_start, common_end, exclusions)


def _exclusion(name: str, boundary: datetime, ts: np.ndarray, purge: int, embargo: int) -> Exclusion:
    i = int(np.searchsorted(ts, _to_us(boundary), side="left"))
    p0, e1 = max(i - purge, 0), min(i + embargo, len(ts))
    return Exclusion(
        boundary=name,
        purge_first=_from_us(ts[p0]) if i > p0 else None, purge_last=_from_us(ts[i - 1]) if i > p0 else None,
        purge_rows=i - p0,
        embargo_first=_from_us(ts[i]) if e1 > i else None, embargo_last=_from_us(ts[e1 - 1]) if e1 > i else None,
        embargo_rows=e1 - i,
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _to_us(ts: datetime) -> int:
    return (ts - _EPOCH) // timedelta(microseconds=1)


def _from_us(us: int | np.integer) -> datetime:
    return _EPOCH + timedelta(microseconds=int(us))
