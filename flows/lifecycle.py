"""A run's processes live and die with the command (Ctrl-C, SIGTERM, kill -9), quietly.

- The CLI runs the whole run in a thread; the main thread only waits and owns the signals,
  so Prefect's engine (which swaps in its own SIGTERM handler in the main thread) never sees
  them. On a stop the main thread ends every descendant process and exits at once.
- Ctrl-C: SIGINT is *ignored* process-wide for the run (an ignored signal stays ignored
  across fork+exec, so worker processes and Dask's processes never get the terminal's Ctrl-C
  and never print its traceback, not even while still importing) and *blocked* in the main
  thread, which takes it with ``sigtimedwait``: a blocked signal is queued, not ignored. The
  temporary API server runs in a process group of its own (uvicorn installs its own handler).
- A child whose parent dies without cleaning up (kill -9) exits by itself: the kernel's
  parent-death signal in pool workers, and a watchdog thread (re-parented? exit) in them and
  in the temporary server (whose spawning thread ends early: ``PR_SET_PDEATHSIG`` would fire
  when that *thread* ends).
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

WATCH_SECONDS = 0.5


def watch_parent(parent: int | None = None, interval: float = WATCH_SECONDS) -> None:
    """Exit this process as soon as its parent is gone (it is then re-parented)."""
    parent = os.getppid() if parent is None else parent

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="corpusclean-parent-watch", daemon=True).start()


def worker_init(config=None) -> None:
    """Initializer of every process-pool worker: dies with the process that spawned it (which may
    have died while this worker was still importing), leaves signals to it. With the run's
    ``config`` (workers started before the flow, ``flows.pool``), it then sets up the cleaning
    stages, so that its first shard does not pay for it."""
    import multiprocessing

    from corpusclean.tasks.plumbing.imports import arrow_without_pandas

    arrow_without_pandas()  # a worker never uses pandas: see tasks/plumbing/imports.py
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # also where the command did not ignore it (a deployment run)
    spawner = multiprocessing.parent_process()  # its pid was recorded at spawn time
    parent = spawner.pid if spawner is not None and spawner.pid else os.getppid()
    # A worker deep in a long C call (a regex or matcher over a 4 MB batch) holds the GIL, and a
    # watchdog thread then cannot run for seconds: the kernel's parent-death signal needs no GIL.
    # (It fires when the parent *thread* that spawned us ends: the pool's threads outlive us.)
    _parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    watch_parent(parent)
    # A worker's work and messages are done by the time the interpreter exits: its queues were
    # flushed (multiprocessing's exit function) and handlers Prefect registers later, while running
    # tasks, run before this one. Skipped: the interpreter's teardown, which kept the command
    # waiting on the pool's shutdown (5.4 s measured at the end of a run, load ~14).
    atexit.register(_exit_now)
    if config is not None:
        from corpusclean.tasks.plumbing.timeline import event
        from corpusclean.tasks.plumbing.warmup import warm_worker

        event("warm_worker", "B")
        warm_worker(config)
        event("warm_worker", "E")


def _exit_now() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(0)


def _parent_death_signal(sig: int) -> None:
    """prctl(PR_SET_PDEATHSIG, sig) on Linux; nothing elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(sig), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# The temporary API server's command: uvicorn, in-process, behind the same parent watchdog.
_SERVER_MAIN = (
    "import os, sys, threading, time\n"
    "parent = os.getppid()\n"
    "def watch():\n"
    "    while os.getppid() == parent:\n"
    f"        time.sleep({WATCH_SECONDS})\n"
    "    os._exit(1)\n"
    "threading.Thread(target=watch, daemon=True).start()\n"
    "import runpy\n"
    "sys.argv[0] = 'uvicorn'\n"
    "runpy.run_module('uvicorn', run_name='__main__', alter_sys=True)\n"
)


def server_command(args: list[str]) -> list[str]:
    """``python -m uvicorn ARGS`` rewritten to run uvicorn behind the parent watchdog."""
    assert args[1:3] == ["-m", "uvicorn"], args
    return [args[0], "-c", _SERVER_MAIN, *args[3:]]


# ------------------------------------------------------------------------------ the command side


def take_interrupts() -> None:
    """From now on SIGINT reaches this process's main thread only (see the module docstring).
    Call in the main thread, before any child process starts."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def release_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def descendants(pid: int | None = None) -> list[int]:
    """Every live descendant of ``pid`` (default: this process), from /proc (Linux)."""
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")"
        fields = stat[stat.rfind(b")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def end_descendants(grace: float = 2.0) -> None:
    """SIGTERM every descendant process, then SIGKILL whatever still runs after ``grace`` s.

    Spared: multiprocessing's resource tracker, which ignores SIGTERM by design and exits by
    itself (after releasing what the workers left) once this process has gone.
    """
    pids = [pid for pid in descendants() if not _is_resource_tracker(pid)]
    for pid in pids:
        _kill(pid, signal.SIGTERM)
    pids = _wait_gone(pids, grace)
    pids += [p for p in descendants() if p not in pids and not _is_resource_tracker(p)]  # and any spawned meanwhile
    for pid in pids:
        _kill(pid, signal.SIGKILL)
    # SIGKILL takes effect when the process is next scheduled (tens of ms on a busy machine): until
    # then it may still write, e.g. into the staging folder the caller is about to remove.
    _wait_gone(pids, 2.0)


def _wait_gone(pids: list[int], within: float) -> list[int]:
    """Wait up to ``within`` seconds for these processes to end; return those still alive."""
    deadline = time.monotonic() + within
    pids = [pid for pid in pids if _alive(pid)]
    while pids and time.monotonic() < deadline:
        time.sleep(0.02)
        pids = [pid for pid in pids if _alive(pid)]
    return pids


def _is_resource_tracker(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"multiprocessing.resource_tracker" in f.read()
    except OSError:
        return False


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] != b"Z"  # a zombie has ended: it only waits to be reaped


class Stopped(Exception):
    """The command got SIGINT or SIGTERM while a run was going on."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum  # 130 for SIGINT, 143 for SIGTERM: the shell's convention


def run_stoppable(target: Callable[[], object], poll: float = 0.2) -> object:
    """Run ``target`` in a thread; return its result, re-raise its exception, or raise
    ``Stopped`` as soon as SIGINT (see ``take_interrupts``) or SIGTERM arrives."""
    outcome: dict[str, object] = {}

    def body() -> None:
        try:
            outcome["result"] = target()
        except BaseException as exc:  # handed to the main thread
            outcome["error"] = exc

    got: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
    try:
        thread = threading.Thread(target=body, name="corpusclean-flow", daemon=True)
        thread.start()
        while thread.is_alive():
            info = signal.sigtimedwait({signal.SIGINT}, poll)
            if info is not None and info.si_signo == signal.SIGINT:  # a tracer (py-spy) can wake it with none
                got.append(info.si_signo)
            if got:
                raise Stopped(got[0])
            thread.join(0)
        if got:
            raise Stopped(got[0])
    finally:
        signal.signal(signal.SIGTERM, previous)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome.get("result")
