"""Cross-validation folds in the export (PIPELINE.md §7): purge by span, embargo, CPCV splits and paths,
the metadata, the per-split scalers, the reader and the checks."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from itertools import combinations
from math import comb

import numpy as np
import polars as pl
import pytest

from bqx.errors import UsageError
from bqx.export import check_export, export, folds
from bqx.export.folds import CvSpec, FoldPlan, parse_cv, paths_of, splits_of
from bqx.export.splits import _to_us

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _hand_built(spans: np.ndarray, embargo: int = 3) -> tuple[FoldPlan, dict[str, np.ndarray], np.ndarray]:
    """100 one-minute rows of one pair, 4 groups of 25 rows, CPCV k = 2."""
    ts = np.asarray([_to_us(T0 + timedelta(minutes=i)) for i in range(100)], dtype=np.int64)
    spec = CvSpec("cpcv", 4, 2)
    edges = [T0 + timedelta(minutes=25 * g) for g in range(5)]
    splits = splits_of(spec)
    fp = FoldPlan(spec, edges, embargo, splits, paths_of(spec, splits))
    return fp, fp.columns(ts, ts, spans, np.ones(100, dtype=bool)), ts


def test_purge_by_span_keeps_what_a_fixed_purge_drops_and_drops_exactly_the_rows_reaching_a_test_group():
    rng = np.random.default_rng(3)
    spans = rng.integers(1, 11, size=100)  # t1 of a 10-bar label: 1 ... 10
    fp, cols, _ = _hand_built(spans)
    s = [i for i, (t, _) in enumerate(fp.splits) if t == (1, 3)][0]  # test groups 1 (rows 25-49) and 3 (75-99)
    train = fp.train_mask(s, *(cols[c].astype(np.int64) for c in ("cv_group", "cv_reach", "cv_embargo")))
    test_rows = set(range(25, 50)) | set(range(75, 100))
    embargoed = set(range(50, 53))  # the 3 rows after test group 1
    want = [i for i in range(100) if i not in test_rows and i not in embargoed
            and not any(j in test_rows for j in range(i, min(i + spans[i], 99) + 1))]
    assert np.flatnonzero(train).tolist() == want
    fixed = [i for i in range(100) if i not in test_rows and i not in embargoed
             and not any(j in test_rows for j in range(i, min(i + 10, 99) + 1))]
    kept_by_span = sorted(set(want) - set(fixed))
    assert kept_by_span, "the span purge keeps rows a fixed 10-bar purge drops"
    assert all(i + spans[i] < 25 or 53 <= i < 75 for i in kept_by_span)
    dropped = [i for i in range(100) if i not in test_rows and i not in embargoed and i not in want]
    assert dropped and all(i + spans[i] >= 25 if i < 25 else i + spans[i] >= 75 for i in dropped)


def test_cpcv_6_2_has_15_splits_and_5_complete_paths():
    spec = parse_cv("cpcv:6,2")
    splits = splits_of(spec)
    assert len(splits) == 15 and [t for t, _ in splits] == list(combinations(range(6), 2))
    paths = paths_of(spec, splits)
    assert len(paths) == 5
    for path in paths:
        assert all(g in splits[s][0] for g, s in enumerate(path))
    assert sorted((s, g) for path in paths for g, s in enumerate(path)) == sorted((s, g) for s, (t, _) in enumerate(splits) for g in t)
    assert len(splits_of(parse_cv("cpcv:12,3"))) == 220 and len(paths_of(parse_cv("cpcv:12,3"), splits_of(parse_cv("cpcv:12,3")))) == comb(11, 2)
    wf = splits_of(parse_cv("walk-forward:3"))
    assert wf == [((1,), (0,)), ((2,), (0, 1)), ((3,), (0, 1, 2))]
    for bad in ("cpcv:6,6", "cpcv:6", "walk-forward:0", "kfold:5", "cpcv:200,2"):
        with pytest.raises(UsageError):
            parse_cv(bad)


@pytest.fixture(scope="module")
def cv_export(store, tmp_path_factory):
    dest = tmp_path_factory.mktemp("cv") / "exp"
    res = export(store, str(dest), families=["bqx"], cv="cpcv:6,2", no_validate=True, workers=1)
    return dest, res


def test_folds_export_metadata_scalers_and_checks(cv_export):
    dest, res = cv_export
    assert all(c["passed"] for c in res.checks), [c for c in res.checks if not c["passed"]]
    names = {c["name"] for c in res.checks}
    assert {"folds.columns", "folds.purged", "folds.embargoed", "folds.paths"} <= names
    doc = json.loads((dest / "metadata" / "folds.json").read_text())
    assert doc["cv"] == "cpcv:6,2" and len(doc["splits"]) == 15 and len(doc["paths"]) == 5 and len(doc["groups"]) == 6
    assert doc["embargo_bars"] == 1440 and set(doc["rows"]["0"]) == {"EURUSD", "USDJPY"}
    assert len(list((dest / "scalers" / "cv").glob("split_*.json"))) == 15
    meta = json.loads((dest / "metadata" / "export.json").read_text())
    assert meta["columns"][-3:] == ["cv_group", "cv_reach", "cv_embargo"] and meta["rows"]["validation"] == {}
    frame = pl.read_parquet(dest / "features" / "test" / "pair=EURUSD" / "year_month=2024-08" / "data.parquet")
    assert frame["cv_group"].dtype == pl.Int8 and (frame["cv_group"] == -1).all()
    # the scaler of split 0 is fitted on exactly that split's training rows
    f = folds(dest)
    train0 = f.frame[f.splits[0][0]]
    sc = json.loads((dest / "scalers" / "cv" / "split_000.json").read_text())["columns"]["bqx_w15_return"]
    x = train0["bqx_w15_return"].cast(pl.Float64).drop_nulls()
    assert sc["n"] == x.len() and sc["mean"] == pytest.approx(x.mean(), rel=1e-9)


def test_folds_round_trip_through_the_reader(cv_export):
    dest, _ = cv_export
    f = folds(dest)
    doc = f.meta
    assert f.frame.columns[:2] == ["pair", "ts"] and f.frame.select(pl.struct("pair", "ts").is_sorted()).item() in (True, None)
    assert f.frame.sort("pair", "ts")["ts"].equals(f.frame["ts"])
    assert len(f) == 15
    for s, (train, test) in enumerate(f.splits):
        per = doc["rows"][str(s)]
        pairs = f.frame["pair"].to_numpy()
        for pair, n in per.items():
            assert int((pairs[train] == pair).sum()) == n["train"] and int((pairs[test] == pair).sum()) == n["test"]
        tr_expr, te_expr = f.exprs[s]
        idx = f.frame.with_row_index("i")
        assert idx.filter(tr_expr)["i"].to_numpy().tolist() == train.tolist()
        assert idx.filter(te_expr)["i"].to_numpy().tolist() == test.tolist()
        assert not set(train.tolist()) & set(test.tolist())
    # scikit-learn's cv= takes the splits as (train, test) index pairs; pandas gets the same frame
    assert f.frame.to_pandas().shape == f.frame.shape


def test_a_tampered_cv_column_fails_validate_export(cv_export, tmp_path):
    import shutil

    dest, _ = cv_export
    copy = tmp_path / "copy"
    shutil.copytree(dest, copy)
    rel = copy / "features" / "train" / "pair=USDJPY" / "year_month=2024-07" / "data.parquet"
    frame = pl.read_parquet(rel)
    frame = frame.with_columns(pl.when(pl.arange(0, frame.height) == 500).then(pl.col("cv_group") - 1 if frame["cv_group"][500] > 0
                                                                               else pl.col("cv_group") + 1)
                               .otherwise(pl.col("cv_group")).cast(pl.Int8).alias("cv_group"))
    frame.write_parquet(rel)
    checks = {c.name: c for c in check_export(str(copy))}
    assert checks["folds.columns"].passed is False and "cv_group" in checks["folds.columns"].failures[0]


def test_labels_only_export_purges_by_t1(store, tmp_path):
    dest = tmp_path / "lbl"
    res = export(store, str(dest), families=["bqx"], cv="walk-forward:4", targets=["labels"], no_validate=True, workers=1)
    assert all(c["passed"] for c in res.checks), [c for c in res.checks if not c["passed"]]
    meta = json.loads((dest / "metadata" / "export.json").read_text())
    assert all(t.startswith("lbl_tb_h") for t in meta["targets"]) and len(meta["targets"]) == 12
    assert meta["split"]["purge_bars"] == 60  # the largest label span, not the targets' 75
    f = folds(dest)
    fr = f.frame
    span = pl.max_horizontal([pl.col(f"lbl_tb_h{h}_t1").fill_null(h) for h in (15, 30, 60)]).cast(pl.Int64)
    # split 0 tests group 1: rows of group 0 within 60 rows of it train when their t + t1 stays in group 0
    eur = fr.with_row_index("i").filter(pl.col("pair") == "EURUSD").with_columns(span.alias("span"))
    first = int(eur.filter(pl.col("cv_group") == 1)["i"].min())
    near = eur.filter((pl.col("i") >= first - 60) & (pl.col("i") < first))
    trains = np.isin(near["i"].to_numpy(), f.splits[0][0])
    reach = near["i"].to_numpy() + near["span"].to_numpy()
    assert trains.any(), "a fixed 60-bar purge would drop every one of these rows"
    assert (trains == (reach < first)).all(), "trained exactly when [t, t + t1] stays before the test group"
    one = export(store, str(tmp_path / "h30"), families=["bqx"], targets=["lbl_tb_h30_side"], no_validate=True, workers=1)
    meta1 = json.loads((tmp_path / "h30" / "metadata" / "export.json").read_text())
    assert meta1["targets"] == ["lbl_tb_h30_side", "lbl_tb_h30_t1", "lbl_tb_h30_ret", "lbl_tb_h30_w"]
    assert meta1["split"]["purge_bars"] == 30 and one.checks


def test_cpcv_12_3_export_works(store, tmp_path):
    dest = tmp_path / "c12"
    res = export(store, str(dest), families=["rate_index"], cv="cpcv:12,3", embargo=600, targets=["target_bqx_h15"],
                 no_validate=True, workers=1)
    assert all(c["passed"] for c in res.checks), [c for c in res.checks if not c["passed"]]
    f = folds(dest)
    assert len(f) == 220 and len(f.paths) == 55 and all(len(t) for _, t in f.splits)


def test_normalize_and_postgres_are_refused_with_cv(store, tmp_path):
    with pytest.raises(UsageError, match="--normalize"):
        export(store, str(tmp_path / "n"), families=["bqx"], cv="walk-forward:3", normalize=True, no_validate=True)
    with pytest.raises(UsageError, match="matches no target"):
        export(store, str(tmp_path / "m"), families=["bqx"], targets=["lbl_tb_h45"], no_validate=True)


def test_export_command_with_cv_and_labels_only(store, tmp_path, capsys):
    from bqx.cli.app import main

    dest = tmp_path / "cli"
    with pytest.raises(SystemExit) as exc:
        main(["export", "--store", str(store), "--to", str(dest), "--families", "bqx", "--cv", "walk-forward:3",
              "--labels-only", "--no-validate", "--json"])
    assert exc.value.code == 0, capsys.readouterr().err
    assert json.loads((dest / "metadata" / "folds.json").read_text())["cv"] == "walk-forward:3"
    with pytest.raises(SystemExit) as exc:
        main(["export", "--store", str(store), "--to", str(tmp_path / "x"), "--cv", "cpcv:3", "--no-validate"])
    assert exc.value.code == 2
