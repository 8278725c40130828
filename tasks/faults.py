"""Crash points for the durability tests: a real ``kill -9`` at a named step of a run.

``CORPUSCLEAN_FAULT=<point>`` makes the run SIGKILL its whole process group when it reaches
that point, so tests can check that a run killed anywhere leaves the corpus as it was.
Unset (always, outside those tests), ``fault_point`` is one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

POINTS = ("after_clean", "mid_write", "before_commit", "after_commit")
ENV = "CORPUSCLEAN_FAULT"


def fault_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.killpg(os.getpgid(0), signal.SIGKILL)
