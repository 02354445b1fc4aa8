"""Fixtures for the export tests: one small store (2 pairs, 2 sample months, stages up to targets)."""

from __future__ import annotations

import importlib

import socket
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

    monkeypatch.setattr(validation, "latest_validation", lambda store: {"passed": True, "status": "passed"})


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
