"""Fixtures for the signal tests: one small store (2 pairs, 2 sample months, stages up to targets)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

PAIRS = ("EURUSD", "USDJPY")


@pytest.fixture(scope="session")
def signal_store(tmp_path_factory) -> Path:
    """rate_index, bqx and targets (lags as a view) of EURUSD and USDJPY for 2024-07 and 2024-08, built by the engine."""
    from bqx.engine.run import run

    root = tmp_path_factory.mktemp("signal-store") / "store"
    result = run(root, pairs=list(PAIRS), stages=["targets"], executor="serial")
    assert result.ok, result.failed
    return root


@pytest.fixture
def store_copy(signal_store, tmp_path) -> Path:
    """A private copy of the store that a test may alter (without the signal files other tests wrote into the original)."""
    root = tmp_path / "store"
    shutil.copytree(signal_store, root, ignore=lambda d, names: ["signal"] if Path(d) == signal_store else [])
    return root
