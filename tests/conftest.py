"""Shared fixtures: real inputs from ../shared/data, and (in tests/integration) the broker."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real, unmodified inputs (OTLP examples, DCGM metric lists) beside the repo."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared test data not found at {SHARED_DATA}; clone with shared/ beside it")
    return SHARED_DATA
