"""Memory of reading a big WET file: a generated ~1 GB ``.warc.wet`` streams with bounded RSS.

Writes ``bench/out/wet-1gb/raw/big.warc.wet`` (once; ``--mb`` sets the size) with warcio's own
writer: a ``warcinfo`` record, then ``conversion`` records (as Common Crawl's WET files hold)
whose text mixes paragraphs of a pool of generated pages (``bench/corpus_gen.py``; exact
paragraph copies across records are frequent, as on the real web). Then measures, each in a
child process so that its peak RSS is its own:

* ``reader``: ``tasks.stages.read.read_source`` over the whole file (warcio record by record, decoding,
  one Document at a time): records, MB/s and peak RSS (``ru_maxrss`` of the child).
* ``run`` (``--run``): the real ``corpusclean run`` over the folder, peak RSS summed over the
  pipeline's processes (as ``bench/throughput.py`` measures it; the Prefect API server apart).

    .venv/bin/python bench/wet_stream.py              # generate if needed, reader only
    .venv/bin/python bench/wet_stream.py --run        # and the whole pipeline (minutes)
    .venv/bin/python bench/wet_stream.py --mb 200 --gzip
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

_READER = r"""
import json, resource, sys, time
from pathlib import Path
from corpusclean.tasks.config import ReadConfig
from corpusclean.tasks.stages.read import SourceFile, read_source
path = Path(sys.argv[1])
started = time.perf_counter()
docs = rejects = chars = 0
for item in read_source(SourceFile(path, path.name, path.stat().st_size), ReadConfig()):
    if hasattr(item, "text"):
        docs += 1
        chars += len(item.text)
    else:
        rejects += 1
wall = time.perf_counter() - started
print(json.dumps({"docs": docs, "rejects": rejects, "chars": chars, "seconds": wall,
                  "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def generate(path: Path, mb: float, gzipped: bool, seed: int = 11) -> None:
    from warcio.warcwriter import WARCWriter

    from bench.corpus_gen import _page

    rng = random.Random(seed)
    pool: list[str] = []
    while sum(map(len, pool)) < 8_000_000:  # 8 MB of distinct paragraphs to draw from
        pool.extend(line for line in _page(rng, rng.choice(("en", "fr")))["lines"] if len(line) > 80)
    target = int(mb * 1_000_000)
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as f:
        writer = WARCWriter(f, gzip=gzipped)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "corpusclean bench/wet_stream.py"}))
        i = 0
        while f.tell() < target:
            text = f"Page {i}\n" + "\n".join(rng.sample(pool, rng.randint(4, 16)))
            record = writer.create_warc_record(
                f"https://site{i % 997}.example/page/{i}", "conversion",
                payload=BytesIO(text.encode("utf-8")), warc_content_type="text/plain",
                warc_headers_dict={"WARC-Date": "2026-01-01T00:00:00Z"},
            )
            writer.write_record(record)
            i += 1
    tmp.rename(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=1000.0, help="size of the generated file (MB on disk)")
    parser.add_argument("--gzip", action="store_true", help="write .warc.wet.gz (per-record gzip) instead")
    parser.add_argument("--work", type=Path, default=HERE / "out" / "wet-1gb")
    parser.add_argument("--run", action="store_true", help="also run the whole pipeline over it")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="--run: a config override, repeatable (e.g. dedup.enabled=false)")
    parser.add_argument("--skip-reader", action="store_true", help="only the --run measure")
    args = parser.parse_args()

    name = "big.warc.wet.gz" if args.gzip else "big.warc.wet"
    raw = args.work / f"raw-{int(args.mb)}mb{'-gz' if args.gzip else ''}"
    path = raw / name
    if not path.exists():
        started = time.perf_counter()
        generate(path, args.mb, args.gzip)
        print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - started:.0f} s")
    size = path.stat().st_size
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    figures: dict = {"file_bytes": size}
    if not args.skip_reader:
        proc = subprocess.run([sys.executable, "-c", _READER, str(path)], capture_output=True, text=True, env=env, cwd=REPO)
        if proc.returncode != 0:
            raise SystemExit(f"reader failed:\n{proc.stderr}")
        reader = json.loads(proc.stdout)
        reader["mb_per_s"] = size / 1e6 / reader["seconds"]
        print(f"reader: {size / 1e6:.0f} MB, {reader['docs']:,} documents, {reader['rejects']} rejects, "
              f"{reader['seconds']:.0f} s ({reader['mb_per_s']:.1f} MB/s), peak RSS {reader['peak_rss'] / 2**20:,.0f} MiB")
        figures["reader"] = reader
    if args.run:
        from bench.throughput import run_pipeline

        out = args.work / "clean"
        shutil.rmtree(out, ignore_errors=True)
        res = run_pipeline(raw, out, [x for o in args.overrides for x in ("--set", o)])
        report = res.pop("report")
        res["documents"] = report["counts"]["documents"]
        res["mb_per_s"] = size / 1e6 / res["command_seconds"]
        figures["run"] = res
        print(f"run {' '.join(args.overrides) or '(defaults)'}: {res['command_seconds']:.0f} s ({res['mb_per_s']:.2f} MB/s), {res['documents']:,} documents, "
              f"peak RSS pipeline {res['peak_rss_pipeline'] / 2**20:,.0f} MiB (anon {res['peak_anon_pipeline'] / 2**20:,.0f}, "
              f"PSS {res['peak_pss_pipeline'] / 2**20:,.0f}; flow process {res['peak_rss_flow'] / 2**20:,.0f}), "
              f"API server {res['peak_rss_server'] / 2**20:,.0f} MiB")
        shutil.rmtree(out, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
