"""A run's identity and folders: id, paths, timing, and the report written at its end."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tasks import __version__, report as reporting
from tasks.config import Config
from tasks.corpus_dedup import RunDedup
from tasks.output import ShardSummary, run_folder, staging_folder, write_json_atomic
from tasks.schema import SCHEMA_VERSION
from tasks.shard import ShardResult

PIPELINE_VERSION = f"{__version__}+schema{SCHEMA_VERSION}"


class UsageError(ValueError):
    """A user mistake about paths or options: the message is one line meant for a human."""


def check_paths(raw_dir: Path, out_dir: Path) -> tuple[Path, Path]:
    """Resolve and validate the input and output folders before any work starts."""
    raw, out = Path(raw_dir).resolve(), Path(out_dir).resolve()
    if not raw.exists():
        raise UsageError(f"raw folder not found: {raw_dir}")
    if not raw.is_dir():
        raise UsageError(f"raw path is not a folder: {raw_dir}")
    if out == raw or out.is_relative_to(raw):
        raise UsageError(f"the output folder {out_dir} is inside the raw folder {raw_dir}: its files would be read as input")
    if raw.is_relative_to(out):
        raise UsageError(f"the raw folder {raw_dir} is inside the output folder {out_dir}")
    if out.exists() and not out.is_dir():
        raise UsageError(f"output path exists and is not a folder: {out_dir}")
    return raw, out


LOCK_NAME = ".corpusclean.lock"
_SCRATCH_PREFIXES = (".staging-", ".run-", ".trash-")
_held_locks: dict[str, int] = {}  # run_id -> lock file descriptor (kept out of the RunContext: not picklable)


class OutputBusy(UsageError):
    """Another run is writing to the same output folder."""


def lock_output(out_dir: Path, wait: bool = False) -> int:
    """Take the output folder's single-writer lock; returns the lock's file descriptor.

    ``flock`` is released by the kernel when its holder exits, even on ``kill -9``, so a
    crashed run never leaves a stale lock behind. Without ``wait`` a busy folder raises
    ``OutputBusy`` naming the holder.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
        os.close(fd)
        try:
            who = json.loads(holder)
            detail = f"run {who.get('run_id')} (pid {who.get('pid')}, started {who.get('started_at')})"
        except ValueError:
            detail = "another run"
        raise OutputBusy(
            f"{detail} is writing to {out_dir}; wait for it to finish, or pass --wait to queue behind it"
        ) from None
    return fd


def _note_holder(fd: int, run_id: str, started_at: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"run_id": run_id, "pid": os.getpid(), "started_at": started_at}).encode(), 0)


def unlock_output(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def remove_scratch(out_dir: Path) -> list[str]:
    """Remove what an interrupted run left (its staging, run and trash folders); call with the lock held."""
    removed = []
    for entry in out_dir.iterdir():
        if entry.is_dir() and entry.name.startswith(_SCRATCH_PREFIXES):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return removed


def new_run_id(now: datetime | None = None) -> str:
    """Sortable and unique: UTC time, then random hex (``20261121T131300Z-3fa9c2``)."""
    now = now or datetime.now(timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass
class RunContext:
    run_id: str
    raw_dir: Path
    out_dir: Path
    config: Config
    flow_run_id: str | None = None
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    started_monotonic: float = field(default_factory=time.monotonic)
    pipeline_version: str = PIPELINE_VERSION

    @property
    def staging_dir(self) -> Path:
        return staging_folder(self.out_dir, self.run_id)

    @property
    def run_dir(self) -> Path:
        return run_folder(self.out_dir, self.run_id)


def start_run(raw_dir: Path, out_dir: Path, config: Config, flow_run_id: str | None = None) -> RunContext:
    """Validate the folders, take the output's lock, clear an interrupted run's scratch, make ours."""
    raw, out = check_paths(raw_dir, out_dir)
    fd = lock_output(out, wait=config.run.wait_for_lock)
    try:
        run = RunContext(new_run_id(), raw, out, config, flow_run_id)
        _note_holder(fd, run.run_id, run.started_at)
        remove_scratch(out)
        run.staging_dir.mkdir()
        run.run_dir.mkdir()
    except BaseException:
        unlock_output(fd)
        raise
    _held_locks[run.run_id] = fd
    return run


def write_report(run: RunContext, results: list[ShardResult], dedup: RunDedup, summaries: list[ShardSummary]) -> dict:
    data = reporting.build_report(
        run_id=run.run_id,
        pipeline_version=run.pipeline_version,
        raw_dir=run.raw_dir,
        out_dir=run.out_dir,
        config=run.config.model_dump(mode="json"),
        results=results,
        dedup=dedup,
        summaries=summaries,
        started_at=run.started_at,
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        wall_seconds=time.monotonic() - run.started_monotonic,
        flow_run_id=run.flow_run_id,
    )
    write_json_atomic(run.run_dir / "report.json", data)
    (run.run_dir / "report.md").write_text(reporting.render_markdown(data), encoding="utf-8")
    return data


def cleanup(run: RunContext) -> None:
    """Remove the run's scratch folders (after a commit, or after a failure) and release the lock."""
    shutil.rmtree(run.staging_dir, ignore_errors=True)
    shutil.rmtree(run.run_dir, ignore_errors=True)
    fd = _held_locks.pop(run.run_id, None)
    if fd is not None:
        unlock_output(fd)
