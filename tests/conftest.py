"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

# Under pytest-xdist (``-n auto`` in pyproject.toml) every core runs a test process. Native
# thread pools (the OpenMP of PyTorch and scikit-learn, BLAS) at one thread each keep those
# processes from oversubscribing the cores: measured, a U-Net fit on 2 threads beside another
# busy process ran 3x slower than alone. Set before anything loads those libraries.
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")  # NumPy's BLAS may be loaded already

import matplotlib
import pytest

matplotlib.use("Agg")

#: Doctests that run the whole demo (end to end, about 9 s): marked ``slow`` like the demo's
#: other end-to-end tests, so ``pytest -m "not slow"`` stays under 3 minutes.
SLOW_DOCTESTS = ("niseg.demo.run_demo",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the doctests of :data:`SLOW_DOCTESTS` ``slow`` (a docstring takes no marker)."""
    for item in items:
        if item.name in SLOW_DOCTESTS:
            item.add_marker(pytest.mark.slow)


#: The real measurements shared beside the repository (never copied into it).
SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """Path of ../shared/data; a test that needs it fails loudly when it is missing."""
    path = SHARED_DATA.resolve()
    assert path.is_dir(), f"the real-data folder {path} is missing (CI provides ../shared)"
    return path


@pytest.fixture(scope="module")
def inproc():
    """A Dask client whose one worker is a thread of this process (the batch tests).

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
