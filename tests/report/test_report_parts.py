"""The report's computations on hand-made data: gaps, downsampling, correlations, footer statistics, critical path."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from bqx.store.layout import partition_path, write_parquet
from bqx.report import downsample
from bqx.report.context import Context
from bqx.report.sec_coverage import gaps
from bqx.report.sec_features import footer_stats, pairwise_corr, spread
from bqx.report.sec_run import critical_path

UTC = timezone.utc


def _ctx(root: Path, bars: dict) -> Context:
    return Context(root=root, bars=bars, specs={}, tasks=[], runs=[], bar_rows={})


def test_gaps_skip_the_weekend_close_but_not_a_weekday_hole(tmp_path):
    fri = datetime(2024, 7, 5, 20, 55, tzinfo=UTC)  # Friday
    ts = [fri + timedelta(minutes=i) for i in range(5)]  # 20:55 .. 20:59
    sun = datetime(2024, 7, 7, 21, 0, tzinfo=UTC)  # Sunday open: a 2,881-minute weekend gap
    ts += [sun + timedelta(minutes=i) for i in range(3)]  # 21:00, 21:01, 21:02
    ts += [sun + timedelta(minutes=10)]  # 21:10: a weekday gap of 8 minutes (7 missing bars)
    f = partition_path(tmp_path, "bars", "EURUSD", "2024-07")
    write_parquet(pl.DataFrame({"ts": ts}, schema={"ts": pl.Datetime("us", "UTC")}), f)
    g = gaps(_ctx(tmp_path, {("EURUSD", "2024-07"): f}))
    assert g.select("pair", "minutes").rows() == [("EURUSD", 8)]
    assert g["from"][0] == sun + timedelta(minutes=2)


def test_downsample_last_and_extreme_per_bucket():
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    frame = pl.DataFrame({"ts": [t0 + timedelta(minutes=i) for i in range(6)],
                          "v": [1.0, -5.0, 2.0, 3.0, None, -1.0]}).lazy()
    assert downsample.every(frame, points=3) == "2m"  # 6 minutes over 3 buckets
    last = downsample.last(frame, ["v"], points=3)
    assert last["v"].to_list() == [-5.0, 3.0, -1.0]  # buckets [1, -5], [2, 3], [NULL, -1]
    ext = downsample.extreme(frame, ["v"], points=3)
    assert ext["v"].to_list() == [-5.0, 3.0, -1.0]  # largest |v|: |-5| > 1, 3 > 2, |-1| > NULL


def test_pairwise_correlation_matches_pandas_with_nulls():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 4)) + 1e6  # a large mean must not cost precision
    x[:, 1] = 0.5 * x[:, 0] + rng.standard_normal(400)
    x[rng.random((400, 4)) < 0.2] = np.nan
    x[:, 3] = np.nan
    x[:2, 3] = [1.0, 2.0]  # only 2 rows: undefined
    got = pairwise_corr(x)
    want = pd.DataFrame(x).corr(min_periods=3).to_numpy()
    assert np.allclose(got[:3, :3], want[:3, :3], atol=1e-9)
    assert np.isnan(got[3]).all() and np.isnan(got[:, 3]).all()


def test_footer_statistics_equal_a_full_read(tmp_path):
    a = pl.DataFrame({"ts": [1, 2, 3], "x": [1.5, None, -2.0], "c": [7.0, 7.0, None]})
    b = pl.DataFrame({"ts": [4, 5], "x": [9.0, None], "c": [7.0, 7.0]})
    files = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    write_parquet(a, files[0])
    write_parquet(b, files[1])
    st = footer_stats(files, ["x", "c"])
    assert st["x"] == {"rows": 5, "nulls": 2, "min": -2.0, "max": 9.0}
    assert st["c"] == {"rows": 5, "nulls": 1, "min": 7.0, "max": 7.0}  # constant: min == max


def test_spread_covers_pairs_and_months():
    keys = [(p, m) for p in ("A", "B", "C") for m in ("01", "02", "03", "04")]
    # pairs at round(k * 2 / 3) = 0, 1, 1, 2 and months at round(k * 3 / 3) = 0, 1, 2, 3
    assert spread(keys, 4) == [("A", "01"), ("B", "02"), ("B", "03"), ("C", "04")]
    assert spread(keys[:3], 6) == keys[:3]
    holes = [k for k in keys if k != ("B", "02")]
    assert spread(holes, 4) == [("A", "01"), ("B", "01"), ("B", "03"), ("C", "04")]  # B's nearest month to 02


def test_critical_path_follows_the_dag():
    from bqx.engine.plan import stage_specs

    specs = stage_specs()
    ctx = Context(root=Path("."), bars={}, specs=specs, tasks=[], runs=[], bar_rows={})
    seconds = {s: 1.0 for s in specs} | {"regression": 10.0, "fit_quality": 5.0}
    path, total = critical_path(ctx, seconds)
    assert path == ["rate_index", "bqx", "regression", "fit_quality"]  # fit_quality reads regression, bqx, rate_index
    assert total == 1.0 + 1.0 + 10.0 + 5.0


def test_downsample_breaks_lines_at_empty_buckets():
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    frame = pl.DataFrame({"ts": [t0 + timedelta(minutes=i) for i in (0, 1, 4, 5)], "v": [1.0, 2.0, 3.0, 4.0]}).lazy()
    out = downsample.last(frame, ["v"], points=3)  # 2-minute buckets at 0, 2, 4; the one at 2 is empty
    assert out["ts"].to_list() == [t0 + timedelta(minutes=i) for i in (0, 2, 4)]
    assert out["v"].to_list() == [2.0, None, 4.0]
