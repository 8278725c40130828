"""One Prefect API for a whole run, shared with the task runner's worker processes.

With no ``PREFECT_API_URL`` configured, Prefect starts a temporary API server lazily, in
whichever process first needs a client. Worker processes of the process-pool task runner
are spawned afresh and would each start their own (seconds and ~190 MB each). So the CLI
starts the temporary server once, up front, and puts its URL in the settings that the
runner hands to its workers.

The server is started here rather than with Prefect's ``SubprocessASGIServer`` (which it
mirrors: same uvicorn app, same environment) for three reasons: it starts in the background
while the command does its own work (imports, hashing the inputs); the command does not
import Prefect's whole server app just to launch it (seconds of CPU on a busy machine); and
it runs behind ``flows.lifecycle``'s parent watchdog, so a killed command leaves no server.
Its start-up deadline is wall-clock time (Prefect's counts only its own sleeps).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

STARTUP_TIMEOUT = 120.0  # seconds, at least (prefect.toml may ask for more): a busy machine is slow, not broken


class ServerError(RuntimeError):
    """The temporary API server did not come up."""


class TemporaryServer:
    """Prefect's API on a free loopback port, started in a background thread."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self.error: BaseException | None = None
        self.seconds: float | None = None  # time to healthy
        self._ready = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._start, name="corpusclean-api-server", daemon=True)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> "TemporaryServer":
        self._thread.start()
        return self

    def wait(self) -> str:
        """The API URL once the server answers; ``ServerError`` if it could not start."""
        self._ready.wait()
        if self.error is not None:
            raise ServerError(f"the temporary Prefect API server did not start: {self.error}") from None
        return self.api_url

    def _start(self) -> None:
        began = time.monotonic()
        try:
            # Neither Prefect nor its settings are imported here (seconds on a busy machine): the
            # server reads the same environment and prefect.toml (same working directory) itself.
            timeout = max(float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS") or 0), STARTUP_TIMEOUT)
            env = {
                **os.environ,
                # What Prefect's SubprocessASGIServer sets: no UI, no background services.
                "PREFECT_SERVER_UI_ENABLED": "false",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
            }
            deadline = began + timeout
            while not self._stopping:
                self.port = _free_port()
                # A process group of its own: the terminal's Ctrl-C is the command's to handle.
                self.process = subprocess.Popen(_server_command(self.port), env=env, stdin=subprocess.DEVNULL,
                                                process_group=0)
                if self._wait_healthy(deadline):
                    break
                if self._stopping:
                    raise ServerError("stopped while starting")
                if self.process.poll() != 3:  # 3: uvicorn could not bind (the port was taken meanwhile): retry
                    code = self.process.poll()
                    raise ServerError(f"no answer within {timeout:.0f} s" if code is None else f"it exited with status {code}")
            self.seconds = time.monotonic() - began
        except BaseException as exc:
            self.error = exc
        finally:
            self._ready.set()

    def _wait_healthy(self, deadline: float) -> bool:
        url = f"{self.api_url}/health"
        while time.monotonic() < deadline and not self._stopping:
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return True
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        self._stopping = True
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_command(port: int) -> list[str]:
    from importlib.util import find_spec

    from corpusclean.flows.lifecycle import server_command

    prefect_dir = Path(find_spec("prefect").origin).parent  # without importing it
    return server_command([
        sys.executable, "-m", "uvicorn", "--app-dir", str(prefect_dir.parent),
        "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "error", "--lifespan", "on",
    ])


def start_api() -> TemporaryServer | None:
    """Start a temporary server in the background, unless a Prefect API is configured.

    Started before Prefect is imported (the import takes seconds, the server longer): when the
    environment names no API, the server starts at once; ``confirm_api`` stops it again if
    Prefect's settings (a profile, prefect.toml) name one after all.
    """
    if os.environ.get("PREFECT_API_URL"):
        return None
    return TemporaryServer().start()


def confirm_api(server: TemporaryServer | None) -> TemporaryServer | None:
    from prefect.settings import PREFECT_API_URL

    if server is not None and PREFECT_API_URL.value():
        server.stop()
        return None
    return server


@contextmanager
def run_api(server: TemporaryServer | None = None) -> Iterator[str | None]:
    """Yield the API URL the run uses (in this thread's settings), starting a temporary server if
    none is set (or using ``server``, started earlier), and stopping it afterwards."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if server is None and PREFECT_API_URL.value():
        yield PREFECT_API_URL.value()
        return
    server = server or TemporaryServer().start()
    try:
        url = server.wait()
        with temporary_settings(updates={PREFECT_API_URL: url}):
            try:
                yield url
            finally:
                _flush_api_logs()
    finally:
        server.stop()


def in_api(url: str | None, body: Callable[[], object]) -> object:
    """Call ``body`` with ``url`` as this thread's Prefect API (settings are per context, and a
    new thread starts without the caller's)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if url is None:  # a configured API: send what is queued now, too (the command exits without waiting)
        try:
            return body()
        finally:
            _flush_api_logs()
    with temporary_settings(updates={PREFECT_API_URL: url}):
        try:
            return body()
        finally:
            _flush_api_logs()


def _flush_api_logs(timeout: float = 10.0) -> None:
    """Send the logs still queued for the API while it is up.

    Flow and task run logs go to the API in batches every few seconds; a run ends and the
    server stops well within that, so the last batch used to hit a closed port at exit
    ("--- Error logging to API --- All connection attempts failed", after a minute of the
    client's retries). Only run loggers send to the API, and the runs are over here.
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    # Events too (task and flow run state changes): at exit they would be sent to a stopped
    # server, and the interpreter's exit would wait seconds for the attempts to fail.
    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=timeout, at_exit=False)
        except Exception:  # never let log shipping turn a finished run into a failed one
            pass
