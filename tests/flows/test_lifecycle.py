"""flows/lifecycle.py: running the flow in a thread that SIGINT and SIGTERM can stop."""

from __future__ import annotations

import os
import signal
import threading
import time
from types import SimpleNamespace

import pytest

from corpusclean.flows import lifecycle


def test_the_targets_result_and_its_exception_come_back():
    assert lifecycle.run_stoppable(lambda: 42, poll=0.01) == 42

    def fails():
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        lifecycle.run_stoppable(fails, poll=0.01)


def test_sigterm_stops_the_wait_with_the_shells_exit_status():
    def target():
        # sent once the handler is in place (run_stoppable installs it before starting the thread)
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
        time.sleep(10)

    started = time.monotonic()
    with pytest.raises(lifecycle.Stopped) as stopped:
        lifecycle.run_stoppable(target, poll=0.05)
    assert time.monotonic() - started < 5
    assert stopped.value.signum == signal.SIGTERM and stopped.value.exit_code == 143
    assert str(stopped.value) == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is not None  # the previous handler is back


def test_a_wake_up_that_is_not_sigint_does_not_stop_the_run(monkeypatch):
    """A tracer attached to the command (py-spy --subprocesses) can end sigtimedwait with a junk
    si_signo; the run went on failing with "ValueError: -2081266128 is not a valid Signals"."""
    wakes = iter([SimpleNamespace(si_signo=-2081266128), SimpleNamespace(si_signo=0)])
    monkeypatch.setattr(lifecycle.signal, "sigtimedwait", lambda signals, timeout: next(wakes, None))
    assert lifecycle.run_stoppable(lambda: time.sleep(0.05) or "done", poll=0.01) == "done"
