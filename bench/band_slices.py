"""Where a band pass's time per slice goes: the map outputs of step 3 (``band-map``), read by one partition.

Writes S synthetic band-map files as ``scatter_bands`` does (21 record batches, each sorted by partition,
N rows per segment), then times the pieces of reading one partition's 21 x S slices:

    python bench/band_slices.py --segments 51 --partitions 10      # the 5M index's shape
    python bench/band_slices.py --segments 201 --partitions 40     # 20M

CPU (process time) per slice of: opening + mapping the file, reading the IPC footer, the record batch's
metadata, the copy of the slice's three columns; and the whole ``band_pass`` read as the step does it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpusclean.tasks.corpus import dedup_partitions as dp  # noqa: E402


def write(work: Path, segments: int, parts: int, rows: int, bands: int, rng) -> None:
    local = np.arange(rows, dtype=np.uint32)
    known = rng.random(rows) < 0.5
    for s in range(segments):
        keys = (rng.integers(0, 2**63, rows, dtype=np.uint64) for _ in range(bands))
        dp.write_band_map(dp._file(work, "band-map", s), local, keys, known, parts)


def timed(label: str, n: int, fn) -> float:
    t0 = time.process_time()
    fn()
    dt = time.process_time() - t0
    print(f"  {label:44s} {dt * 1e6 / n:8.1f} µs per slice ({dt:.2f} s CPU)")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--segments", type=int, default=51)
    ap.add_argument("--partitions", type=int, default=10)
    ap.add_argument("--rows", type=int, default=100_000, help="band entries per segment and band")
    ap.add_argument("--bands", type=int, default=21)
    ap.add_argument("--passes", type=int, default=2, help="partitions read (each a band pass)")
    args = ap.parse_args()
    S, P, B = args.segments, args.partitions, args.bands
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent / "out") as tmp:
        work = Path(tmp)
        write(work, S, P, args.rows, B, np.random.default_rng(0))
        paths = [str(dp._file(work, "band-map", s)) for s in range(S)]
        n = S * B * args.passes
        print(f"{S} segments x {P} partitions x {B} bands, {args.rows:,} rows per band: "
              f"{args.rows // P:,} rows per slice; {n:,} slices read")
        ps = list(range(args.passes))
        ranges = {p: dp._ranges(work, "band-map", S, p) for p in ps}

        def open_only():
            for _ in ps:
                for _ in range(B):
                    for path in paths:
                        pa.memory_map(path).close()

        def open_footer():
            for _ in ps:
                for _ in range(B):
                    for path in paths:
                        pa.ipc.open_file(pa.memory_map(path))

        def open_footer_batch():
            for _ in ps:
                for j in range(B):
                    for path in paths:
                        pa.ipc.open_file(pa.memory_map(path)).get_batch(j)

        def as_today():
            for p in ps:
                for j in range(B):
                    dp._read_slices(work, "band-map", S, p, ("o", "key", "known"), batch=j, ranges=ranges[p])

        def offsets():
            for p in ps:
                dp._ranges(work, "band-map", S, p)

        timed("memory_map + close", n, open_only)
        timed("+ ipc.open_file (footer, schema)", n, open_footer)
        timed("+ get_batch (batch metadata)", n, open_footer_batch)
        timed("_read_slices as band_pass does (all + copy)", n, as_today)
        timed(".off.npy, once per pass and segment (per slice)", n, offsets)
        if hasattr(dp, "_band_slices"):
            def new():
                for p in ps:
                    for _ in dp._band_slices(work, S, p, B):
                        pass
            timed("_band_slices (positions saved, pread)", n, new)


if __name__ == "__main__":
    main()
