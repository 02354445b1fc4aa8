"""The feature catalog is pinned: adding, renaming or redeclaring a feature is a visible diff.

Update after an intended change: BQX_UPDATE_GOLDEN=1 ./scripts/test tests/test_catalog.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from bqx.catalog import catalog as full_catalog
from bqx.catalog import markdown
from bqx.core.registry import REGISTRY

GOLDEN = Path(__file__).parent / "golden" / "catalog.json"


def catalog():
    """The built-in families' catalog (tests elsewhere may register user families in this process)."""
    return full_catalog(REGISTRY.builtin_names())


def test_catalog_matches_golden_file():
    rows = catalog()
    if os.environ.get("BQX_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(rows, indent=1) + "\n")
    golden = json.loads(GOLDEN.read_text())
    got = {r["name"]: r for r in rows}
    want = {r["name"]: r for r in golden}
    assert sorted(got) == sorted(want), (
        f"columns added {sorted(set(got) - set(want))[:10]}, removed {sorted(set(want) - set(got))[:10]}"
    )
    changed = [n for n in want if got[n] != want[n]]
    assert not changed, f"declarations changed: {changed[:10]}; see the module docstring to update"
    assert [r["name"] for r in rows] == [r["name"] for r in golden], "column order changed"


DOC = Path(__file__).parents[1] / "docs" / "FEATURES_CATALOG.md"


def test_catalog_names_are_unique_and_the_docs_reference_is_current():
    rows = catalog()
    names = [r["name"] for r in rows]
    assert len(names) == len(set(names))
    md = markdown(rows)
    assert all(f"`{n}`" in md for n in names)
    if os.environ.get("BQX_UPDATE_GOLDEN"):
        DOC.write_text(md)
    assert DOC.read_text() == md, "docs/FEATURES_CATALOG.md is stale; see the module docstring to update"


# Column counts per family, as FEATURES.md states them (608 features + 5 targets + 12 labels).
SPEC_COUNTS = {
    "rate_index": 4, "bqx": 37, "targets": 5, "bollinger_bqx": 21, "regression": 180,
    "bollinger_rate": 20, "statistics": 23, "volume": 10, "spread": 20, "time": 8, "lags": 148,
    "currency_indices": 8, "arbitrage": 4, "derived": 5, "fit_quality": 20, "regimes": 15,
    "quick_win": 15, "technical": 45, "advanced": 25, "labels": 12,
}


def test_family_column_counts_follow_the_spec():
    rows = catalog()
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["family"]] = counts.get(r["family"], 0) + 1
    for fam, n in counts.items():
        if fam in SPEC_COUNTS:
            assert n == SPEC_COUNTS[fam], f"{fam}: {n} columns, FEATURES.md says {SPEC_COUNTS[fam]}"
    assert sum(SPEC_COUNTS.values()) == 608 + 5 + 12
    assert set(counts) == set(SPEC_COUNTS), "every built-in family has its count from FEATURES.md here"


def test_a_user_family_in_its_own_stage_has_a_catalog_row():
    """A plugin family may declare a stage of its own; the catalog (and so export and signal) names it as its id."""
    import polars as pl

    from bqx import Column, family
    from bqx.catalog import catalog
    from bqx.core.registry import REGISTRY

    @family(name="cat_user_range", stage="cat_user_stage", inputs=("bars",), context=2,
            columns=lambda p: [Column("cat_user_range_3", "continuous", 2, "mean (h - l) over 3 bars")])
    def cat_user_range(frame: pl.DataFrame, ctx) -> pl.DataFrame:
        return frame.select((pl.col("high") - pl.col("low")).rolling_mean(3).alias("cat_user_range_3"))

    try:
        rows = catalog(["cat_user_range"])
        assert [(r["name"], r["stage"], r["stage_id"], r["context"]) for r in rows] == [
            ("cat_user_range_3", "cat_user_stage", "cat_user_stage", 2)]
    finally:
        REGISTRY.remove("cat_user_range")
