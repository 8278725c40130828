"""The one stage abstraction.

A stage loads its heavy state once (rule packs, language profiles, MinHash permutations)
in ``__init__``, then transforms batch after batch in ``process``. The base class times
each call, counts the characters it saw, and keeps the stage's counters, so every stage
can report a summary (the run report and the benchmark read ``StageStats``).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from tasks.records import Batch


@dataclass
class StageStats:
    name: str
    seconds: float = 0.0
    chars_in: int = 0
    batches: int = 0
    counts: Counter = field(default_factory=Counter)

    def merge(self, other: "StageStats") -> None:
        self.seconds += other.seconds
        self.chars_in += other.chars_in
        self.batches += other.batches
        self.counts.update(other.counts)

    def to_dict(self) -> dict:
        return {
            "seconds": round(self.seconds, 4),
            "chars_in": self.chars_in,
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
        started = time.perf_counter()
        self.stats.chars_in += sum(len(d.text) for d in batch.docs)
        out = self.process(batch)
        self.stats.seconds += time.perf_counter() - started
        self.stats.batches += 1
        return out


def run_stages(batch: Batch, stages: list[Stage]) -> Batch:
    for stage in stages:
        batch = stage(batch)
    return batch
