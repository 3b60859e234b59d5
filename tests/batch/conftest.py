"""Fixtures shared by the batch tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def inproc():
    """A Dask client whose one worker is a thread of this process.

    Many small chunk tasks: process start-up would dominate. Bound to 127.0.0.1 like every
    cluster niseg starts; worker processes are tested through the CLI.
    """
    from distributed import Client, LocalCluster

    cluster = LocalCluster(processes=False, n_workers=1, threads_per_worker=1,
                           host="127.0.0.1", protocol="tcp", dashboard_address=None)
    client = Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()
