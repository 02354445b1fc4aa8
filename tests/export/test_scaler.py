"""The scaler: streaming float64 moments, fitted on purged training rows only, checked against numpy."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import polars as pl
import pytest

from bqx.export.scaler import Moments, Scaler, ScalerFit


def test_moments_equal_numpy_whatever_the_blocks():
    rng = np.random.default_rng(7)
    x = rng.normal(100.0, 0.01, 10_000)  # a level column: large mean, small spread
    y = rng.normal(0.0, 1e-4, 10_000)
    y[rng.random(10_000) < 0.2] = np.nan  # 20 % NULL
    frame = pl.DataFrame({"x": x, "y": y}, nan_to_null=True)
    expected = {"x": (x.mean(), x.std()), "y": (np.nanmean(y), np.nanstd(y))}
    for cuts in ([10_000], [1, 9_999], [3_333, 3_333, 3_334], [17] * 588 + [4]):
        m = Moments(["x", "y"])
        start = 0
        for n in cuts:
            m.update(frame.slice(start, n))
            start += n
        assert m.n.tolist() == [10_000, int((~np.isnan(y)).sum())]
        for i, c in enumerate(["x", "y"]):
            assert m.mean[i] == pytest.approx(expected[c][0], rel=1e-13, abs=1e-18)
            assert m.std()[i] == pytest.approx(expected[c][1], rel=1e-9)


def test_constant_and_empty_columns_are_reported():
    frame = pl.DataFrame({"k": [2.5] * 5, "e": [None] * 5, "v": [1.0, 2.0, 3.0, 4.0, 5.0]},
                         schema={"k": pl.Float64, "e": pl.Float64, "v": pl.Float64})
    fit = ScalerFit(["k", "e", "v"])
    fit.update("EURUSD", frame)
    scaler = fit.result(["EURUSD"])
    k, v = scaler.columns["k"], scaler.columns["v"]
    assert (k.constant, k.std, k.scale) == (True, 0.0, 1.0)
    assert "e" not in scaler.columns and scaler.empty == {"all": ["e"]}  # no entry without values
    # v: mean (1+2+3+4+5)/5 = 3, population variance (4+1+0+1+4)/5 = 2
    assert (v.mean, v.std, v.constant) == (3.0, pytest.approx(2 ** 0.5), False)
    assert scaler.report() == {"constant": {"all": ["k"]}, "empty": {"all": ["e"]}}
    doc = scaler.to_dict()
    assert set(doc["columns"]) == {"k", "v"} and list(doc["empty"]["all"]) == ["e"]
    assert all(p["n"] > 0 and p["mean"] is not None for p in doc["columns"].values())
    assert Scaler.from_dict(json.loads(json.dumps(doc))).empty == {"all": ["e"]}
    out = scaler.transform(frame, "EURUSD")
    assert out["k"].to_list() == [0.0] * 5 and out["e"].null_count() == 5
    assert out["v"].to_list() == pytest.approx([(i - 3.0) / 2 ** 0.5 for i in range(1, 6)])


@pytest.fixture(scope="module")
def raw64(store, tmp_path_factory):
    """rate_index and bqx features, float64, global scaler, not normalized."""
    from bqx.export import export

    dest = tmp_path_factory.mktemp("export-raw64") / "out"
    export(store, str(dest), families=["rate_index", "bqx"], precision="float64", no_validate=True)
    return dest


def test_global_scaler_equals_numpy_over_training_rows(raw64):
    scaler = json.loads((raw64 / "scalers" / "scaler.json").read_text())
    catalog = {r["name"]: r for r in json.loads((raw64 / "metadata" / "catalog.json").read_text())}
    train = pd.read_parquet(raw64 / "features" / "train")
    every = pd.concat([pd.read_parquet(raw64 / "features" / s) for s in ("train", "validation", "test")])
    fitted = scaler["columns"]
    assert scaler["scope"] == "global"
    assert set(fitted) == {c for c, r in catalog.items() if r["kind"] in ("continuous", "level") and r["family"] not in ("targets", "labels")}
    assert not any(c.startswith("target_") for c in fitted)
    for col, p in fitted.items():
        values = train[col].to_numpy(dtype=np.float64, na_value=np.nan)
        assert p["n"] == int((~np.isnan(values)).sum()), col
        assert p["mean"] == pytest.approx(np.nanmean(values), rel=1e-10, abs=1e-15), col
        assert p["std"] == pytest.approx(np.nanstd(values), rel=1e-8, abs=1e-15), col
    # fitted on training rows only: with validation and test rows the level column's mean differs
    assert fitted["rate_index"]["mean"] != pytest.approx(every["rate_index"].mean(), rel=1e-9)


def test_per_pair_normalized_export(raw64, store, tmp_path):
    from bqx.export import export

    dest = tmp_path / "norm"
    export(store, str(dest), families=["rate_index", "bqx"], scaler="per-pair", normalize=True, no_validate=True)
    scaler = json.loads((dest / "scalers" / "scaler.json").read_text())
    assert scaler["scope"] == "per-pair" and set(scaler["pairs"]) == {"EURUSD", "USDJPY"}
    for pair in ("EURUSD", "USDJPY"):
        raw = pd.read_parquet(raw64 / "features" / "train", filters=[("pair", "=", pair)])
        raw_test = pd.read_parquet(raw64 / "features" / "test", filters=[("pair", "=", pair)])
        norm_test = pd.read_parquet(dest / "features" / "test", filters=[("pair", "=", pair)])
        p = scaler["pairs"][pair]["rate_index"]
        # per-pair parameters from that pair's training rows only
        assert p["mean"] == pytest.approx(raw["rate_index"].mean(), rel=1e-10)
        assert p["std"] == pytest.approx(raw["rate_index"].std(ddof=0), rel=1e-8)
        # written values are (x - mean) / std, narrowed to float32
        z = (raw_test["rate_index"].to_numpy() - p["mean"]) / p["std"]
        assert norm_test["rate_index"].dtype == np.float32
        np.testing.assert_allclose(norm_test["rate_index"].to_numpy(np.float64), z, rtol=1e-6, atol=1e-6)
        # targets are not scaled
        np.testing.assert_array_equal(norm_test["target_bqx_h15"].to_numpy(),
                                      raw_test["target_bqx_h15"].to_numpy().astype(np.float32))
    meta = json.loads((dest / "metadata" / "export.json").read_text())
    assert meta["normalize"] is True and meta["scaler"]["scope"] == "per-pair"
