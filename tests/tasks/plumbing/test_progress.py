"""The run progress model: shard ticks read back, phase lines, rate and ETA."""

from __future__ import annotations

import time

from corpusclean.tasks.plumbing.progress import RunProgress, ShardTicker, format_seconds, read_ticks


def test_shard_ticks_are_summed_over_shards_and_throttled(tmp_path):
    a, b = ShardTicker(tmp_path, 0), ShardTicker(tmp_path, 1)
    a.tick(1_000_000, 10, 1)
    a.tick(2_000_000, 20, 2)  # within half a second of the first: skipped
    b.tick(500_000, 5, 0)
    assert read_ticks(tmp_path) == (1_500_000, 15, 1)
    a.tick(3_000_000, 30, 3, final=True)  # the last tick of a shard is always written
    assert read_ticks(tmp_path) == (3_500_000, 35, 3)
    assert read_ticks(tmp_path / "missing") == (0, 0, 0) and read_ticks(None) == (0, 0, 0)


def test_progress_lines_say_what_the_run_does_how_far_how_fast(tmp_path):
    p = RunProgress()
    assert p.line() == "starting: checking the inputs"
    p.update("reading", files_total=4, bytes_total=8_000_000, shards_total=2, staging_dir=tmp_path)
    assert p.finished and p.finished[0].startswith("started in ")
    p.phase_started -= 2.0  # two seconds into reading
    ShardTicker(tmp_path, 0).tick(2_000_000, 120, 1)
    p.refresh()
    line = p.line()
    assert line.startswith("reading and cleaning: 2.00/8.00 MB, files 1/4, documents 120, shards 0/2, ")
    assert "1.00 MB/s" in line and "ETA 0:06" in line
    assert abs(p.fraction() - 0.25) < 1e-9
    p.update("duplicates")
    assert p.finished[-1].startswith("read and cleaned 2.00 MB, 1 files, 120 documents in ")
    p.update("writing", write_total=2, write_done=1)
    assert p.line() == "writing Parquet: 1/2 parts, 120 documents" and p.fraction() == 0.5
    p.update("committing")
    assert p.finished[-2].startswith("found duplicates in ") and p.finished[-1].startswith("wrote 1 parts in ")


def test_format_seconds():
    assert format_seconds(5) == "0:05" and format_seconds(754) == "12:34" and format_seconds(3725) == "1:02:05"
