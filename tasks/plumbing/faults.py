"""Faults: crash points for the durability tests, and the one line a real fault ends in.

``CORPUSCLEAN_FAULT=<point>`` makes the run SIGKILL its whole process group when it reaches
that point, so tests can check that a run killed anywhere leaves the corpus as it was.
``<point>:enospc`` raises a disk-full ``OSError`` there instead, and ``<point>:kill_worker``
SIGKILLs only the process that reaches it (a worker killed by the OOM killer). Unset (always,
outside those tests), ``fault_point`` is one dictionary lookup.

``describe_failure`` turns the exception a failed run ends with into one line naming the
path and the cause, and the exit status (sysexits) it maps to.
"""

from __future__ import annotations

import errno
import os
import re
import signal
from pathlib import Path

POINTS = ("after_clean", "mid_write", "before_commit", "after_commit")  # killed at: each tested
OTHER_POINTS = ("clean_shard",)  # for :enospc and :kill_worker
ENV = "CORPUSCLEAN_FAULT"

EXIT_CANTCREAT = 73  # EX_CANTCREAT: the output cannot be created or written (permissions, read-only, not a folder)
EXIT_IOERR = 74  # EX_IOERR: an I/O error writing the output (disk full, quota, device error)

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_IO = {errno.EIO, errno.ENXIO, errno.ESTALE} if hasattr(errno, "ESTALE") else {errno.EIO, errno.ENXIO}
_CANT_CREATE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.ENAMETOOLONG}


def fault_point(name: str, path: Path | str | None = None) -> None:
    value = os.environ.get(ENV)
    if value is None:
        return
    if value == name:
        os.killpg(os.getpgid(0), signal.SIGKILL)
    elif value == f"{name}:enospc":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), None if path is None else str(path))
    elif value == f"{name}:kill_worker":
        os.kill(os.getpid(), signal.SIGKILL)


def _chain(exc: BaseException):
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend(getattr(e, "exceptions", ()))  # an ExceptionGroup's members
        todo += [e.__cause__, e.__context__]


def _errno(exc: OSError) -> int | None:
    if exc.errno:
        return exc.errno
    found = re.search(r"errno (\d+)", str(exc), re.IGNORECASE)  # Arrow's writers put it in the message only
    return int(found.group(1)) if found else None


def describe_failure(exc: BaseException, out_dir: Path | str) -> tuple[str, int] | None:
    """(one line, exit status) for a run that failed on an operating-system fault or a dead
    worker; None for anything else (a bug: the caller prints its own line, status 1)."""
    for e in _chain(exc):
        if type(e).__name__ == "BrokenProcessPool" or "process pool was terminated abruptly" in str(e):
            return ("a worker process died (killed by a signal: the out-of-memory killer or kill -9) while "
                    f"cleaning; nothing committed, the corpus in {out_dir} is as it was", 1)
        if isinstance(e, OSError):
            code = _errno(e)
            if code is None:
                continue
            where = e.filename or out_dir
            cause = os.strerror(code)
            if code in _DISK_FULL:
                return (f"cannot write to {where}: {cause} (disk full); nothing committed, the corpus in {out_dir} "
                        "is as it was: free space and run again", EXIT_IOERR)
            if code in _IO:
                return (f"I/O error on {where}: {cause}; nothing committed, the corpus in {out_dir} is as it was",
                        EXIT_IOERR)
            if code in _CANT_CREATE:
                return (f"cannot create or write {where}: {cause}; nothing committed, the corpus in {out_dir} is "
                        "as it was", EXIT_CANTCREAT)
    return None
