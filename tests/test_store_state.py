"""bqx.store.state: the store's state read once, as the manifest and pairs.json record it."""

from __future__ import annotations

import dataclasses
import json
import pickle
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from bqx.core.declaration import PairInfo
from bqx.engine import run
from bqx.errors import UsageError
from bqx.store.layout import PAIRS_FILE, read_pairs_json, write_bars, write_pairs_json
from bqx.store.manifest import Manifest, params_from_meta
from bqx.store.state import StoreState, fields_of, info_of, open_state

MONTHS = {"2024-01": 300, "2024-02": 300}


def _bars(pair: str, *, volume: bool, bidask: bool, seed: int) -> pl.DataFrame:
    """Minute bars from each month's first minute: a seeded random walk."""
    rng = np.random.default_rng(seed)
    frames, level = [], 1.1
    for month, n in MONTHS.items():
        t0 = datetime.fromisoformat(f"{month}-01T00:00:00+00:00")
        close = level * np.exp(np.cumsum(rng.normal(0, 2e-4, n)))
        level = float(close[-1])
        open_ = np.concatenate([[close[0]], close[:-1]])
        frames.append(pl.DataFrame({
            "pair": pair, "ts": [t0 + timedelta(minutes=i) for i in range(n)], "open": open_, "close": close,
            "high": np.maximum(open_, close) + 1e-5, "low": np.minimum(open_, close) - 1e-5,
            "volume": rng.integers(1, 50, n).astype(float) if volume else np.zeros(n),
            "bid_close": close - 1e-5 if bidask else [None] * n, "ask_close": close + 1e-5 if bidask else [None] * n,
        }))
    return pl.concat(frames, how="diagonal_relaxed")


@pytest.fixture
def store(tmp_path):
    """Two pairs' bars: EURUSD with volume and bid/ask, GBPUSD with neither."""
    root = tmp_path / "store"
    write_bars(root, _bars("EURUSD", volume=True, bidask=True, seed=1), source="test")
    write_bars(root, _bars("GBPUSD", volume=False, bidask=False, seed=2), source="test")
    return root


def test_a_store_without_manifest_has_no_baseline_and_empty_maps(tmp_path, store):
    for root in (tmp_path / "nothing", store):
        state = open_state(root)
        assert state.root == str(root) and not state.has_manifest
        assert state.baseline is None and state.baseline_iso is None
        assert state.params == {} and state.anchors == {} and state.tasks == {} and state.bars == {} and state.runs == ()
        assert state.months_of("EURUSD") == [] and state.task("rate_index", "EURUSD", "2024-01") is None
    assert open_state(tmp_path / "nothing").pairs == {}
    # pairs.json is there before any run: the pairs are known from it
    assert open_state(store).pairs == {"EURUSD": PairInfo("EURUSD", "mid", True, True),
                                       "GBPUSD": PairInfo("GBPUSD", "mid", False, False)}


def test_state_after_a_run_is_what_the_manifest_records(store):
    result = run(store, source=None, executor="serial", stages=["rate_index"], params={"rate_index": {}})
    assert result.ok
    state = open_state(store)
    with Manifest(store, readonly=True) as man:
        assert state.baseline == datetime.fromisoformat(man.get_meta("baseline_time"))
        assert state.params == params_from_meta(man.get_meta("params")) and "rate_index" in state.params
        assert state.anchors == man.anchors()
        assert state.tasks == man.tasks() and state.bars == man.bars()
        assert list(state.runs) == man.runs()
    assert state.has_manifest and state.baseline == datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert state.baseline_iso == "2024-01-01T00:00:00+00:00"
    # the anchor of a per-pair family: one per pair, each the first bar at the baseline
    assert sorted(state.anchors) == [("rate_index", "EURUSD"), ("rate_index", "GBPUSD")]
    assert state.anchor("rate_index", "EURUSD") == state.anchors[("rate_index", "EURUSD")]
    assert state.months_of("GBPUSD") == ["2024-01", "2024-02"]
    assert state.months_by_pair == {"EURUSD": ["2024-01", "2024-02"], "GBPUSD": ["2024-01", "2024-02"]}
    assert state.stages() == {"rate_index"}
    done = state.task("rate_index", "EURUSD", "2024-02")
    assert done is not None and done.status == "done" and done.rows == 300
    assert len(state.tasks) == 2 * 2 and len(state.bars) == 2 * 2 and len(state.runs) == 1
    # frozen, and plain enough to hand to another process
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.baseline = None  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(state)) == state


def test_one_pair_info_rule_for_engine_validate_and_live(store):
    """A pair's pairs.json entry, else what its first bars month shows; every reader gets the same PairInfo."""
    catalog = json.loads((store / PAIRS_FILE).read_text())
    del catalog["GBPUSD"]  # bars that came without an entry (copied in by hand)
    catalog["EURUSD"]["has_volume"] = False  # the entry wins over what the bars show
    (store / PAIRS_FILE).write_text(json.dumps(catalog))
    assert run(store, source=None, executor="serial", stages=["rate_index"]).ok

    state = open_state(store)
    assert state.pairs == {"EURUSD": PairInfo("EURUSD", "mid", False, True),
                           "GBPUSD": PairInfo("GBPUSD", "mid", False, False)}
    assert state.info_fields("EURUSD") == {"basis": "mid", "has_volume": False, "has_bidask": True}
    for pair, info in state.pairs.items():  # a task spec's plain fields give the same PairInfo back
        assert info_of(pair, fields_of(info)) == info

    from bqx.engine.source import inventory, pair_infos
    from bqx.validate.storeview import StoreView

    with Manifest(store) as man:
        engine_infos = pair_infos(store, inventory(store, man))
    assert engine_infos == {p: state.info_fields(p) for p in ("EURUSD", "GBPUSD")}
    assert StoreView(store).infos == state.pairs
    with pytest.raises(UsageError, match="has no bars of USDJPY"):
        state.pair_info("USDJPY")


def test_the_gate_and_the_store_view_use_a_state_handed_to_them(store):
    """Opened once: a state handed in is what the gate and the validator's view read (not the store again)."""
    from bqx.engine.gate import inspect
    from bqx.validate.storeview import StoreView

    assert run(store, source=None, executor="serial", stages=["rate_index"]).ok
    state = open_state(store)
    other = dataclasses.replace(state, tasks={})  # a state whose tasks say nothing is done
    assert not any(inspect(store, stages=["rate_index"], store_state=state).problems.values())
    assert len(inspect(store, stages=["rate_index"], store_state=other).problems["missing"]) == 4
    assert StoreView(store, state=other).tasks == {}


def test_no_module_reads_the_store_state_by_hand():
    """bqx.store.state is the one reader: outside bqx/store/ nothing reads the manifest's meta or builds a PairInfo.

    Allowed: the run's writer fixing the baseline (engine/source.py) and the report's task timeline,
    whose start and end times the state does not carry (report/context.py).
    """
    import re
    from pathlib import Path

    import bqx

    allowed = {"get_meta(": {"engine/source.py"}, "params_from_meta(": set(), "stored_params(": set(),
               "PairInfo(": set(), "open_reader(": {"report/context.py"}, "baseline_of(": {"engine/source.py"}}
    package = Path(bqx.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if rel.startswith("store/"):
            continue
        text = path.read_text()
        for call, ok in allowed.items():
            if re.search(r"\b" + re.escape(call), text) and rel not in ok:
                found.append(f"{rel}: {call}")
    assert found == []


def test_state_of_an_object_storage_store(s3_store):
    """The same reader on an s3:// store: pairs.json and the manifest object, reached through the store's backend."""
    write_bars(s3_store, _bars("EURUSD", volume=True, bidask=True, seed=1), source="test")
    write_bars(s3_store, _bars("GBPUSD", volume=False, bidask=False, seed=2), source="test")
    empty = open_state(s3_store)
    assert empty.root == s3_store and not empty.has_manifest and empty.baseline is None and empty.tasks == {}
    assert empty.pairs == {"EURUSD": PairInfo("EURUSD", "mid", True, True),
                           "GBPUSD": PairInfo("GBPUSD", "mid", False, False)}
    with Manifest(s3_store) as man:
        man.set_meta("baseline_time", "2024-01-01T00:00:00+00:00")
        man.set_meta("params", json.dumps({"rate_index": {}, "gone_family": {"x": 1}}))
        man.set_anchor("rate_index", "EURUSD", {"close": 1.1})
        man.set_bars("EURUSD", "2024-01", "d1", 300, 10, 1)
        man.set_bars("USDJPY", "2024-01", "d2", 300, 10, 1)  # bars without a pairs.json entry: read to infer
        man.record("rate_index", "EURUSD", "2024-01", status="done", rows=300, seconds=0.1, error=None,
                   fingerprint="f", outputs=[], run_id=1)
    write_bars(s3_store, _bars("USDJPY", volume=False, bidask=True, seed=3), source="test")
    catalog = read_pairs_json(s3_store)
    del catalog["USDJPY"]
    write_pairs_json(s3_store, catalog)
    state = open_state(s3_store)
    assert state.has_manifest and state.baseline == datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert state.params == {"rate_index": {}}  # families registered now only
    assert state.anchors == {("rate_index", "EURUSD"): {"close": 1.1}}
    assert state.task("rate_index", "EURUSD", "2024-01").rows == 300 and state.months_of("EURUSD") == ["2024-01"]
    assert state.pair_info("USDJPY") == PairInfo("USDJPY", "mid", False, True)
