"""Fixtures for the fault-injection tests: one small clean store and its export, copied per test (fault_helpers.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fault_helpers import EXPORT, MONTH, PAIRS, export_digest


@pytest.fixture(scope="session")
def clean(tmp_path_factory) -> Path:
    from bqx.engine.run import run

    root = tmp_path_factory.mktemp("faults") / "clean"
    result = run(root, source="sample", pairs=list(PAIRS), start=MONTH, end=MONTH, stages=["targets"],
                 executor="serial")
    assert result.ok, result.failed
    return root


@pytest.fixture(scope="session")
def clean_export(clean, tmp_path_factory) -> dict[str, str]:
    from bqx.export import export

    dest = tmp_path_factory.mktemp("faults-export") / "x"
    export(clean, str(dest), **EXPORT)
    return export_digest(dest)


@pytest.fixture
def store(clean, tmp_path) -> Path:
    """A private copy of the clean store (mtimes kept)."""
    root = tmp_path / "store"
    shutil.copytree(clean, root, ignore=shutil.ignore_patterns(".lock", ".readers"))
    return root
