"""Stage timings: CPU time of the stage's own thread and wall time, kept apart."""

from __future__ import annotations

import threading
import time

from corpusclean.tasks.stages.paragraphs import ParagraphStage
from corpusclean.tasks.plumbing.records import Batch, Document
from corpusclean.tasks.corpus.report import _stage_entry
from corpusclean.tasks.plumbing.stage import Stage, StageStats


class _Sleeps(Stage):
    name = "sleeps"

    def process(self, batch: Batch) -> Batch:
        time.sleep(0.2)
        return batch


def _batch(*texts: str) -> Batch:
    return Batch([Document(f"d{i}", "x.txt", "0" * 64, i, t, "utf-8") for i, t in enumerate(texts)])


def test_a_sleeping_stage_records_wall_time_but_little_cpu_time_even_beside_a_busy_thread() -> None:
    stop = threading.Event()

    def spin() -> None:  # another worker's thread: its CPU time is not this stage's
        while not stop.is_set():
            sum(range(1000))

    busy = threading.Thread(target=spin)
    busy.start()
    try:
        stage = _Sleeps()
        stage(_batch("a"))
    finally:
        stop.set()
        busy.join()
    assert stage.stats.wall_seconds >= 0.2
    assert stage.stats.cpu_seconds < 0.05
    assert stage.stats.seconds == stage.stats.wall_seconds  # the deprecated alias


def test_lines_are_counted_once_split_and_the_report_entry_has_both_rates() -> None:
    stage = ParagraphStage()
    stage(_batch("one\ntwo\n\nthree", "four"))
    assert stage.stats.lines_in == 4 and stage.stats.batches == 1
    repair_like = _Sleeps()  # before the split there are no lines
    repair_like.process = lambda batch: batch  # type: ignore[method-assign]
    repair_like(_batch("one\ntwo"))
    assert repair_like.stats.lines_in == 0

    stats = StageStats("x", cpu_seconds=0.5, wall_seconds=2.0, lines_in=1000)
    other = StageStats("x", cpu_seconds=0.5, wall_seconds=2.0, lines_in=1000)
    stats.merge(other)
    entry = _stage_entry(stats, 4_000_000)
    assert entry["cpu_seconds"] == 1.0 and entry["wall_seconds"] == 4.0 and entry["lines_in"] == 2000
    assert entry["mb_per_s_cpu"] == 4.0 and entry["mb_per_s_wall"] == 1.0
    assert entry["us_per_line_cpu"] == 500.0
    assert "seconds" not in entry and _stage_entry(StageStats("read"), 1)["us_per_line_cpu"] is None
