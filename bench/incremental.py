"""Incremental benchmark: the corpus arrives in N daily batches; each day is one real `corpusclean run`.

Prints, per day, what was cleaned, the flow's MB/s, the dedup stage (committed keys + new ones),
the pairs verified and skipped, parts rewritten and peak memory; then runs once over all days
and checks the two corpora are identical row for row (apart from run_id). Also prints what the
persistent dedup index costs on disk per keyed paragraph.

    python bench/incremental.py --mb 200 --days 4      # generated corpus (cached in bench/out)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from bench.throughput import generated_corpus, run_pipeline  # noqa: E402
from corpusclean.tasks.corpus import corpus_state  # noqa: E402

MIB = 1024 * 1024


def same_corpus(a: Path, b: Path) -> bool:
    snap_a, snap_b = corpus_state.snapshot(a), corpus_state.snapshot(b)
    for table in ("documents", "paragraphs", "rejects"):
        if not snap_a.read(table).drop_columns(["run_id"]).equals(snap_b.read(table).drop_columns(["run_id"])):
            print(f"  {table}: DIFFERENT")
            return False
    return True


def index_bytes(out: Path) -> int:
    manifest = corpus_state.load_manifest(out)
    names = {f for part in manifest.parts for f in part.files() if "/keys/" in f or "/decisions/" in f}
    return sum((out / name).stat().st_size for name in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=200, help="size of the generated corpus")
    parser.add_argument("--days", type=int, default=4, help="batches the files arrive in")
    parser.add_argument("--work", type=Path, default=HERE / "out")
    parser.add_argument("--skip-one-shot", action="store_true", help="do not run the one-shot comparison")
    args = parser.parse_args()

    source = generated_corpus(args.work, args.mb)
    files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
    raw, out, once = (args.work / f"incremental-{n}" for n in ("raw", "clean", "once"))
    for folder in (raw, out, once):
        shutil.rmtree(folder, ignore_errors=True)
    raw.mkdir(parents=True)

    rows = []
    for day in range(args.days):
        for f in files[day * len(files) // args.days : (day + 1) * len(files) // args.days]:
            (raw / f.name).symlink_to(f)
        result = run_pipeline(raw, out, ["--task-runner", "processes"])
        r = result["report"]
        dedup = r["dedup"]
        rows.append({
            "day": day + 1,
            "mb_cleaned": r["inputs"]["bytes"] / 1e6,
            "files_new": r["inputs"]["new"],
            "files_skipped": r["inputs"]["unchanged"],
            "flow_seconds": r["wall_seconds"],
            "flow_mb_s": r["inputs"]["bytes"] / 1e6 / r["wall_seconds"],
            "dedup_cpu_seconds": r["stages"]["dedup"]["cpu_seconds"],
            "keyed_paragraphs": dedup.get("keyed_paragraphs", 0),
            "committed_paragraphs": dedup.get("committed_paragraphs", 0),
            "verified_pairs": dedup.get("candidate_pairs", 0),
            "known_pairs_skipped": dedup.get("known_pairs_skipped", 0),
            "rewritten_parts": dedup.get("rewritten_parts", 0),
            "peak_rss_pipeline_mib": result["peak_rss_pipeline"] / MIB,
        })

    print(f"\n{args.mb:g} MB in {args.days} daily runs ({date.today()}, 2-core machine, processes runner)")
    print(f"{'day':>3} {'MB new':>7} {'skipped':>7} {'flow s':>7} {'MB/s':>6} {'dedup cpu s':>11} {'keyed':>9} "
          f"{'committed':>9} {'verified':>9} {'known':>9} {'rewr':>4} {'RSS MiB':>7}")
    for x in rows:
        print(f"{x['day']:>3} {x['mb_cleaned']:>7.1f} {x['files_skipped']:>7} {x['flow_seconds']:>7.1f} "
              f"{x['flow_mb_s']:>6.2f} {x['dedup_cpu_seconds']:>11.2f} {x['keyed_paragraphs']:>9,} "
              f"{x['committed_paragraphs']:>9,} {x['verified_pairs']:>9,} {x['known_pairs_skipped']:>9,} "
              f"{x['rewritten_parts']:>4} {x['peak_rss_pipeline_mib']:>7.0f}")
    keyed = rows[-1]["keyed_paragraphs"]
    size = index_bytes(out)
    print(f"persistent index: {size / MIB:.1f} MiB on disk for {keyed:,} keyed paragraphs = {size / max(keyed, 1):.0f} B each")

    result = {"date": str(date.today()), "mb": args.mb, "days": rows, "index_bytes": size, "keyed_paragraphs": keyed}
    if not args.skip_one_shot:
        print("one run over every day, for comparison ...", flush=True)
        single = run_pipeline(raw, once, ["--task-runner", "processes"])
        identical = same_corpus(out, once)
        print(f"one-shot: flow {single['report']['wall_seconds']:.1f} s; "
              f"daily corpus identical to one-shot, row for row: {identical}")
        result.update(one_shot_seconds=single["report"]["wall_seconds"], identical=identical)
        if not identical:
            raise SystemExit(1)
    (args.work / f"incremental-{args.mb:g}mb.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
