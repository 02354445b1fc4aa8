"""The summary statistics by hand on a tiny IC table."""

from __future__ import annotations

import math

import polars as pl
import pytest

from bqx.signal.select import Target
from bqx.signal.summary import family_summary, feature_summary, strongest

TARGETS = [Target("y_h15", "targets", 15), Target("y_h30", "targets", 30)]
FAMILY_OF = {"a": "fa", "b": "fa", "c": "fb"}


def _cells() -> pl.DataFrame:
    rows = [
        # feature a against y_h15: months m1 (pairs P, Q) and m2 (P, Q, one NULL cell)
        ("a", "y_h15", "P", "m1", 0.10, 500), ("a", "y_h15", "Q", "m1", 0.30, 500),
        ("a", "y_h15", "P", "m2", -0.10, 500), ("a", "y_h15", "Q", "m2", None, 40),
        ("a", "y_h15", "P", "m3", 0.20, 500),
        # feature b against y_h15: two cells, same month
        ("b", "y_h15", "P", "m1", -0.05, 300), ("b", "y_h15", "Q", "m1", -0.15, 300),
        # feature c: only NULL cells
        ("c", "y_h15", "P", "m1", None, 10),
        # y_h30: a single cell of a
        ("a", "y_h30", "P", "m1", 0.40, 500),
    ]
    return pl.DataFrame(rows, schema={"feature": pl.String, "target": pl.String, "pair": pl.String, "month": pl.String,
                                      "ic": pl.Float64, "n": pl.Int64}, orient="row")


def test_feature_statistics_by_hand():
    s = feature_summary(_cells(), FAMILY_OF, TARGETS)
    a = s.filter((pl.col("feature") == "a") & (pl.col("target") == "y_h15")).row(0, named=True)
    cells = [0.10, 0.30, -0.10, 0.20]
    mean = (0.10 + 0.30 - 0.10 + 0.20) / 4  # 0.125
    std = math.sqrt(sum((c - mean) ** 2 for c in cells) / (4 - 1))
    assert a["cells"] == 4 and a["rows"] == 2000 and a["months"] == 3
    assert a["mean_ic"] == pytest.approx(mean)
    assert a["std_ic"] == pytest.approx(std)
    assert a["ir"] == pytest.approx(mean / std)
    assert a["sign_share"] == pytest.approx(3 / 4)  # three positive cells of four
    monthly = [(0.10 + 0.30) / 2, -0.10, 0.20]  # pairs averaged within a month first
    mm = sum(monthly) / 3
    ms = math.sqrt(sum((m - mm) ** 2 for m in monthly) / 2)
    assert a["t_stat"] == pytest.approx(mm / (ms / math.sqrt(3)))
    assert (a["family"], a["target_family"], a["horizon"]) == ("fa", "targets", 15)

    b = s.filter((pl.col("feature") == "b") & (pl.col("target") == "y_h15")).row(0, named=True)
    assert b["mean_ic"] == pytest.approx(-0.10) and b["sign_share"] == 1.0
    assert b["months"] == 1 and b["t_stat"] is None  # one month: no t
    c = s.filter(pl.col("feature") == "c").row(0, named=True)
    assert c["cells"] == 0 and c["mean_ic"] is None and c["t_stat"] is None and c["sign_share"] is None
    one = s.filter((pl.col("feature") == "a") & (pl.col("target") == "y_h30")).row(0, named=True)
    assert one["mean_ic"] == pytest.approx(0.40) and one["std_ic"] is None and one["ir"] is None
    assert s["feature"].to_list() == ["a", "a", "b", "c"]  # catalog order, then target order


def test_family_statistics_and_strongest():
    s = feature_summary(_cells(), FAMILY_OF, TARGETS)
    f = family_summary(s)
    fa = f.filter((pl.col("family") == "fa") & (pl.col("target") == "y_h15")).row(0, named=True)
    assert fa["features"] == 2
    assert fa["mean_abs_ic"] == pytest.approx((0.125 + 0.10) / 2)
    assert (fa["top_feature"], fa["max_abs_ic"]) == ("a", pytest.approx(0.125))
    assert f.filter(pl.col("family") == "fb").height == 0  # no defined IC in family fb
    top = strongest(s, 2)
    assert top.select("feature", "target").rows() == [("a", "y_h30"), ("a", "y_h15")]
