"""What the persistent dedup index costs at scale: disk and peak memory per committed paragraph.

Writes a synthetic committed index of N keyed paragraphs (random keys, 100k per part, some
clusters), then times and measures the run-level duplicate search that every incremental run
does (load every committed part's keys and decisions + the search), as the find-duplicates
task runs it. The keys are random, so this measures the index's own cost, not verification.

    python bench/index_memory.py --paragraphs 5000000
"""

from __future__ import annotations

import argparse
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
from corpusclean.tasks.corpus.corpus_dedup import find_run_duplicates, load_committed  # noqa: E402
from corpusclean.tasks.corpus.corpus_state import Part  # noqa: E402
from corpusclean.tasks.corpus.dedup_index import write_decisions, write_keys  # noqa: E402
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
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    config = DedupConfig()
    n_bands, _ = lsh_shape(config)
    if not args.measure:  # write the index here, measure in a fresh process (peak RSS is per process)
        shutil.rmtree(args.work, ignore_errors=True)
        rng = np.random.default_rng(0)
        for k in range((args.paragraphs + PER_PART - 1) // PER_PART):
            fake_part(args.work, k, min(PER_PART, args.paragraphs - k * PER_PART), n_bands, rng)
        subprocess.run([sys.executable, __file__, "--measure", "--paragraphs", str(args.paragraphs), "--work", str(args.work)],
                       check=True)
        return
    parts = [fake_part_files(k) for k in range((args.paragraphs + PER_PART - 1) // PER_PART)]
    disk = sum(p.stat().st_size for p in args.work.rglob("*.arrow"))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.perf_counter()
    committed = [load_committed(args.work, i, part, set()) for i, part in enumerate(parts)]
    loaded = time.perf_counter() - started
    # One new (empty) shard: the search runs over the committed keys as it does every night.
    new = ShardResult(0, args.work / "x.arrow", args.work / "y.arrow", args.work / "z.arrow")
    new.keys = DedupKeys(np.zeros(0, np.int64), np.zeros((0, 2), np.uint64), np.zeros((0, n_bands), np.uint64))
    result = find_run_duplicates([new], config, committed=committed)
    total = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    n = args.paragraphs
    print(f"{n:,} committed keyed paragraphs in {len(parts)} parts")
    print(f"index on disk: {disk / 2**20:,.0f} MiB = {disk / n:.0f} B per paragraph")
    print(f"load {loaded:.1f} s, load + search {total:.1f} s; peak memory above the process's start: {peak / 2**20:,.0f} MiB "
          f"= {peak / n:.0f} B per paragraph; rewrites: {len(result.rewrites)}, "
          f"known pairs skipped: {result.stats.counts['known_pairs_skipped']:,}")


if __name__ == "__main__":
    main()
