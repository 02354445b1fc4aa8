"""One contract for every registered family, present and future (FEATURES.md Declarations, Numerics).

For each family: declared columns and dtypes; NULL exactly before each column's warm-up and
non-NULL after it where `nullable_when` does not hold; determinism; truncation invariance (the
bars after t cannot change rows <= t); month-boundary invariance (a month computed with its
declared context equals the whole series), on a month starting on a weekend (2024-09) and one
starting on a holiday (2025-01). Fixture windows come from the declared contexts.
"""

from __future__ import annotations

import re
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
    assert fam.lookahead() == 0 or fam.stage == "targets", "only targets and labels (stage targets) may look ahead"
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


# -- stability: 1e-13 relative noise in every price moves no column beyond Agreement -------------------
PRICES = ("open", "high", "low", "close", "bid_open", "bid_high", "bid_low", "bid_close",
          "ask_open", "ask_high", "ask_low", "ask_close")
NOISE = 1e-13  # FEATURES.md Numerics, stable comparisons: independent |δ| <= 1e-13 per price
SMALL_NOISE = 1e-15
GYM = "datasets/data/FOREX_EURUSD_1H_ASK.csv"
#: Columns whose exact value moves beyond Agreement under 1e-13 noise because they cancel: a residual, a z-score,
#: a skewness or a difference of nearly equal spreads near 0 (the median-based tolerance is 1e-9 · median |v|,
#: and a 1e-13 change of a price is 1e-9 of a one-pip move). No comparison decides them: for these the test
#: demands a linear response instead (100x less noise moves them at least 10x less: no jump, no branch).
ILL_CONDITIONED = re.compile(
    r"reg_(idx|bqx)_w\d+_(a1|a2|resid|resid_z|vertex_u|snr|lin_tstat)|fq_(idx|bqx)_(fcst_err|rmse_trend_60)"
    r"|bqx_agg_accel(_lag\d+)?|spr_(change|range_60|slope_60|std_60|z_60)|stat_(kurt|skew|q50|ret_z)_60"
    r"|ti_(cci_20|chaikin_vol_10|kc_pos|stochrsi_k)|vol_wret_60|arb_resid_(bps|z_240)"
    r"|adv_(adx_slope_5|beta_usd_240|jb_240|kurt_240|skew_240|mom_divergence_60|rs_base_60|rs_quote_60)"
    r"|fq_(idx|bqx)_curv_agree")  # the sign of an ill-conditioned a2 at its zero threshold


def perturbed(bars: pl.DataFrame, scale: float, seed: int = 12) -> pl.DataFrame:
    """Every price (and bid/ask where present) times (1 + δ), δ = scale · u with u uniform in [−1, 1] per value."""
    rng = np.random.default_rng(seed)
    u = {c: rng.uniform(-1.0, 1.0, bars.height) for c in PRICES}
    return bars.with_columns([pl.col(c) * pl.Series(1.0 + scale * u[c]) for c in PRICES])


class Noisy:
    """Every family on one bar set, then on the same bars with NOISE and SMALL_NOISE (same directions)."""

    def __init__(self, bars: pl.DataFrame, fams: list[Family]):
        self.runs = [compute_frames(split_pairs(b), fams)[0]
                     for b in (bars, perturbed(bars, NOISE), perturbed(bars, SMALL_NOISE))]


def stability_failures(fam: Family, runs) -> list[str]:
    """What moved beyond Agreement under NOISE (for ILL_CONDITIONED columns: what does not respond linearly)."""
    base, noisy, small = runs
    failures = []
    for pair, frame in base.items():
        for col in fam.columns():
            e = frame[col.name].to_numpy().astype(np.float64)
            a = noisy[pair][col.name].to_numpy().astype(np.float64)
            bad = mismatches(col, e, a)
            if not bad.any():
                continue
            i = int(np.argmax(bad))
            what = (f"{fam.name}.{col.name} {pair}: {int(bad.sum())} of {e.shape[0]} rows moved beyond Agreement; "
                    f"first at {frame['ts'][i]}: {e[i]!r} -> {a[i]!r}")
            if not ILL_CONDITIONED.fullmatch(col.name):
                failures.append(what)
                continue
            s = small[pair][col.name].to_numpy().astype(np.float64)
            # a NULL may flip where the ratio's zero-denominator threshold is within noise of its value
            both = ~np.isnan(e) & ~np.isnan(a) & ~np.isnan(s)
            big_dev = np.max(np.abs(a - e)[both], initial=0.0)
            small_dev = np.max(np.abs(s - e)[both], initial=0.0)
            if not small_dev <= big_dev / 10.0:
                failures.append(what + f" (not linear: 100x less noise moves it {small_dev!r} vs {big_dev!r})")
    return failures


_NOISY: dict[str, Noisy] = {}


def noisy(kind: str) -> Noisy:
    """'sample': one month of M1 bars of PER_PAIR (per-pair families) or 5 days of all 28 pairs (cross-pair);
    'gym': gym-anytrading's EURUSD hourly ask file (6,225 real bars)."""
    if kind not in _NOISY:
        if kind == "gym":
            import importlib.resources

            from bqx.bars.readers import read_source

            bars = read_source(str(importlib.resources.files("gym_anytrading") / GYM), tz="UTC").bars
            fams = [f for f in resolve(None) if not f.cross_pair]
        elif kind == "sample":
            bars = sample_bars(PER_PAIR, "2024-07", 1)
            fams = [f for f in resolve(None) if not f.cross_pair]
        else:
            start = datetime(2024, 7, 8, tzinfo=timezone.utc)
            bars = sample_bars(None, "2024-07", 1).filter(pl.col("ts").is_between(start, start + timedelta(days=5)))
            fams = resolve([f.name for f in REGISTRY if f.cross_pair])
        _NOISY[kind] = Noisy(bars, fams)
    return _NOISY[kind]


@pytest.mark.parametrize("data", ["sample", "gym"])
def test_stable_under_rounding_noise(fam: Family, data: str):
    """FEATURES.md Numerics, stable comparisons: prices times (1 + δ), independent |δ| <= 1e-13, change no column
    beyond Agreement (one month of M1 bars of EURUSD, USDJPY, GBPNZD; 5 days of the 28 pairs for cross-pair
    families; a real hourly EURUSD file)."""
    if fam.cross_pair and data == "gym":
        pytest.skip("a cross-pair family needs the 28 pairs; the real file has one")
    world_ = noisy("cross" if fam.cross_pair else data)
    failures = stability_failures(fam, world_.runs)
    assert not failures, "\n".join(failures)


def test_stability_check_fails_for_an_exact_comparison_dmi():
    """A user family wrapping TA-Lib's ADX (exact comparisons of the up and down moves) fails the check."""
    import talib

    from bqx.core.declaration import Column
    from bqx.core.registry import family

    @family(name="user_talib_adx", stage="technical", inputs=("rate_index",), register=False, context=3000,
            columns=lambda p: [Column("user_adx_14", "continuous", 27, "TA-Lib ADX(14)", bounded=True)])
    def user_adx(frame: pl.DataFrame, ctx) -> pl.DataFrame:
        arr = [frame[c].to_numpy().astype(np.float64) for c in ("rate_index_high", "rate_index_low", "rate_index")]
        return pl.DataFrame([pl.Series("user_adx_14", talib.ADX(*arr, 14), nan_to_null=True)])

    bars = sample_bars(("EURUSD",), "2024-07", 1).head(20000)
    fams = resolve(["rate_index"]) + [user_adx]
    failures = stability_failures(user_adx, Noisy(bars, fams).runs)
    assert failures and "user_talib_adx.user_adx_14 EURUSD" in failures[0]
    # and bqx's own DMI passes on the same bars
    tech = REGISTRY.get("technical")
    assert not stability_failures(tech, Noisy(bars, resolve(["technical"])).runs)
