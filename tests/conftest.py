"""Shared fixtures: the sample market is generated once per test session."""

from __future__ import annotations

import functools
import socket

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


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto) on loopback; yields its endpoint URL with a bucket `bqx`."""
    from moto.server import ThreadedMotoServer
    from pyarrow import fs

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    s3 = fs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", access_key="testing",
                         secret_key="testing", region="us-east-1", allow_bucket_creation=True)
    s3.create_dir("bqx")
    yield endpoint
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """Endpoint and credentials in the usual environment variables."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    return s3_server


@pytest.fixture
def s3_store(s3_env, request) -> str:
    """A fresh, empty store URL on the loopback S3 server: s3://bqx/<test name>-<random>."""
    import uuid

    return f"s3://bqx/{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"
