"""Engine fixtures: stores with synthetic bars, and user-family modules written to a temp dir."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

from bqx.store.layout import write_bars
from bqx.core.registry import REGISTRY
from engine_helpers import synth_bars


@pytest.fixture
def bars3() -> pl.DataFrame:
    return synth_bars()


@pytest.fixture
def make_store(tmp_path):
    """make_store(bars, name) -> a store path with `bars` written as its bars dataset."""

    def make(bars: pl.DataFrame, name: str = "store") -> Path:
        root = tmp_path / name
        write_bars(root, bars, source="test")
        return root

    return make


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    """write(name, source) -> imported module; user families are unregistered afterwards."""
    moddir = tmp_path / "usermods"
    moddir.mkdir()
    monkeypatch.syspath_prepend(str(moddir))
    monkeypatch.setenv("PYTHONPATH", str(moddir))
    written: list[str] = []
    before = set(REGISTRY.names())

    def write(name: str, source: str, *, load: bool = True):
        (moddir / f"{name}.py").write_text(textwrap.dedent(source))
        written.append(name)
        importlib.invalidate_caches()
        return importlib.import_module(name) if load else None

    write.dir = moddir
    yield write
    for fam in list(REGISTRY.names()):
        if fam not in before:
            REGISTRY.remove(fam)
    for name in written:
        sys.modules.pop(name, None)
