"""Fixtures of the end-to-end tests: what is expensive to start is started once per session.

* ``prefect_api``: one temporary Prefect API (``prefect_test_harness``) for every test that runs the
  flow in-process or points a command at a test API. Starting one takes 10-15 s (a new database
  migrated each time); the tests need a working API, not a private one: none of them reads the
  API's flow runs (``test_serve`` reads a real server's, its own).
* ``prefect_home``: a fresh ``PREFECT_HOME`` for a command that starts its own temporary API,
  copied from a home whose database was migrated once per session (migrating one costs ~9 s of
  CPU, and a real run in a new home pays it before doing anything). The first run in a brand-new
  home, as a user's first ``make run``, is still tested: ``test_cli``'s
  ``test_real_command_on_the_sample_corpus`` starts from an empty home.
* ``sample_run``: the sample corpus (``data/raw``) cleaned once by the flow, in several shards, laid out
  as in a checkout (``data/raw``, ``data/clean``): the README's reader snippets read it, and the
  reference chain is compared to it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def prefect_api():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture(scope="session")
def _migrated_home(tmp_path_factory) -> Path:
    """Migrated once per session: under pytest-xdist, once for all workers (in the base folder they
    share, under a lock), since the tests of a command are spread over them."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _migrate(tmp_path_factory.mktemp("prefect-home-template"))
    shared = tmp_path_factory.getbasetemp().parent
    home = shared / "prefect-home-template"
    with open(shared / "prefect-home-template.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "prefect-home-template.done").exists():
            shutil.rmtree(home, ignore_errors=True)  # a worker that failed half-way
            home.mkdir()
            _migrate(home)
            (shared / "prefect-home-template.done").touch()
    return home


def _migrate(home: Path) -> Path:
    env = dict(os.environ, PREFECT_HOME=str(home))
    for name in ("PREFECT_API_URL", "PREFECT_API_DATABASE_CONNECTION_URL"):
        env.pop(name, None)
    done = subprocess.run([str(BIN / "prefect"), "server", "database", "upgrade", "-y"], cwd=home, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and (home / "prefect.db").is_file(), done.stdout + done.stderr
    return home


@pytest.fixture
def prefect_home(_migrated_home, tmp_path) -> Path:
    """A PREFECT_HOME of this test's own, its database already migrated."""
    home = tmp_path / "prefect-home"
    shutil.copytree(_migrated_home, home)
    return home


@pytest.fixture(scope="session")
def sample_run(prefect_api, tmp_path_factory) -> tuple[Path, Path]:
    """(raw, out): ``data/raw`` cleaned by the flow into ``data/clean`` of a folder laid out as a checkout."""
    from prefect.task_runners import ThreadPoolTaskRunner

    from corpusclean.flows.clean_corpus import clean_corpus

    base = tmp_path_factory.mktemp("sample")
    raw, out = base / "data" / "raw", base / "data" / "clean"
    shutil.copytree(REPO / "data" / "raw", raw)
    clean_corpus.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))(
        raw_dir=raw, out_dir=out, overrides=["run.shard_mb=0.01"])
    return raw, out
