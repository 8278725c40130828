"""Peak RSS of the largest process of a real `corpusclean run` as the corpus grows (issue 13).

Generates N unique paragraphs of ~80 characters (JSON lines, 2,000 paragraphs per document),
runs the real CLI (process runner, 2 workers, classifier off) and samples every process of the
command's tree (Prefect's temporary API server apart) every 50 ms: the largest single
process's peak RSS (and which one: flow or worker), the summed peak, wall time and CPU time
(getrusage of the finished children).

    python bench/dedup_scale.py --paragraphs 1000000 3000000
    python bench/dedup_scale.py --paragraphs 1000000 --set dedup.partition_paragraphs=100000000   # one partition
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from bench.throughput import _memory, is_api_server, process_tree  # noqa: E402

PARAS_PER_DOC = 2000
FILES = 16
WORDS = [w for w in (
    "time year people way day man thing woman life child world school state family student group country problem "
    "hand part place case week company system program question work government number night point home water room "
    "mother area money story fact month lot right study book eye job word business issue side kind head house "
    "service friend father power hour game line end member law car city community name president team minute idea "
    "kid body information back parent face others level office door health person art war history party result "
    "change morning reason research girl guy moment air teacher force education").split()]


def generate(raw: Path, n: int, seed: int = 0) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    per_file = -(-n // FILES)
    made = 0
    for f in range(FILES):
        with open(raw / f"u{f:03d}.jsonl", "w") as out:
            todo = min(per_file, n - made)
            while todo > 0:
                k = min(PARAS_PER_DOC, todo)
                paras = []
                for i in range(k):
                    # unique: a serial number, then words up to ~80 characters
                    words = [f"Item {made + i:09d}"]
                    while sum(len(w) + 1 for w in words) < 72:
                        words.append(rng.choice(WORDS))
                    paras.append(" ".join(words) + ".")
                out.write(json.dumps({"text": "\n\n".join(paras), "url": f"https://s{f}.example/{made}"}) + "\n")
                made += k
                todo -= k


def _tree(root: int) -> dict[int, tuple[str, int]]:
    """pid -> ("flow" or "worker", RSS bytes) of the run's processes, Prefect's API server left out."""
    return {pid: ("flow" if pid == root else "worker", _memory(pid)[0])
            for pid, cmdline in process_tree(root) if not is_api_server(cmdline)}


def run(raw: Path, out: Path, overrides: list[str]) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    # `python -m corpusclean` (its main is guarded: worker processes are spawned and import the main module)
    cmd = [str(REPO / ".venv" / "bin" / "python"), "-m", "corpusclean", "run", "--quiet", "--raw", str(raw), "--out",
           str(out), "--set", "boilerplate.classifier=false"]
    for o in overrides:
        cmd += ["--set", o]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = {"largest": 0, "largest_role": "", "sum": 0}
    per_pid: dict[int, int] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            now = _tree(proc.pid)
            total = sum(r for _, r in now.values())
            peak["sum"] = max(peak["sum"], total)
            for pid, (role, rss) in now.items():
                per_pid[pid] = max(per_pid.get(pid, 0), rss)
                if rss > peak["largest"]:
                    peak["largest"], peak["largest_role"] = rss, role
            time.sleep(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    stdout, stderr = proc.communicate()
    done.set()
    t.join()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"corpusclean failed ({proc.returncode}):\n{stderr[-3000:]}")
    report = json.loads((out / "report.json").read_text())
    return {"wall": wall, "cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), **peak,
            "flow_peak": per_pid.get(proc.pid, 0), "dedup": report.get("dedup", {})}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paragraphs", type=int, nargs="+", default=[1_000_000, 3_000_000])
    parser.add_argument("--work", type=Path, default=HERE / "out" / "dedup-scale")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    rows = []
    for n in args.paragraphs:
        raw = args.work / f"raw-{n}"
        if not raw.exists():
            generate(raw, n)
        r = run(raw, args.work / f"out-{n}", args.overrides)
        rows.append((n, r))
        d = r["dedup"]
        print(f"{n:>11,} paragraphs: largest process {r['largest'] / 2**20:,.0f} MiB ({r['largest_role']}), "
              f"flow {r['flow_peak'] / 2**20:,.0f} MiB, summed {r['sum'] / 2**20:,.0f} MiB; wall {r['wall']:.0f} s, "
              f"CPU {r['cpu']:.0f} s; keyed {d.get('keyed_paragraphs', 0):,}, partitions {d.get('partitions', '-')}",
              flush=True)
    if len(rows) >= 2:
        (n0, a), (n1, b) = rows[0], rows[-1]
        print(f"largest process x{b['largest'] / a['largest']:.2f} for x{n1 / n0:g} paragraphs")


if __name__ == "__main__":
    main()
