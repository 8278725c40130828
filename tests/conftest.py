"""Shared fixtures. Tests that need ../shared skip when it is absent, except on CI (CI=true), where they fail."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def require_shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        message = f"{path} not found: these tests need ../shared beside the checkout"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: CI always has it)")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    return require_shared("seeds")


@pytest.fixture(autouse=True)
def _quiet_prefect():
    logging.getLogger("prefect").setLevel(logging.WARNING)
    yield
