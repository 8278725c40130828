"""The boilerplate stage alone, in one warm process, on real web pages: CPU and wall per line.

    PYTHONPATH=. .venv/bin/python bench/boilerplate_speed.py                   # 2,000 eval pages, 3 timed runs
    PYTHONPATH=. .venv/bin/python bench/boilerplate_speed.py --source corpus   # pages of bench/out/pages-100mb
    PYTHONPATH=. .venv/bin/python bench/boilerplate_speed.py --profile cprofile
    PYTHONPATH=. .venv/bin/python bench/boilerplate_speed.py --dump reasons.tsv --pages 0   # every eval page's verdicts
    PYTHONPATH=. .venv/bin/python bench/boilerplate_speed.py --only trafi --pages 0          # one benchmark's pages

Pages (``--source eval``: the naive text dumps ``NAME.raw.txt`` of ``../shared/eval/boilerplate/pages``
and ``../shared/eval/boilerplate-gold/pages``, sorted by name; ``corpus``: the JSON lines that
``bench/throughput.py`` builds from them, ``bench/out/pages-100mb``) are read, repaired and split
into paragraphs outside the clock, in batches as a shard makes them (``run.batch_docs`` documents,
``run.batch_mb`` of text). A warm-up stage then cleans other pages (numba's kernels, the rule
packs of every language, word tables: what a worker has after its first shard), and each timed run
is a **new** ``BoilerplateStage`` over all the batches (a worker makes one per shard: the per-line
rule memo starts empty), timed by the stage itself: CPU of its thread (``time.thread_time``) and
wall (``perf_counter``). MB are the paragraphs' UTF-8 bytes, as the run report counts them.
A machine check (``bench/machine.py``: CPU seconds of a fixed Python loop) is printed before and
after the timed runs: compare figures only between runs with similar checks.

``--only SET`` times the eval pages of one benchmark (their names start with it: ``trafi`` for
the 990 pages of the snippet set, ``dragnet``, ``cleaneval``, ``cportal``, ``readability``): the
stage's cost per MB depends on the pages (languages, short lines, how often chrome repeats).

``--dump FILE`` writes every paragraph's verdict (page, line, reason or ``keep``) of the timed
pages: two trees give byte-identical dumps iff they decide every line the same.
Point ``PYTHONPATH`` at another checkout to measure it with the same script (A/B runs).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
EVAL_DIRS = (SHARED / "eval" / "boilerplate" / "pages", SHARED / "eval" / "boilerplate-gold" / "pages")


def load_texts(source: str, corpus: Path) -> list[tuple[str, str]]:
    """(name, text) of every page of the source, in a fixed order."""
    if source == "eval":
        from corpusclean.tasks.stages.read import decode_bytes

        paths = sorted((p for d in EVAL_DIRS for p in d.glob("*.raw.txt")), key=lambda p: p.name)
        return [(p.name[: -len(".raw.txt")], decode_bytes(p.read_bytes())[0]) for p in paths]
    out = []
    if not any(corpus.glob("*.jsonl")):
        raise SystemExit(f"no JSON lines in {corpus}: build them with bench/throughput.py or ../shared/bench/pages_corpus.py")
    for path in sorted(corpus.glob("*.jsonl")):
        with path.open(encoding="utf-8") as f:
            for k, line in enumerate(f):
                if line.strip():
                    out.append((f"{path.stem}:{k}", json.loads(line)["text"]))
    return out


def make_batches(pages: list[tuple[str, str]], config) -> list:
    """Repaired and paragraph-split batches, as a shard makes them (documents and MB per batch)."""
    from corpusclean.tasks.plumbing.records import Batch, Document
    from corpusclean.tasks.stages.paragraphs import ParagraphStage
    from corpusclean.tasks.stages.repair import RepairStage

    repair, paragraphs = RepairStage(use_ftfy=config.repair.ftfy), ParagraphStage()
    batches, docs, chars = [], [], 0
    max_chars = config.run.batch_mb * 1_000_000

    def flush():
        if docs:
            batches.append(paragraphs(repair(Batch(list(docs)))))
            docs.clear()

    for i, (name, text) in enumerate(pages):
        docs.append(Document(name, f"{name}.txt", "0" * 64, 0, text, "utf-8"))
        chars += len(text)
        if len(docs) >= config.run.batch_docs or chars >= max_chars:
            flush()
            chars = 0
    flush()
    return batches


def run_stage(batches: list, config):
    """A new stage over every batch; returns the stage (its stats hold the times)."""
    from corpusclean.tasks.stages.boilerplate import BoilerplateStage

    stage = BoilerplateStage(config.boilerplate)
    for batch in batches:
        stage(batch)
    return stage


def dump(batches: list, path: Path) -> None:
    with path.open("w", encoding="utf-8") as f:
        for batch in batches:
            p = batch.paragraphs
            for pos, index, reason in zip(p.doc_pos, p.paragraph_index, p.boilerplate_reason):
                f.write(f"{batch.docs[pos].doc_id}\t{index}\t{reason or 'keep'}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", choices=("eval", "corpus"), default="eval")
    parser.add_argument("--corpus", type=Path, default=ROOT / "bench" / "out" / "pages-100mb")
    parser.add_argument("--only", default=None, metavar="SET",
                        help="eval pages of one benchmark only (trafi, dragnet, cleaneval, cportal, readability)")
    parser.add_argument("--pages", type=int, default=2000, help="pages timed (0: all); the warm-up uses others")
    parser.add_argument("--warmup-pages", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs, each with a new stage")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--profile", choices=("cprofile",), default=None, help="profile one more run")
    parser.add_argument("--dump", type=Path, default=None, help="write every timed line's verdict here")
    parser.add_argument("--json", action="store_true", help="one JSON line per timed run")
    args = parser.parse_args()

    import corpusclean.tasks.stages.boilerplate as boilerplate
    from corpusclean.tasks.config import load_config

    config = load_config(None, args.overrides)
    pages = load_texts(args.source, args.corpus)
    if args.only:
        if args.source != "eval":
            parser.error("--only picks eval pages: use it with --source eval")
        chosen = [p for p in pages if p[0].split("_")[0] == args.only]
        if not chosen:
            parser.error(f"no eval page of the set {args.only!r}")
        # warmed on other sets' pages: what a worker has seen before
        others = [p for p in pages if p[0].split("_")[0] != args.only]
        timed = chosen if args.pages <= 0 else chosen[: args.pages]
        warm = others[: args.warmup_pages]
    else:
        timed = pages if args.pages <= 0 else pages[: args.pages]
        warm = pages[len(timed):][: args.warmup_pages] or pages[: args.warmup_pages]
    batches = make_batches(timed, config)
    warm_batches = make_batches(warm, config)
    n_lines = sum(len(b.paragraphs) for b in batches)
    mb = sum(len(t.encode("utf-8")) for b in batches for t in b.paragraphs.text) / 1e6
    print(f"# {boilerplate.__file__}", file=sys.stderr)
    print(f"# {len(timed)} pages ({args.source}), {len(batches)} batches, {n_lines:,} lines, {mb:.1f} MB; "
          f"warm-up on {len(warm)} pages", file=sys.stderr)
    run_stage(warm_batches, config)  # numba, rule packs of each language, word tables
    gc.collect()
    sys.path.insert(0, str(ROOT))  # bench/ as a package, however the script is started
    from bench.machine import describe, python_loop_seconds

    machine_before = python_loop_seconds()
    for k in range(args.repeat):
        t_cpu, t_wall = time.process_time(), time.perf_counter()
        stage = run_stage(batches, config)
        cpu_total, wall_total = time.process_time() - t_cpu, time.perf_counter() - t_wall
        s = stage.stats
        row = {
            "run": k, "pages": len(timed), "lines": n_lines, "mb": round(mb, 3),
            "cpu_s": round(s.cpu_seconds, 3), "wall_s": round(s.wall_seconds, 3),
            "process_cpu_s": round(cpu_total, 3), "process_wall_s": round(wall_total, 3),
            "mb_per_cpu_s": round(mb / s.cpu_seconds, 2), "us_per_line_cpu": round(1e6 * s.cpu_seconds / n_lines, 2),
            "mb_per_wall_s": round(mb / s.wall_seconds, 2),
        }
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(f"run {k}: CPU {s.cpu_seconds:.2f} s = {row['mb_per_cpu_s']:.2f} MB/s, {row['us_per_line_cpu']:.2f} µs/line; "
                  f"wall {s.wall_seconds:.2f} s = {row['mb_per_wall_s']:.2f} MB/s", flush=True)
        gc.collect()
    if args.repeat:
        print("# " + describe(machine_before) + f"; after the runs {python_loop_seconds():.2f} s", file=sys.stderr)
    if args.profile == "cprofile":
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        run_stage(batches, config)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(35)
    if args.dump is not None:
        if not args.repeat:
            run_stage(batches, config)
        dump(batches, args.dump)
        print(f"# verdicts of {n_lines:,} lines written to {args.dump}", file=sys.stderr)


if __name__ == "__main__":
    main()
