"""Shared fixtures: the sample market is generated once per test session; an S3 server (moto) on loopback."""

from __future__ import annotations

import functools

import polars as pl
import pytest

from s3_loopback import start_loopback_s3


@functools.lru_cache(maxsize=None)
def sample_bars(pairs: tuple[str, ...] | None, start: str, months: int, seed: int = 0) -> pl.DataFrame:
    """Sample market bars, cached for the whole test session (callers must not mutate them)."""
    from bqx.bars.sample import sample_market

    return sample_market(pairs=list(pairs) if pairs else None, start=start, months=months, seed=seed)


@pytest.fixture(scope="session")
def sample():
    """A function (pairs, start, months) -> cached sample bars."""
    return sample_bars


@pytest.fixture(scope="session")
def s3_loopback():
    """A real S3-compatible server (moto) on loopback with a bucket `bqx`, and the environment that reaches it."""
    server, variables = start_loopback_s3()
    yield variables
    server.stop()


@pytest.fixture(scope="session")
def s3_server(s3_loopback) -> str:
    """The loopback server's endpoint URL."""
    return s3_loopback["AWS_ENDPOINT_URL"]


@pytest.fixture(scope="session")
def s3_variables(s3_loopback) -> dict[str, str]:
    """The environment a process needs to reach the loopback server (fake credentials), for subprocesses."""
    return dict(s3_loopback)


@pytest.fixture
def s3_env(s3_server, s3_variables, monkeypatch):
    """Endpoint and credentials in the usual environment variables."""
    for key, value in s3_variables.items():
        monkeypatch.setenv(key, value)
    return s3_server


@pytest.fixture
def s3_store(s3_env, request) -> str:
    """A fresh, empty store URL on the loopback S3 server: s3://bqx/<test name>-<random>."""
    import uuid

    return f"s3://bqx/{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"
