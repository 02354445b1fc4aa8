"""A real PostgreSQL server (Debian's, as the `postgres` user) for the whole session, on a free loopback port."""

from __future__ import annotations

import os

import pytest

import pg_server


@pytest.fixture(scope="session")
def pg():
    """The running server; skipped only outside CI when the server binaries are not installed."""
    if pg_server.binaries() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL server binaries are missing in CI (.ci/run installs Debian's postgresql)")
        pytest.skip("PostgreSQL server binaries (/usr/lib/postgresql/*/bin) are not installed: apt-get install postgresql")
    server = pg_server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pgpass(monkeypatch):
    """The test role's password in PGPASSWORD, as a user would give it."""
    monkeypatch.setenv("PGPASSWORD", pg_server.PASSWORD)
    return pg_server.PASSWORD
