"""Shared paths for the report tests: the project's own fixtures and the optional shared corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
SHARED_JUNIT = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "junit"


@pytest.fixture
def data() -> Path:
    """This project's own small report fixtures (tests/reports/data)."""
    return DATA


@pytest.fixture
def shared_junit() -> Path:
    """The folder of real-world JUnit files beside the checkout (absent on a user's machine)."""
    if not SHARED_JUNIT.is_dir():
        pytest.skip(f"shared JUnit corpus not present at {SHARED_JUNIT} (only on the team's machines)")
    return SHARED_JUNIT
