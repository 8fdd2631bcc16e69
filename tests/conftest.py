"""Shared test fixtures. Tests that need ../shared/data skip with a clear reason where it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
pytest_plugins = ["annotator_fixtures"]  # tests/annotator_fixtures.py: images for the annotator tests

SHARED_DATA = Path(os.environ.get("WIML_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or $WIML_SHARED_DATA); skips the test where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set WIML_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _torch_threads():
    """Keep tests on one thread each: the CI machine has 2 cores and tests must be deterministic."""
    try:
        import torch
    except ImportError:
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
