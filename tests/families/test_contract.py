"""One contract for every registered family, present and future (FEATURES.md Declarations, Numerics).

For each family: declared columns and dtypes; NULL exactly before each column's warm-up and
non-NULL after it where `nullable_when` does not hold; determinism; truncation invariance (the
bars after t cannot change rows <= t); month-boundary invariance (a month computed with its
declared context equals the whole series), on a month starting on a weekend (2024-09) and one
starting on a holiday (2025-01). Fixture windows come from the declared contexts.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from bqx.families import REGISTRY
from bqx.core.declaration import Family
from bqx.core.runner import baseline_time, compute_frames, resolve, split_pairs
from bqx.numerics import mismatches
from tests.conftest import sample_bars

PER_PAIR = ("EURUSD", "USDJPY", "GBPNZD")
BOUNDARIES = {
    "weekend": datetime(2024, 9, 1, tzinfo=timezone.utc),  # a Sunday
    "holiday": datetime(2025, 1, 1, tzinfo=timezone.utc),  # New Year's Day, market closed
}
BARS_PER_DAY = 1440


def _families() -> list[str]:
    return [f.name for f in REGISTRY]


def _max_context(fams: list[Family]) -> int:
    return max([f.context() for f in fams] + [1])


class World:
    """Whole-series results of every family on one fixture window, computed once."""

    def __init__(self, boundary: datetime, cross: bool):
        cross_names = [f.name for f in REGISTRY if f.cross_pair]
        fams = resolve(cross_names) if cross else [f for f in resolve(None) if not f.cross_pair]
        pairs = None if cross else PER_PAIR
        need = _max_context([f for f in fams if f.cross_pair == cross])
        days_before = 4 if cross else int(np.ceil(2.0 * need / BARS_PER_DAY)) + 6
        start = boundary - timedelta(days=days_before)
        end = boundary + timedelta(days=3)
        months = sorted({(start.year, start.month), (boundary.year, boundary.month)})
        first = f"{months[0][0]}-{months[0][1]:02d}"
        bars = sample_bars(pairs and tuple(pairs), first, len(months))
        bars = bars.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
        self.boundary = boundary
        self.bars = split_pairs(bars)
        self.baseline = baseline_time(min(f["ts"].min() for f in self.bars.values()))
        self.anchors: dict = {}
        self.frames, self.tables = compute_frames(self.bars, fams, baseline=self.baseline, anchors=self.anchors)

    def run(self, fam: Family, frames: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
        """Recompute `fam` alone on frames that already hold its inputs; returns its columns per pair."""
        names = fam.column_names()
        inputs = {p: f.drop([c for c in names if c in f.columns]) for p, f in frames.items()}
        out, _ = compute_frames(inputs, [fam], baseline=self.baseline, anchors=self.anchors)
        return {p: f.select("ts", *names) for p, f in out.items()}


_WORLDS: dict[tuple[str, bool], World] = {}


def world(kind: str, cross: bool) -> World:
    key = (kind, cross)
    if key not in _WORLDS:
        _WORLDS[key] = World(BOUNDARIES[kind], cross)
    return _WORLDS[key]


def _assert_agree(fam: Family, expected: pl.DataFrame, actual: pl.DataFrame, what: str, pair: str) -> None:
    assert expected["ts"].to_list() == actual["ts"].to_list(), f"{fam.name} {pair}: {what}: rows differ"
    for col in fam.columns():
        e = expected[col.name].to_numpy().astype(np.float64)
        a = actual[col.name].to_numpy().astype(np.float64)
        bad = mismatches(col, e, a)
        if bad.any():
            i = int(np.argmax(bad))
            raise AssertionError(
                f"{fam.name}.{col.name} {pair}: {what}: {int(bad.sum())} mismatches; first at "
                f"{expected['ts'][i]}: expected {e[i]!r}, got {a[i]!r}"
            )


@pytest.fixture(params=_families())
def fam(request) -> Family:
    return REGISTRY.get(request.param)


def test_declared_columns_and_dtypes(fam: Family):
    w = world("weekend", fam.cross_pair)
    cols = fam.columns()
    assert len({c.name for c in cols}) == len(cols)
    assert fam.lookahead() == 0 or fam.name == "targets", "only targets may look ahead"
    for pair, frame in w.frames.items():
        for c in cols:
            assert frame.schema[c.name] == pl.Float64, f"{fam.name}.{c.name} is {frame.schema[c.name]}"
            values = frame[c.name].drop_nulls().to_numpy()
            assert np.isfinite(values).all(), f"{fam.name}.{c.name} {pair}: NaN or inf"


def test_null_in_warmup_and_defined_after(fam: Family):
    w = world("weekend", fam.cross_pair)
    union = None
    if fam.cross_pair:
        union = pl.concat([f.select("ts") for f in w.frames.values()]).unique().sort("ts").with_row_index("u")
    for pair, frame in w.frames.items():
        position = np.arange(frame.height)
        if union is not None:
            position = frame.select("ts").join(union, on="ts", how="left")["u"].to_numpy()
        for c in fam.columns():
            null = frame[c.name].is_null().to_numpy()
            early = position < c.warmup
            assert null[early].all(), f"{fam.name}.{c.name} {pair}: a value before its warm-up of {c.warmup} rows"
            if c.nullable_when is None:
                late = np.arange(frame.height) >= c.warmup
                assert not null[late].any(), (
                    f"{fam.name}.{c.name} {pair}: NULL after its warm-up of {c.warmup} rows at "
                    f"{frame['ts'][int(np.argmax(null & late))]} and nullable_when is not declared"
                )


def test_deterministic(fam: Family):
    w = world("weekend", fam.cross_pair)
    again = w.run(fam, w.frames)
    for pair, frame in again.items():
        assert frame.equals(w.frames[pair].select("ts", *fam.column_names())), f"{fam.name} {pair}: not deterministic"


def test_truncation_invariance(fam: Family):
    """Removing the bars after t leaves rows <= t unchanged."""
    w = world("weekend", fam.cross_pair)
    all_ts = pl.concat([f["ts"] for f in w.frames.values()]).unique().sort()
    for q in (0.35, 0.62, 0.9):
        t = all_ts[int(q * (len(all_ts) - 1))]
        cut = {p: f.filter(pl.col("ts") <= t) for p, f in w.frames.items()}
        cut = {p: f for p, f in cut.items() if f.height}
        for pair, got in w.run(fam, cut).items():
            want = w.frames[pair].filter(pl.col("ts") <= t).select("ts", *fam.column_names())
            if fam.lookahead():
                # a target at row s needs rows up to s + lookahead: only those are comparable
                got = got.head(max(got.height - fam.lookahead(), 0))
                want = want.head(got.height)
            _assert_agree(fam, want, got, f"truncated at {t}", pair)


@pytest.mark.parametrize("kind", sorted(BOUNDARIES))
def test_month_boundary_invariance(fam: Family, kind: str):
    """The month computed from its declared context alone equals the whole series."""
    w = world(kind, fam.cross_pair)
    context = fam.context()
    sliced = {}
    for pair, frame in w.frames.items():
        first = frame["ts"].search_sorted(w.boundary)
        sliced[pair] = frame.slice(max(first - context, 0))
    for pair, got in w.run(fam, sliced).items():
        want = w.frames[pair].filter(pl.col("ts") >= w.boundary).select("ts", *fam.column_names())
        got = got.filter(pl.col("ts") >= w.boundary)
        assert want.height > 0
        _assert_agree(fam, want, got, f"month from {w.boundary:%Y-%m} with context {context}", pair)
