"""An opt-in timeline of a run: where its wall-clock seconds go, per process.

With ``CORPUSCLEAN_TIMELINE=FILE`` in the environment, every process of the run (the command,
its worker processes) appends one JSON line per event to FILE: the event's name, the process
id, the wall clock (``time.time()``), the process's CPU time (``time.process_time()``) and its
resident set (``rss``, MiB), plus
a few fields (a shard's index and bytes). Lines are written with one ``write`` on a file opened
for appending, so processes never interleave within a line. Without the variable every call is
a dictionary look-up and nothing else. ``bench/timeline.py`` turns the file into a table.

Events come in pairs, ``NAME`` with ``phase`` "B" (begin) and "E" (end), or alone (``phase``
"I"); the worker events carry their shard's ``index``.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager

ENV = "CORPUSCLEAN_TIMELINE"


def event(name: str, phase: str = "I", **fields) -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    record = {"name": name, "ph": phase, "pid": os.getpid(), "t": time.time(), "cpu": time.process_time(),
              "rss": _rss_mib(), **fields}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(record) + "\n").encode())
        finally:
            os.close(fd)
    except OSError:  # a diagnostic: never fail a run for it
        pass


def _rss_mib() -> float | None:
    """This process's resident set now, in MiB (Linux; None elsewhere)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return round(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def span(name: str, **fields):
    event(name, "B", **fields)
    try:
        yield
    finally:
        event(name, "E", **fields)
