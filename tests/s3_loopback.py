"""A real S3-compatible server (moto, objects in memory) on a free loopback port, with the bucket `bqx`:
the one starter for the test fixtures (tests/conftest.py) and the benches (bench/soak.py, bench/s3_readers.py)."""

from __future__ import annotations

import socket
from typing import Any

KEY = "testing"  # moto takes any credentials; these fake ones are what every test and bench uses


def start_loopback_s3(bucket: str = "bqx") -> tuple[Any, dict[str, str]]:
    """(the running server, the environment a process needs to reach it: endpoint, fake credentials, region)."""
    from moto.server import ThreadedMotoServer
    from pyarrow import fs

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    fs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", access_key=KEY, secret_key=KEY,
                    region="us-east-1", allow_bucket_creation=True).create_dir(bucket)
    return server, {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": KEY,
                    "AWS_SECRET_ACCESS_KEY": KEY, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
