"""Throughput benchmark: the real `corpusclean run` on a corpus of real web-page text (default).

Prints, per stage, CPU and wall seconds, MB/s of each and CPU microseconds per paragraph line;
end to end MB/s, paragraphs per second, peak memory of the pipeline's processes, and, in the
same run, the naive datasketch signature loop against our vectorised signatures on the same
paragraphs and shingles (a machine-independent ratio).

    python bench/throughput.py --mb 50                  # real pages (built once, cached) + run
    python bench/throughput.py --mb 200 --generated     # the generated corpus (bench/corpus_gen.py)
    python bench/throughput.py --mb 50 --threads        # thread runner instead of processes
    python bench/throughput.py --raw /my/corpus         # your own files

The real-page corpus is built by ../shared/bench/pages_corpus.py (the naive text dumps of the
real pages of ../shared/eval: hundreds of short menu/link lines per page, like Common Crawl WET)
into bench/out/pages-{N}mb/. The generated corpus has few lines per page and overstates speed.

Stage "CPU s" is the CPU time of the thread that ran the stage, "wall s" its elapsed time (on a
busy machine it also counts waiting for a core), each summed over shards and workers: stage MB/s
are input megabytes over those seconds, i.e. per core (with 2 workers the flow can be faster
than any one stage). "flow" is the Prefect flow's wall time; "command" also counts starting
Python and Prefect's temporary API.

The last line is a machine check before and after the run (``bench/machine.py``): the CPU seconds
of a fixed Python loop. This machine's speed varies (the same commit has run at half the MB/s on
another day, CPU time included); compare figures only between runs with similar checks.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path


HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PAGES_SCRIPT = REPO.parent / "shared" / "bench" / "pages_corpus.py"
sys.path.insert(0, str(REPO))

from bench.corpus_gen import generate  # noqa: E402
from bench.machine import describe, python_loop_seconds  # noqa: E402
from corpusclean.tasks.corpus import corpus_state  # noqa: E402


def _memory(pid: int, with_pss: bool = True) -> tuple[int, int, int]:
    """(RSS, anonymous RSS, PSS) of one process in bytes (PSS 0 unless ``with_pss``).

    RSS also counts file-backed pages: shared libraries (mapped by every worker, so summing RSS
    counts them once per process) and memory-mapped staged files (reclaimable page cache).
    RssAnon is the process's own heap (Python objects, numpy/Arrow buffers): what the pipeline
    really allocates. PSS counts each shared page once overall, split between its processes; the
    kernel walks every mapping of the process to compute it (milliseconds for a worker), so it is
    read only near a peak (``communicate_sampling``).
    """
    rss = anon = pss = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("RssAnon:"):
                    anon = int(line.split()[1]) * 1024
        if with_pss:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss = int(line.split()[1]) * 1024
                        break
    except OSError:
        pass
    return rss, anon, pss


def process_tree(root_pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of ``root_pid`` and every process below it, read from /proc."""
    children: dict[int, list[int]] = {}
    cmdlines: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdlines[int(entry)] = f.read().decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, stack = [], [root_pid]
    while stack:
        pid = stack.pop()
        stack.extend(children.get(pid, []))
        found.append((pid, cmdlines.get(pid, "")))
    return found


def is_api_server(cmdline: str) -> bool:
    return "uvicorn" in cmdline or "prefect.server" in cmdline


def _tree_memory(root_pid: int, tree: list[tuple[int, str]] | None = None,
                 pss_above: int | None = None) -> dict[str, int]:
    """Memory of the pipeline's processes (the command, its flow and its workers), summed over the
    process tree, in bytes: ``rss``, ``anon`` (RssAnon), ``pss``, ``flow_rss`` and ``flow_anon``
    (the root process alone: the flow, with the run-level dedup) and ``server`` (RSS of Prefect's
    temporary API server, not counted in the others). ``tree``: the processes, if already listed;
    ``pss_above``: read PSS only if the summed RSS is at least this."""
    total = dict.fromkeys(("rss", "anon", "pss", "flow_rss", "flow_anon", "server"), 0)
    tree = process_tree(root_pid) if tree is None else tree
    sizes = [(pid, cmdline, _memory(pid, with_pss=False)) for pid, cmdline in tree]
    for pid, cmdline, (rss, anon, _) in sizes:
        if is_api_server(cmdline):
            total["server"] += rss
            continue
        total["rss"] += rss
        total["anon"] += anon
        if pid == root_pid:
            total["flow_rss"], total["flow_anon"] = rss, anon
    if pss_above is None or total["rss"] >= pss_above:
        total["pss"] = sum(_memory(pid)[2] for pid, cmdline, _ in sizes if not is_api_server(cmdline))
    return total


def communicate_sampling(proc: subprocess.Popen, every: float = 0.05, tree_every: float = 0.5) -> tuple[str, str, dict, dict]:
    """``proc.communicate()`` while sampling its process tree's memory (``_tree_memory``) every
    ``every`` seconds: (stdout, stderr, the peak of each measure, every measure at the sample
    with the highest summed RSS).

    The sampler shares the machine with the run, so it is kept cheap (it took ~10% of one core
    when it listed every process and read every PSS at each sample): the process tree is listed
    again every ``tree_every`` seconds (workers and the server start once), and PSS is read only
    at samples within 3% of the highest summed RSS so far."""
    peak = dict.fromkeys(("rss", "anon", "pss", "flow_rss", "flow_anon", "server"), 0)
    at_peak = dict(peak)
    done = threading.Event()

    def sample() -> None:
        tree, listed = None, 0.0
        while not done.is_set():
            if tree is None or time.monotonic() - listed >= tree_every:
                tree, listed = process_tree(proc.pid), time.monotonic()
            now = _tree_memory(proc.pid, tree, pss_above=int(peak["rss"] * 0.97))
            if now["rss"] > peak["rss"]:
                at_peak.update(now)
            for name, value in now.items():
                peak[name] = max(peak[name], value)
            time.sleep(every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    done.set()
    sampler.join()
    return stdout, stderr, peak, at_peak


def _mark(timeline: Path | None, name: str) -> None:
    if timeline is not None:
        with timeline.open("a") as f:
            f.write(json.dumps({"name": name, "ph": "I", "pid": os.getpid(), "t": time.time(), "cpu": 0.0}) + "\n")


def run_pipeline(raw: Path, out: Path, extra: list[str], timeline: Path | None = None) -> dict:
    cmd = [str(REPO / ".venv" / "bin" / "corpusclean"), "run", "--quiet", "--raw", str(raw), "--out", str(out), *extra]
    # This checkout's code first: the virtualenv may be shared with other checkouts (its editable install points at one).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    if timeline is not None:  # every process of the run appends its events (tasks/plumbing/timeline.py)
        timeline.unlink(missing_ok=True)
        env["CORPUSCLEAN_TIMELINE"] = str(timeline)
    _mark(timeline, "launch")
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stdout, stderr, peak, at_peak = communicate_sampling(proc)
    wall = time.perf_counter() - started
    _mark(timeline, "done")
    if proc.returncode != 0:
        raise SystemExit(f"corpusclean failed ({proc.returncode}):\n{stderr}")
    report = json.loads((out / "report.json").read_text())
    return {
        "command_seconds": wall,
        "peak_rss_pipeline": peak["rss"],
        "peak_anon_pipeline": peak["anon"],
        "peak_pss_pipeline": peak["pss"],
        "peak_rss_flow": peak["flow_rss"],
        "peak_anon_flow": peak["flow_anon"],
        "peak_rss_server": peak["server"],
        "at_peak_rss": at_peak,
        "report": report,
    }


def signature_ratio(raw_paragraphs: list[str], ngram: int = 5, num_perm: int = 128, seed: int = 1) -> dict:
    """The naive datasketch loop vs our batch signatures, on the same paragraphs and shingles."""
    from datasketch import MinHash

    from corpusclean.tasks.stages.minhash import normalize_for_dedup, signatures

    norm = [normalize_for_dedup(p) for p in raw_paragraphs]
    mb = sum(len(p.encode("utf-8")) for p in raw_paragraphs) / 1e6
    started = time.perf_counter()
    for text in norm:
        m = MinHash(num_perm=num_perm, seed=seed)
        shingles = {text[i : i + ngram] for i in range(max(1, len(text) - ngram + 1))}
        for shingle in shingles:
            m.update(shingle.encode("utf-8"))
    naive = time.perf_counter() - started
    started = time.perf_counter()
    signatures(norm, ngram, num_perm, seed)
    ours = time.perf_counter() - started
    return {"sample_mb": mb, "naive_mb_s": mb / naive, "ours_mb_s": mb / ours, "ratio": naive / ours}


def sample_paragraphs(out: Path, target_mb: float) -> list[str]:
    table = corpus_state.read_table(out, "paragraphs", columns=["text", "is_boilerplate"])
    texts = [t for t, chrome in zip(table.column("text").to_pylist(), table.column("is_boilerplate").to_pylist()) if not chrome]
    picked, size = [], 0
    step = max(1, len(texts) // 20000)
    for text in texts[::step]:
        picked.append(text)
        size += len(text.encode("utf-8"))
        if size >= target_mb * 1e6:
            break
    return picked


def generated_corpus(work: Path, mb: float) -> Path:
    """The generated corpus of ``mb`` MB, made once and cached under ``work``."""
    raw = work / f"corpus-{mb:g}mb"
    if not (raw / ".complete").exists():
        print(f"generating {mb:g} MB of pages in {raw} ...", flush=True)
        info = generate(raw, mb)
        (raw / ".complete").write_text(json.dumps(info))
    return raw


def pages_corpus(work: Path, mb: float, files: int = 16) -> Path:
    """The real-page corpus of ``mb`` MB (../shared/bench/pages_corpus.py), made once and cached under ``work``."""
    raw = work / f"pages-{mb:g}mb"
    if (raw / ".complete").exists():
        return raw
    if not PAGES_SCRIPT.is_file():
        raise SystemExit(f"no real-page corpus builder at {PAGES_SCRIPT} (../shared is absent): "
                         f"use --generated for the generated corpus, or --raw DIR")
    print(f"building {mb:g} MB of real page text in {raw} ...", flush=True)
    shutil.rmtree(raw, ignore_errors=True)  # an interrupted build: start again
    done = subprocess.run([sys.executable, str(PAGES_SCRIPT), str(raw), "--mb", f"{mb:g}", "--files", str(files)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{PAGES_SCRIPT.name} failed ({done.returncode}):\n{done.stderr}")
    (raw / ".complete").write_text(json.dumps({"builder": str(PAGES_SCRIPT), "mb": mb, "files": files,
                                               "output": done.stdout.strip()}))
    return raw


def _num(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=50.0, help="size of the built corpus (default 50)")
    corpus = parser.add_mutually_exclusive_group()
    corpus.add_argument("--generated", action="store_true",
                        help="the generated corpus (bench/corpus_gen.py) instead of real pages")
    corpus.add_argument("--raw", type=Path, help="benchmark these files instead of a built corpus")
    parser.add_argument("--work", type=Path, default=HERE / "out", help="where corpora and outputs go")
    parser.add_argument("--threads", action="store_true", help="use the thread runner (default: processes)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override, repeatable")
    parser.add_argument("--timeline", type=Path, help="record every process's events here and print where the "
                        "wall time went (bench/timeline.py)")
    parser.add_argument("--sample-mb", type=float, default=0.3, help="paragraph sample for the datasketch ratio")
    args = parser.parse_args()

    if args.raw:
        raw, kind = args.raw, "raw"
    elif args.generated:
        raw, kind = generated_corpus(args.work, args.mb), "generated"
    else:
        raw, kind = pages_corpus(args.work, args.mb), "pages"
    out = args.work / f"clean-{raw.name}"
    extra = ["--task-runner", "threads" if args.threads else "processes"]
    for override in args.overrides:
        extra += ["--set", override]
    print(f"running corpusclean on {raw} ({'threads' if args.threads else 'processes'}) ...", flush=True)
    shutil.rmtree(out, ignore_errors=True)  # a fresh corpus: runs into an existing one only clean new files
    machine_before = python_loop_seconds()
    result = run_pipeline(raw, out, extra, args.timeline)
    machine_after = python_loop_seconds()
    report = result["report"]
    mb = report["inputs"]["bytes"] / 1e6
    flow_s = report["wall_seconds"]
    sig = signature_ratio(sample_paragraphs(out, args.sample_mb))

    print()
    print(f"corpus: {raw} — {mb:.1f} MB, {report['inputs']['files']} files, {report['counts']['documents']} documents, "
          f"{report['counts']['paragraphs']} paragraphs, {report['inputs']['shards']} shards")
    print(f"{'stage':<12} {'CPU s':>8} {'wall s':>8} {'MB/s CPU':>9} {'MB/s wall':>9} {'µs/line CPU':>11}")
    for name, stage in report["stages"].items():
        print(f"{name:<12} {stage['cpu_seconds']:>8.2f} {stage['wall_seconds']:>8.2f} "
              f"{_num(stage['mb_per_s_cpu'], 9, 2)} {_num(stage['mb_per_s_wall'], 9, 2)} "
              f"{_num(stage['us_per_line_cpu'], 11, 2)}")
    print("(stage seconds are summed over shards and workers: stage MB/s = input MB / those seconds, i.e. per core; "
          "CPU = the stage thread's CPU time, wall = elapsed, incl. waiting for a core)")
    print(f"{'flow':<12} {'':>8} {flow_s:>8.2f} {'':>9} {mb / flow_s:>9.2f}   "
          f"(wall, whole run, {report['counts']['paragraphs'] / flow_s:,.0f} paragraphs/s)")
    print(f"{'command':<12} {'':>8} {result['command_seconds']:>8.2f} {'':>9} {mb / result['command_seconds']:>9.2f}   "
          f"(wall, incl. Prefect start-up)")
    at = result["at_peak_rss"]
    print(f"peak memory of the pipeline's processes (flow + workers, summed): RSS {result['peak_rss_pipeline'] / 2**20:,.0f} MiB "
          f"(then: flow process {at['flow_rss'] / 2**20:,.0f}, workers {(at['rss'] - at['flow_rss']) / 2**20:,.0f}); "
          f"Prefect's temporary API server {result['peak_rss_server'] / 2**20:,.0f} MiB more")
    print(f"  peak anonymous RSS (own heap, no shared libraries or mapped files) {result['peak_anon_pipeline'] / 2**20:,.0f} MiB, "
          f"PSS (shared pages counted once) {result['peak_pss_pipeline'] / 2**20:,.0f} MiB; "
          f"flow process alone: RSS {result['peak_rss_flow'] / 2**20:,.0f}, anon {result['peak_anon_flow'] / 2**20:,.0f} MiB")
    print(f"signatures on {sig['sample_mb']:.2f} MB of paragraphs: datasketch loop {sig['naive_mb_s']:.3f} MB/s, "
          f"ours {sig['ours_mb_s']:.2f} MB/s, ratio {sig['ratio']:.0f}x")
    print(f"kept {report['counts']['kept']}, boilerplate {report['counts']['boilerplate']}, duplicate {report['counts']['duplicate']}")
    print(describe(machine_before) + f"; after the run {machine_after:.2f} s")

    record = {
        "date": date.today().isoformat(), "corpus": str(raw), "corpus_kind": kind, "mb": mb, "runner": "threads" if args.threads else "processes",
        "flow_seconds": flow_s, "command_seconds": result["command_seconds"],
        "flow_mb_s": mb / flow_s, "command_mb_s": mb / result["command_seconds"],
        "paragraphs_per_s": report["counts"]["paragraphs"] / flow_s,
        "peak_rss_pipeline_mib": result["peak_rss_pipeline"] / 2**20,
        "peak_pss_pipeline_mib": result["peak_pss_pipeline"] / 2**20,
        "peak_anon_pipeline_mib": result["peak_anon_pipeline"] / 2**20,
        "peak_rss_flow_mib": result["peak_rss_flow"] / 2**20,
        "peak_anon_flow_mib": result["peak_anon_flow"] / 2**20,
        "peak_rss_server_mib": result["peak_rss_server"] / 2**20,
        "stages": {
            k: {f: v[f] for f in ("cpu_seconds", "wall_seconds", "mb_per_s_cpu", "mb_per_s_wall", "us_per_line_cpu", "lines_in")}
            for k, v in report["stages"].items()
        },
        "signatures": sig, "counts": report["counts"],
        "machine_check_seconds": {"before": machine_before, "after": machine_after},
    }
    if args.timeline is not None:
        from bench.timeline import load, render, summarise

        timeline = summarise(load(args.timeline))
        print()
        print(render(timeline))
        record["timeline"] = {"phases": timeline["phases"], "busy_fraction": timeline["busy_fraction"],
                              "workers": {str(k): v for k, v in timeline["workers"].items()}}
    (args.work / f"result-{raw.name}.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
