"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

#: The real measurements shared beside the repository (never copied into it).
SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """Path of ../shared/data; a test that needs it fails loudly when it is missing."""
    path = SHARED_DATA.resolve()
    assert path.is_dir(), f"the real-data folder {path} is missing (CI provides ../shared)"
    return path
