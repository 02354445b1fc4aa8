"""Fixtures for the export tests: one small store (2 pairs, 2 sample months, stages up to targets)."""

from __future__ import annotations

import importlib

from pathlib import Path

import pytest

PAIRS = ("EURUSD", "USDJPY")


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> Path:
    """rate_index, bqx and targets of EURUSD and USDJPY for 2024-07 and 2024-08, built by the engine."""
    from bqx.engine.run import run

    root = tmp_path_factory.mktemp("export-store") / "store"
    result = run(root, pairs=list(PAIRS), stages=["targets"], executor="serial")
    assert result.ok, result.failed
    return root


@pytest.fixture
def validated(monkeypatch):
    """Make the store's latest validation a passing one (the validation itself is tested elsewhere)."""
    validation = importlib.import_module("bqx.validate")  # the module; `bqx.validate` is the function

    monkeypatch.setattr(validation, "latest_validation", lambda store, state=None: {"passed": True, "status": "passed"})
