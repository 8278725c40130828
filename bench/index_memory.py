"""What the persistent dedup index costs at scale: disk, peak memory per process, time.

Writes a synthetic committed index of N keyed paragraphs (random keys, 100k per part, 20% in
committed clusters of two), then times and measures the run-level duplicate search that every
incremental run does (load every committed part's keys and decisions + the search), as the
find-duplicates task runs it, in a fresh process. The keys are random, so this measures the
index's own cost, not verification.

    python bench/index_memory.py --paragraphs 5000000                    # partitioned, one partition at a time here
    python bench/index_memory.py --paragraphs 5000000 --workers 2        # partitions on a Dask LocalCluster
    python bench/index_memory.py --paragraphs 5000000 --single           # the single search (all keys in one process)
    python bench/index_memory.py --paragraphs 20000000 --keep            # reuse the index written before
    python bench/index_memory.py --paragraphs 5000000 --new 200000 --touch 20000  # a run that adds paragraphs
    python bench/index_memory.py --paragraphs 5000000 --workers 2 --keep --index   # with the persisted partitioned
                                                        # index (<work>/_dedup_index): built by the first such run, read by the next

``--new N``: the run adds N paragraphs (random keys), ``--touch K`` of them exact copies of committed
paragraphs in committed clusters (one per cluster, spread over the parts): those clusters are
touched by this run's edges and decided again (no verification: their band keys stay random).

Peak memory is each process's VmHWM (its peak RSS): the coordinating process (loads the
committed decisions, runs the steps or hands them to the workers, merges clusters) and, with
``--workers``, each Dask worker. Time: wall and CPU (process time of this process and, with
workers, theirs).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
  # noqa: E402
from corpusclean.tasks.config import DedupConfig  # noqa: E402
from corpusclean.tasks.corpus.corpus_dedup import committed_parts, find_run_duplicates  # noqa: E402
from corpusclean.tasks.corpus.corpus_state import Part  # noqa: E402
from corpusclean.tasks.corpus.dedup_index import write_decisions, write_keys  # noqa: E402
from corpusclean.tasks.corpus.dedup_partitions import dask_map, local_map  # noqa: E402
from corpusclean.tasks.corpus.shard import ShardResult  # noqa: E402
from corpusclean.tasks.stages.sketch import DedupKeys, lsh_shape  # noqa: E402

PER_PART = 100_000
PARAS_PER_DOC = 10


def fake_part_files(k: int) -> Part:
    name = f"runs/r{k:04d}"
    return Part(f"r{k:04d}", f"{name}/documents/p.parquet", f"{name}/paragraphs/p.parquet", f"{name}/rejects/p.parquet",
                keys=f"{name}/keys/p.arrow", decisions=f"{name}/decisions/p.arrow")


def fake_part(out: Path, k: int, n: int, n_bands: int, rng: np.random.Generator) -> Part:
    part = fake_part_files(k)
    rows = np.arange(n, dtype=np.int64)
    keys = DedupKeys(rows, rng.integers(0, 2**63, (n, 2), dtype=np.uint64), rng.integers(0, 2**63, (n, n_bands), dtype=np.uint64))
    n_docs = n // PARAS_PER_DOC
    doc_ids = [f"{k:04d}{d:028x}" for d in range(n_docs)]
    write_keys(out / part.keys, rows, (rows // PARAS_PER_DOC).astype(np.int32), (rows % PARAS_PER_DOC).astype(np.int32),
               np.full(n, 300, np.int32), keys, doc_ids, ["site.example"] * n_docs, [f"f{k}.jsonl"] * n_docs)
    # 20% of paragraphs in clusters of two (the second a duplicate of the first, as committed).
    cluster: list[str | None] = [None] * n
    kind = np.zeros(n, np.int8)
    for i in range(0, n // 5, 2):
        cid = f"{doc_ids[i // PARAS_PER_DOC]}:{i % PARAS_PER_DOC}"
        cluster[i] = cluster[i + 1] = cid
        kind[i + 1] = 2
    write_decisions(out / part.decisions, np.zeros(n, bool), cluster, kind)
    return part


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paragraphs", type=int, default=5_000_000)
    parser.add_argument("--work", type=Path, default=HERE / "out" / "index-memory")
    parser.add_argument("--workers", type=int, default=0, help="Dask LocalCluster workers (0: local, one partition at a time)")
    parser.add_argument("--worker-memory", default="2GiB", help="per-worker memory limit with --workers")
    parser.add_argument("--single", action="store_true", help="the single search (every key in one process)")
    parser.add_argument("--partition", type=int, default=None, help="keyed paragraphs per partition (default: config)")
    parser.add_argument("--keep", action="store_true", help="reuse the index in --work if it has --paragraphs")
    parser.add_argument("--new", type=int, default=0, help="paragraphs this run adds (random keys)")
    parser.add_argument("--touch", type=int, default=0, help="of them, exact copies of committed clustered paragraphs")
    parser.add_argument("--index", action="store_true", help="search with the persisted partitioned index "
                        "(<work>/_dedup_index: built when absent or stale, else read)")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    config = DedupConfig()
    n_bands, _ = lsh_shape(config)
    if not args.measure:  # write the index here, measure in a fresh process (peak RSS is per process)
        stamp = args.work / f"written-{args.paragraphs}"
        if not (args.keep and stamp.exists()):
            shutil.rmtree(args.work, ignore_errors=True)
            rng = np.random.default_rng(0)
            for k in range((args.paragraphs + PER_PART - 1) // PER_PART):
                fake_part(args.work, k, min(PER_PART, args.paragraphs - k * PER_PART), n_bands, rng)
            stamp.touch()
        subprocess.run([sys.executable, __file__, "--measure", *sys.argv[1:]], check=True)
        return
    if args.workers:
        import distributed

        cluster = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None,
                                           memory_limit=args.worker_memory)
        client = distributed.Client(cluster)
        mapper = traced(dask_map(client), client)
        worker_cpu0 = sum(client.run(time.process_time).values())
    else:
        mapper = local_map
    if args.partition:
        config = config.model_copy(update={"partition_paragraphs": args.partition})
    parts = [fake_part_files(k) for k in range((args.paragraphs + PER_PART - 1) // PER_PART)]
    disk = sum(p.stat().st_size for p in (args.work / "runs").rglob("*.arrow"))
    index_dir = args.work / "_dedup_index"
    base = _hwm()
    started = time.perf_counter()
    cpu0 = time.process_time()
    committed = committed_parts(args.work, parts, set())  # (the single search loads them all)
    loaded = time.perf_counter() - started
    # One new shard (empty by default): the search runs over the committed keys as it does every night.
    new = new_shard(args.work, parts, args.new, args.touch, n_bands)
    work = args.work / "search"
    work.mkdir(exist_ok=True)
    result = find_run_duplicates([new], config, committed=committed, partitioned=not args.single, work_dir=work,
                                 mapper=mapper, **({"index_dir": index_dir} if args.index else {}))
    total = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    peak = _hwm()
    n = args.paragraphs
    counts = result.stats.counts
    how = "single search" if args.single else f"{counts.get('partitions', 1)} partitions"
    where = f" on {args.workers} Dask workers" if args.workers else ""
    print(f"{n:,} committed keyed paragraphs in {len(parts)} parts; {how}{where}")
    print(f"index on disk: {disk / 2**20:,.0f} MiB = {disk / n:.0f} B per paragraph")
    if args.index:
        size = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())
        print(f"persisted partitioned index: {result.index}; {size / 2**20:,.0f} MiB = {size / n:.0f} B per paragraph")
    print(f"load {loaded:.1f} s, load + search {total:.1f} s wall, {cpu:.1f} s CPU here; this process's peak "
          f"{peak / 2**20:,.0f} MiB ({(peak - base) / 2**20:,.0f} MiB above its start = {(peak - base) / n:.0f} B per "
          f"paragraph); rewrites: {len(result.rewrites)}, known pairs skipped: {counts['known_pairs_skipped']:,}, "
          f"committed clusters touched: {counts.get('touched_clusters', '-')}"
          + (f", index exceptions: {counts['index_exceptions']:,}" if args.index else ""))
    if args.workers:
        peaks = {w: max(step[4][w] for step in mapper.steps) for w in client.run(_hwm)}  # (reset per step)
        wcpu = sum(client.run(time.process_time).values()) - worker_cpu0
        print(f"workers: peak {', '.join(f'{v / 2**20:,.0f}' for v in peaks.values())} MiB; CPU {wcpu:.1f} s (summed)")
        print(f"CPU in all: {cpu + wcpu:.1f} s = {(cpu + wcpu) / n * 1e6:.2f} us per committed paragraph; wall {total:.1f} s")
        print("per step: calls, wall s, workers' CPU s, largest worker peak MiB (peak reset before each step)")
        for name, calls, wall, wc, peak in mapper.steps:
            print(f"  {name:16s} {calls:6d} {wall:8.1f} {wc:8.1f} {max(peak.values()) / 2**20:8,.0f}")
        client.close()
        cluster.close()


def new_shard(work: Path, parts: list[Part], n: int, touch: int, n_bands: int) -> ShardResult:
    """This run's shard: ``n`` paragraphs of random keys, the first ``touch`` with the exact key of a
    committed clustered paragraph (the first of a cluster of two; one cluster per copy)."""
    from corpusclean.tasks.corpus.dedup_index import read_exact

    rng = np.random.default_rng(1)
    new = ShardResult(0, work / "x.arrow", work / "y.arrow", work / "z.arrow")
    exact = rng.integers(0, 2**63, (n, 2), dtype=np.uint64)
    clustered = PER_PART // 5 // 2  # clusters of two per part
    for k, part in enumerate(parts[: -(-touch // clustered) if touch else 0]):
        take = np.arange(0, 2 * min(clustered, touch - k * clustered), 2)
        exact[k * clustered : k * clustered + take.size] = read_exact(work / part.keys)[take]
    rows = np.arange(n, dtype=np.int64)
    new.n_docs = -(-n // PARAS_PER_DOC)
    new.n_paragraphs = n
    new.doc_ids = [f"new{d:029x}" for d in range(new.n_docs)]
    new.doc_sites = ["site.example"] * new.n_docs
    new.key_rows, new.key_doc = rows, (rows // PARAS_PER_DOC).astype(np.int32)
    new.key_pidx, new.key_len = (rows % PARAS_PER_DOC).astype(np.int32), np.full(n, 300, np.int32)
    new.keys = DedupKeys(rows, exact, rng.integers(0, 2**63, (n, n_bands), dtype=np.uint64))
    return new


def traced(mapper, client):
    """The Dask mapper, recording per step its wall time, the workers' CPU and their peak RSS (each
    worker's VmHWM is reset before the step: ``clear_refs``)."""
    steps = []

    def run(fn, argsets):
        client.run(_reset_hwm)
        cpu0 = sum(client.run(time.process_time).values())
        t0 = time.perf_counter()
        out = mapper(fn, argsets)
        wall = time.perf_counter() - t0
        steps.append((fn.__name__, len(argsets), wall, sum(client.run(time.process_time).values()) - cpu0,
                      client.run(_hwm)))
        return out

    run.steps = steps
    return run


def _reset_hwm() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _hwm() -> int:
    """This process's peak RSS so far (VmHWM; ru_maxrss would count a spawned worker's parent)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


if __name__ == "__main__":
    main()
