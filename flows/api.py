"""One Prefect API for a whole run, shared with the task runner's worker processes.

With no ``PREFECT_API_URL`` configured, Prefect starts a temporary API server lazily, in
whichever process first needs a client. Worker processes of the process-pool task runner
are spawned afresh and would each start their own (seconds and ~190 MB each). So the CLI
starts the temporary server once, up front, and puts its URL in the settings that the
runner hands to its workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def run_api() -> Iterator[str | None]:
    """Yield the API URL the run uses, starting (and later stopping) a temporary server if none is set."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield PREFECT_API_URL.value()
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            try:
                yield server.api_url
            finally:
                _flush_api_logs()
    finally:
        server.stop()


def _flush_api_logs(timeout: float = 10.0) -> None:
    """Send the logs still queued for the API while it is up.

    Flow and task run logs go to the API in batches every few seconds; a run ends and the
    server stops well within that, so the last batch used to hit a closed port at exit
    ("--- Error logging to API --- All connection attempts failed", after a minute of the
    client's retries). Only run loggers send to the API, and the runs are over here.
    """
    from prefect.logging.handlers import APILogWorker

    try:
        APILogWorker.drain_all(timeout=timeout, at_exit=False)
    except Exception:  # never let log shipping turn a finished run into a failed one
        pass
