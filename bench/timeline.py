"""Where a run's wall-clock seconds go: a table from a ``CORPUSCLEAN_TIMELINE`` file.

    CORPUSCLEAN_TIMELINE=/tmp/t.jsonl corpusclean run ...       # or: bench/throughput.py --timeline /tmp/t.jsonl
    python bench/timeline.py /tmp/t.jsonl

Prints the command's phases (start-up, waiting for the API, the flow's cleaning, duplicate
search, writing, report, commit, exit) with their wall and CPU seconds, then one line per
worker process: its warm-up, every shard it cleaned or wrote (start and end relative to the
launch, wall and CPU), its busy and idle time while the cleaning phase lasted, and the
busy fraction of the workers over that phase (1.0 = no core left idle by the flow's plan).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def spans(events: list[dict]) -> list[dict]:
    """Begin/end pairs as spans (name, pid, index, start, end, cpu)."""
    open_: dict[tuple, dict] = {}
    out = []
    for e in events:
        key = (e["name"], e["pid"], e.get("index"))
        if e["ph"] == "B":
            open_[key] = e
        elif e["ph"] == "E" and key in open_:
            b = open_.pop(key)
            out.append({"name": e["name"], "pid": e["pid"], "index": e.get("index"), "start": b["t"], "end": e["t"],
                        "cpu": e["cpu"] - b["cpu"], **{k: v for k, v in b.items() if k not in ("name", "ph", "pid", "t", "cpu")}})
    return out


def summarise(events: list[dict]) -> dict:
    events = sorted(events, key=lambda e: e["t"])
    t0 = min(e["t"] for e in events if e["name"] == "launch") if any(e["name"] == "launch" for e in events) \
        else events[0]["t"]
    first = {}
    for e in events:
        first.setdefault((e["name"], e["ph"]), e)
    sp = spans(events)
    shards = [s for s in sp if s["name"] == "clean_shard"]
    finals = [s for s in sp if s["name"] == "finalize_shard"]
    workers = sorted({s["pid"] for s in shards + finals} | {s["pid"] for s in sp if s["name"] == "warm_worker"})

    def at(name, ph="I"):
        e = first.get((name, ph))
        return None if e is None else e["t"] - t0

    clean_start = at("submit_shards")
    clean_end = max(s["end"] for s in shards) - t0 if shards else None
    phases = []

    def add(label, a, b):
        if a is not None and b is not None:
            phases.append((label, a, b))

    add("command start-up (imports, plan) until the API wait", 0.0, at("wait_api", "B"))
    add("waiting for the temporary API server", at("wait_api", "B"), at("wait_api", "E"))
    add("flow engine start (until the shards are submitted)", at("wait_api", "E"), clean_start)
    add("cleaning shards (workers)", clean_start, clean_end)
    add("last shard's end until the dedup starts", clean_end, at("find_duplicates", "B"))
    add("duplicate search (flow process)", at("find_duplicates", "B"), at("find_duplicates", "E"))
    add("finalize: writing the parts (workers)", at("find_duplicates", "E"),
        max(s["end"] for s in finals) - t0 if finals else None)
    add("after the writes until the report", max(s["end"] for s in finals) - t0 if finals else None,
        at("write_report", "B"))
    add("report (flow process)", at("write_report", "B"), at("write_report", "E"))
    add("commit (flow process)", at("commit_run", "B"), at("commit_run", "E"))
    add("flow end (artifacts, engine)", at("commit_run", "E"), at("flow", "E"))
    add("flow returned until the command exits", at("flow", "E"), at("exit"))
    add("process exit (after os._exit)", at("exit"), at("done"))

    per_worker = {}
    for pid in workers:
        mine = sorted((s for s in shards if s["pid"] == pid), key=lambda s: s["start"])
        busy = sum(s["end"] - s["start"] for s in mine)
        cpu = sum(s["cpu"] for s in mine)
        warm = [s for s in sp if s["name"] == "warm_worker" and s["pid"] == pid]
        writes = sorted((s for s in finals if s["pid"] == pid), key=lambda s: s["start"])
        # The worker's process CPU from its first write's start to its last write's end, against the
        # writes' own: the rest is what the task runner costs between them (Prefect's engine).
        begun = [e for e in events if e["pid"] == pid and e["name"] == "finalize_shard" and e["ph"] == "B"]
        ended = [e for e in events if e["pid"] == pid and e["name"] == "finalize_shard" and e["ph"] == "E"]
        write_gap_cpu = (ended[-1]["cpu"] - begun[0]["cpu"] - sum(s["cpu"] for s in writes)) if len(writes) > 1 else None
        per_worker[pid] = {
            "warm": (warm[0]["start"] - t0, warm[0]["end"] - t0, warm[0]["cpu"]) if warm else None,
            "shards": [(s["index"], s["start"] - t0, s["end"] - t0, s["cpu"], s.get("bytes", 0)) for s in mine],
            "finals": [(s["index"], s["start"] - t0, s["end"] - t0, s["cpu"])
                       for s in sorted((s for s in finals if s["pid"] == pid), key=lambda s: s["start"])],
            "busy": busy, "cpu": cpu,
            "write_gap_cpu": write_gap_cpu,
        }
    span_clean = (clean_end - clean_start) if clean_start is not None and clean_end is not None else None
    busy_fraction = (sum(w["busy"] for w in per_worker.values()) / (len(per_worker) * span_clean)
                     if span_clean and per_worker else None)
    flow_b, flow_e = at("flow", "B"), at("flow", "E")
    return {"phases": phases, "workers": per_worker, "busy_fraction": busy_fraction,
            "clean_span": span_clean, "flow": (flow_b, flow_e), "end": at("done") or at("exit"),
            "flow_cpu": _cpu_between(events, first.get(("flow", "B")), first.get(("flow", "E")))}


def _cpu_between(events, b, e):
    return None if b is None or e is None else e["cpu"] - b["cpu"]


def render(summary: dict) -> str:
    lines = ["phase                                                     start     end    wall"]
    for label, a, b in summary["phases"]:
        lines.append(f"{label:<55} {a:>7.2f} {b:>7.2f} {b - a:>7.2f}")
    fb, fe = summary["flow"]
    if fb is not None and fe is not None:
        lines.append(f"{'flow (Prefect flow run, whole)':<55} {fb:>7.2f} {fe:>7.2f} {fe - fb:>7.2f}"
                     f"   flow process CPU {summary['flow_cpu']:.2f} s")
    lines.append("")
    for pid, w in summary["workers"].items():
        warm = w["warm"]
        head = f"worker {pid}: " + (f"warm-up {warm[0]:.2f}-{warm[1]:.2f} ({warm[2]:.2f} CPU s); " if warm else "")
        lines.append(head + f"cleaning busy {w['busy']:.2f} s wall, {w['cpu']:.2f} CPU s")
        for index, a, b, cpu, nbytes in w["shards"]:
            lines.append(f"   shard {index:>3} {nbytes / 1e6:>6.1f} MB  {a:>7.2f} -> {b:>7.2f}  wall {b - a:>6.2f}  CPU {cpu:>6.2f}")
        for index, a, b, cpu in w["finals"]:
            lines.append(f"   write {index:>3}            {a:>7.2f} -> {b:>7.2f}  wall {b - a:>6.2f}  CPU {cpu:>6.2f}")
        if w.get("write_gap_cpu") is not None:
            lines.append(f"   between its writes (the task runner's engine per write task): "
                         f"{w['write_gap_cpu'] / (len(w['finals']) - 1):.2f} CPU s per task")
    if summary["busy_fraction"] is not None:
        lines.append(f"workers' busy fraction while cleaning: {summary['busy_fraction']:.3f} "
                     f"(cleaning phase {summary['clean_span']:.2f} s)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    args = parser.parse_args()
    print(render(summarise(load(args.file))))


if __name__ == "__main__":
    main()
