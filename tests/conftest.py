"""Shared fixtures: the sample market is generated once per test session."""

from __future__ import annotations

import functools

import polars as pl
import pytest


@functools.lru_cache(maxsize=None)
def sample_bars(pairs: tuple[str, ...] | None, start: str, months: int, seed: int = 0) -> pl.DataFrame:
    """Sample market bars, cached for the whole test session (callers must not mutate them)."""
    from bqx.bars.sample import sample_market

    return sample_market(pairs=list(pairs) if pairs else None, start=start, months=months, seed=seed)


@pytest.fixture(scope="session")
def sample():
    """A function (pairs, start, months) -> cached sample bars."""
    return sample_bars
