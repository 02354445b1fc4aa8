"""Shared fixtures: the sample market is generated once per test session; an S3 server (moto) on loopback."""

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


@pytest.fixture(scope="session")
def s3_variables(s3_server) -> dict[str, str]:
    """The environment a process needs to reach the loopback server (fake credentials), for subprocesses."""
    return {"AWS_ENDPOINT_URL": s3_server, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}


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
