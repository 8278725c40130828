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


# ------------------------------------------------------------------ two workers (make test: pytest-xdist)

# The test modules that share what is slow to start run on one worker, so that it starts once per
# session: the in-process Prefect API (``prefect_api``, and ``sample_run`` on it; 10-15 s each),
# test_serve's real server, test_signals's runs (kept in order: one stopping run at a time). Every
# other test goes to whichever worker is free. (pytest-xdist's own ``xdist_group`` marks do not
# group anything under pytest 9.2: pytest-xdist issue 1386.)
PREFECT_API_MODULES = ("test_clean_corpus.py", "test_faults.py", "test_formats_flow.py", "test_incremental.py",
                       "test_readers.py")
GROUPS = {f"tests/flows/{name}": "prefect-api" for name in PREFECT_API_MODULES}
GROUPS |= {"tests/flows/test_serve.py": "serve", "tests/flows/test_signals.py": "signals"}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``-n 2 --dist loadgroup`` (make test): the groups above, then one test at a time to a free worker."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class ModuleGroups(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            group = GROUPS.get(nodeid.split("::", 1)[0])
            return group if group is not None else super()._split_scope(nodeid)

    return ModuleGroups(config, log)


def pytest_collection_modifyitems(config, items):
    """A test of the in-process API outside the modules above would start a second API on the other worker."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        if "prefect_api" in item.fixturenames and GROUPS.get(module) != "prefect-api":
            raise pytest.UsageError(f"{item.nodeid} uses prefect_api: add {Path(module).name} to "
                                    "PREFECT_API_MODULES in tests/conftest.py")
