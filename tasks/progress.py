"""A tiny progress hook: the CLI installs a callback, the flow reports finished work units.

Kept out of flow parameters on purpose (a callback is not a serialisable parameter), and a
no-op when nothing is installed (scheduled runs, tests).
"""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[str, int, int], None]  # (phase, done, total)

_callback: ProgressCallback | None = None


def install(callback: ProgressCallback | None) -> None:
    global _callback
    _callback = callback


def report(phase: str, done: int, total: int) -> None:
    if _callback is not None:
        _callback(phase, done, total)
