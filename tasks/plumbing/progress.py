"""Run progress: what the run is doing, how far it is, how fast, and how long it still needs.

Two sources feed one ``RunProgress``:

- the flow reports phase changes and finished units (``report``), through a callback the
  CLI installs; a no-op when nothing is installed (scheduled runs, tests);
- every running shard ticks its own small file in the run's staging folder (``ShardTicker``),
  which the display reads back. Files work the same for threads, worker processes and a Dask
  cluster (its workers must see the output folder anyway), with no channel back to the flow.

Kept out of flow parameters on purpose (a callback is not a serialisable parameter).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Phases, in order. "reading" covers read, repair, paragraphs, boilerplate, language and sketches.
PHASES = ("starting", "reading", "duplicates", "writing", "committing", "done")
LABELS = {
    "starting": "starting",
    "reading": "reading and cleaning",
    "duplicates": "finding duplicates",
    "writing": "writing Parquet",
    "committing": "committing",
    "done": "done",
}

ProgressCallback = Callable[..., None]  # (phase, **fields)

_callback: ProgressCallback | None = None


def install(callback: ProgressCallback | None) -> None:
    global _callback
    _callback = callback


def report(phase: str, **fields) -> None:
    if _callback is not None:
        _callback(phase, **fields)


# ------------------------------------------------------------------------------ shard side

TICK_SECONDS = 0.5


class ShardTicker:
    """Writes ``bytes docs files`` of one shard to ``staging/progress-NNNNN`` at most every half second."""

    def __init__(self, staging_dir: Path, index: int):
        self.path = Path(staging_dir) / f"progress-{index:05d}"
        self._last = 0.0

    def tick(self, nbytes: int, docs: int, files: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < TICK_SECONDS:
            return
        self._last = now
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(f"{nbytes} {docs} {files}\n")
            os.replace(tmp, self.path)  # readers never see half a line
        except OSError:  # progress is a nicety: never fail a shard for it
            pass


def read_ticks(staging_dir: Path | None) -> tuple[int, int, int]:
    """Sum of (bytes, docs, files) over the shards' progress files."""
    total = [0, 0, 0]
    if staging_dir is None:
        return 0, 0, 0
    try:
        names = [n for n in os.listdir(staging_dir) if n.startswith("progress-") and not n.endswith(".tmp")]
    except OSError:
        return 0, 0, 0
    for name in names:
        try:
            values = [int(v) for v in (Path(staging_dir) / name).read_text().split()]
        except (OSError, ValueError):
            continue
        if len(values) == 3:
            for i in range(3):
                total[i] += values[i]
    return total[0], total[1], total[2]


# ------------------------------------------------------------------------------ display side


@dataclass
class RunProgress:
    """What a display shows; updated by the flow's reports and the shards' ticks (``refresh``)."""

    phase: str = "starting"
    detail: str = "checking the inputs"
    started: float = field(default_factory=time.monotonic)
    phase_started: float = field(default_factory=time.monotonic)
    files_total: int = 0
    bytes_total: int = 0
    shards_total: int = 0
    shards_done: int = 0
    bytes_done: int = 0
    docs_done: int = 0
    files_done: int = 0
    write_total: int = 0
    write_done: int = 0
    staging_dir: Path | None = None
    finished: list[str] = field(default_factory=list)  # one summary line per finished phase
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def update(self, phase: str, **fields) -> None:
        with self._lock:
            if phase != self.phase:
                line = self._finished_line()
                if line:
                    self.finished.append(line)
                self.phase, self.phase_started = phase, time.monotonic()
                self.detail = ""
            for key, value in fields.items():
                setattr(self, key, value)

    def refresh(self) -> None:
        """Read the shards' ticks (reading phase only: later phases keep the final figures)."""
        if self.phase != "reading":
            return
        nbytes, docs, files = read_ticks(self.staging_dir)
        with self._lock:
            self.bytes_done = max(self.bytes_done, min(nbytes, self.bytes_total))
            self.docs_done = max(self.docs_done, docs)
            self.files_done = max(self.files_done, min(files, self.files_total))

    # -- derived figures

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def phase_seconds(self) -> float:
        return time.monotonic() - self.phase_started

    def rate(self) -> float | None:
        """Input MB/s of the reading phase so far."""
        seconds = self.phase_seconds()
        if self.bytes_done <= 0 or seconds < 0.5:
            return None
        return self.bytes_done / 1e6 / seconds

    def eta(self) -> float | None:
        """Seconds left in the reading phase, from its rate so far."""
        rate = self.rate()
        if not rate or self.bytes_total <= 0:
            return None
        return max(0.0, (self.bytes_total - self.bytes_done) / 1e6 / rate)

    def fraction(self) -> float | None:
        if self.phase == "reading" and self.bytes_total:
            return min(1.0, self.bytes_done / self.bytes_total)
        if self.phase == "writing" and self.write_total:
            return self.write_done / self.write_total
        return None

    def line(self) -> str:
        """The current state in one plain line (log files, and the text beside a terminal's bar)."""
        with self._lock:
            label = LABELS.get(self.phase, self.phase)
            if self.phase == "starting":
                return f"{label}: {self.detail}" if self.detail else label
            if self.phase == "reading":
                parts = [f"{label}: {_mb(self.bytes_done)}/{_mb(self.bytes_total)} MB",
                         f"files {self.files_done}/{self.files_total}", f"documents {self.docs_done:,}",
                         f"shards {self.shards_done}/{self.shards_total}"]
                rate, eta = self.rate(), self.eta()
                parts.append(f"{rate:.2f} MB/s" if rate else "- MB/s")
                parts.append(f"ETA {format_seconds(eta)}" if eta is not None else "ETA -")
                return ", ".join(parts)
            if self.phase == "writing":
                return f"{label}: {self.write_done}/{self.write_total} parts, {self.docs_done:,} documents"
            return f"{label}{': ' + self.detail if self.detail else ''}"

    def _finished_line(self) -> str | None:
        seconds = self.phase_seconds()
        if self.phase == "starting":
            return f"started in {seconds:.1f} s"
        if self.phase == "reading":
            mb = self.bytes_done / 1e6
            rate = f", {mb / seconds:.2f} MB/s" if seconds > 0 else ""
            return (f"read and cleaned {_mb(self.bytes_done)} MB, {self.files_done} files, {self.docs_done:,} documents "
                    f"in {seconds:.1f} s{rate}")
        if self.phase == "duplicates":
            return f"found duplicates in {seconds:.1f} s"
        if self.phase == "writing":
            return f"wrote {self.write_done} parts in {seconds:.1f} s"
        if self.phase == "committing":
            return f"committed in {seconds:.1f} s"
        return None


def _mb(nbytes: int) -> str:
    """Megabytes to one decimal; two below 10 MB (a small run would read 0.0)."""
    return f"{nbytes / 1e6:.1f}" if nbytes >= 10e6 else f"{nbytes / 1e6:.2f}"


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    minutes, s = divmod(seconds, 60)
    hours, m = divmod(minutes, 60)
    return f"{hours}:{m:02d}:{s:02d}" if hours else f"{m}:{s:02d}"
