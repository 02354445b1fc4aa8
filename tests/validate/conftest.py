"""A small store built once per session with the engine (2 pairs, ~10 days over a month boundary),
and a way to add a user family to it for one test."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import polars as pl
import pytest

import bqx
from bqx.engine.run import run
from bqx.core.registry import REGISTRY
from tests.conftest import sample_bars

PAIRS = ("EURUSD", "USDJPY")
FIRST = datetime(2024, 7, 24, tzinfo=timezone.utc)  # ~6 trading days before the 2024-08 boundary: more than
LAST = datetime(2024, 8, 7, tzinfo=timezone.utc)  # the largest declared context (technical, ~2,750 rows)


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> Path:
    """Every built-in stage on EURUSD and USDJPY, 2024-07-24 .. 2024-08-06, computed by bqx.run."""
    logging.getLogger("bqx").setLevel(logging.ERROR)
    bars = sample_bars(PAIRS, "2024-07", 2).filter((pl.col("ts") >= FIRST) & (pl.col("ts") < LAST))
    root = tmp_path_factory.mktemp("validate") / "store"
    result = run(root, source=bars, executor="serial")
    assert result.ok, result.failed
    return root


def one_column(name: str) -> Callable:
    return lambda p: [bqx.Column(name, "continuous", 0, "test column", nullable_when="test family")]


@contextlib.contextmanager
def user_family(store: Path, name: str, fn: Callable, *, inputs=("bars",), context: int = 0, lookahead: int = 0,
                cross_pair: bool = False, compute: bool = True) -> Iterator[bqx.Family]:
    """Declare `fn` as family `name` (stage `name`, one column `name`_x) through the public API, compute it
    into the store with bqx.run, and unregister it afterwards."""
    fam = bqx.family(name=name, stage=name, inputs=inputs, columns=one_column(f"{name}_x"), context=context,
                     lookahead=lookahead, cross_pair=cross_pair, register=False)(fn)
    bqx.register(fam)
    try:
        if compute:
            result = run(store, source=None, stages=[name], executor="serial")
            assert result.ok, result.failed
        yield fam
    finally:
        REGISTRY.remove(name)
