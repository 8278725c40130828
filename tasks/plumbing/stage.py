"""The one stage abstraction.

A stage loads its heavy state once (rule packs, language profiles, MinHash permutations)
in ``__init__``, then transforms batch after batch in ``process``. The base class times
each call, counts the characters and paragraph lines it saw, and keeps the stage's counters,
so every stage can report a summary (the run report and the benchmark read ``StageStats``).

Every timing is kept twice: ``cpu_seconds`` is the CPU time of the thread that ran the
stage (``time.thread_time``: right with the process runner and with the thread runner,
where the process's CPU time would count the other workers' threads too; work a library
hands to helper threads is not in it), ``wall_seconds`` is elapsed time (``perf_counter``),
which on a busy machine also counts the time spent waiting for a core.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from .records import Batch


def clock() -> tuple[float, float]:
    """A start mark for ``StageStats.add_time``: (this thread's CPU time, wall time)."""
    return time.thread_time(), time.perf_counter()


@dataclass
class StageStats:
    name: str
    cpu_seconds: float = 0.0  # CPU time of the thread running the stage (summed over shards)
    wall_seconds: float = 0.0  # elapsed time (summed over shards)
    chars_in: int = 0
    lines_in: int = 0  # paragraph lines the stage saw (0 for stages before the paragraphs stage)
    batches: int = 0
    counts: Counter = field(default_factory=Counter)

    @property
    def seconds(self) -> float:
        """Deprecated alias of ``wall_seconds`` (what it always measured), for callers not yet
        moved to ``cpu_seconds``/``wall_seconds``; not in the report."""
        return self.wall_seconds

    def add_time(self, since: tuple[float, float]) -> None:
        """Add the CPU and wall time elapsed since ``since`` (a ``clock()`` mark)."""
        cpu, wall = since
        self.cpu_seconds += time.thread_time() - cpu
        self.wall_seconds += time.perf_counter() - wall

    def merge(self, other: "StageStats") -> None:
        self.cpu_seconds += other.cpu_seconds
        self.wall_seconds += other.wall_seconds
        self.chars_in += other.chars_in
        self.lines_in += other.lines_in
        self.batches += other.batches
        self.counts.update(other.counts)

    def to_dict(self) -> dict:
        return {
            "cpu_seconds": round(self.cpu_seconds, 4),
            "wall_seconds": round(self.wall_seconds, 4),
            "chars_in": self.chars_in,
            "lines_in": self.lines_in,
            "batches": self.batches,
            "counts": dict(sorted(self.counts.items())),
        }


class Stage:
    """Subclasses set ``name`` and implement ``process``; they count events in ``self.stats.counts``."""

    name: str = "stage"

    def __init__(self) -> None:
        self.stats = StageStats(self.name)

    def process(self, batch: Batch) -> Batch:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, batch: Batch) -> Batch:
        self.stats.chars_in += sum(len(d.text) for d in batch.docs)
        started = clock()
        out = self.process(batch)
        self.stats.add_time(started)
        self.stats.lines_in += len(out.paragraphs)  # once split (the paragraphs stage counts its output)
        self.stats.batches += 1
        return out


def run_stages(batch: Batch, stages: list[Stage]) -> Batch:
    for stage in stages:
        batch = stage(batch)
    return batch
