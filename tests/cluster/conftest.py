"""Cluster fixtures: a real Dask cluster of 3 worker processes on loopback, each in its own scratch
directory, with the S3 server's endpoint and fake credentials in its environment (and nothing else)."""

from __future__ import annotations

import pytest

from dask_cluster import ProcessCluster

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, s3_variables):
    """3 `dask worker --no-nanny --nthreads 1` processes; each test gets all 3 running (replacements started)."""
    with ProcessCluster(tmp_path_factory.mktemp("cluster"), workers=3, env=dict(s3_variables)) as c:
        yield c


@pytest.fixture
def three_workers(cluster):
    cluster.top_up()
    cluster.set_env(BQX_TEST_KILL_WORKER="")
    return cluster
