"""The opt-in run timeline (CORPUSCLEAN_TIMELINE) and bench/timeline.py's table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from corpusclean.tasks.plumbing import timeline

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from bench.timeline import render, summarise  # noqa: E402


def test_nothing_is_written_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(timeline.ENV, raising=False)
    timeline.event("x")
    with timeline.span("y"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_events_and_spans(tmp_path, monkeypatch):
    path = tmp_path / "t.jsonl"
    monkeypatch.setenv(timeline.ENV, str(path))
    timeline.event("launch")
    with timeline.span("clean_shard", index=3, bytes=10):
        pass
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["name"], e["ph"]) for e in events] == [("launch", "I"), ("clean_shard", "B"), ("clean_shard", "E")]
    assert events[1]["index"] == 3 and events[1]["bytes"] == 10 and {"pid", "t", "cpu"} <= set(events[1])


def test_summary_of_a_run():
    def e(name, t, ph="I", pid=1, cpu=0.0, **kw):
        return {"name": name, "ph": ph, "pid": pid, "t": t, "cpu": cpu, **kw}

    events = [
        e("launch", 100.0), e("wait_api", 101.0, "B"), e("wait_api", 105.0, "E"), e("flow", 105.5, "B"),
        e("submit_shards", 106.0),
        e("clean_shard", 106.5, "B", pid=2, index=0, bytes=5_000_000), e("clean_shard", 116.0, "E", pid=2, cpu=9.0, index=0),
        e("clean_shard", 106.5, "B", pid=3, index=1, bytes=5_000_000), e("clean_shard", 111.0, "E", pid=3, cpu=4.0, index=1),
        e("find_duplicates", 116.0, "B"), e("find_duplicates", 117.0, "E"),
        e("finalize_shard", 117.5, "B", pid=2, index=0), e("finalize_shard", 118.0, "E", pid=2, index=0),
        e("write_report", 118.1, "B"), e("write_report", 118.2, "E"), e("commit_run", 118.2, "B"), e("commit_run", 118.5, "E"),
        e("flow", 118.6, "E"), e("exit", 119.0), e("done", 119.1),
    ]
    s = summarise(events)
    phases = {label: (a, b) for label, a, b in s["phases"]}
    assert phases["cleaning shards (workers)"] == (6.0, 16.0)
    assert phases["duplicate search (flow process)"] == (16.0, 17.0)
    assert abs(s["busy_fraction"] - (9.5 + 4.5) / (2 * 10.0)) < 1e-9
    assert "shard   0" in render(s)
