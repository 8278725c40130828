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
            yield server.api_url
    finally:
        server.stop()
