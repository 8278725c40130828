"""The run report: per-stage counts and timings, as JSON (for machines) and Markdown (for people)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tasks.corpus_dedup import RunDedup
from tasks.output import ShardSummary
from tasks.shard import ShardResult
from tasks.stage import StageStats

STAGE_ORDER = ["read", "repair", "paragraphs", "boilerplate", "language", "sketch", "stage_write", "dedup", "write"]


def merge_stage_stats(results: list[ShardResult], dedup: RunDedup, summaries: list[ShardSummary]) -> dict[str, StageStats]:
    merged: dict[str, StageStats] = {}
    for result in results:
        for name, stats in result.stats.items():
            merged.setdefault(name, StageStats(name)).merge(stats)
    merged["dedup"] = dedup.stats
    write = StageStats("write")
    for summary in summaries:
        write.merge(summary.stats)
    merged["write"] = write
    return {name: merged[name] for name in STAGE_ORDER if name in merged}


def build_report(
    *,
    plan: dict[str, int],
    run_id: str,
    pipeline_version: str,
    raw_dir: Path,
    out_dir: Path,
    config: dict,
    results: list[ShardResult],
    dedup: RunDedup,
    summaries: list[ShardSummary],
    started_at: str,
    finished_at: str,
    wall_seconds: float,
    flow_run_id: str | None,
) -> dict:
    bytes_in = sum(r.bytes_in for r in results)
    boilerplate: Counter = Counter()
    rejects: Counter = Counter()
    languages: Counter = Counter()
    for s in summaries:
        boilerplate.update(s.boilerplate)
        rejects.update(s.reject_reasons)
        languages.update(s.languages)
    stages = merge_stage_stats(results, dedup, summaries)
    paragraphs = sum(s.paragraphs for s in summaries)
    kept = sum(s.kept for s in summaries)
    n_boilerplate = sum(boilerplate.values())
    return {
        "run_id": run_id,
        "pipeline_version": pipeline_version,
        "flow_run_id": flow_run_id,
        "started_at": started_at,
        "finished_at": finished_at,
        "wall_seconds": round(wall_seconds, 3),
        "raw_dir": str(raw_dir),
        "out_dir": str(out_dir),
        # files: cleaned by this run (new + changed); unchanged ones were cleaned by earlier runs.
        "inputs": {"files": sum(r.n_files for r in results), "bytes": bytes_in, "shards": len(results), **plan},
        "counts": {
            "documents": sum(s.documents for s in summaries),
            "paragraphs": paragraphs,
            "kept": kept,
            "boilerplate": n_boilerplate,
            "duplicate": paragraphs - kept - n_boilerplate,
            "rejects": sum(s.rejects for s in summaries),
            "clean_chars": sum(s.chars_clean for s in summaries),
        },
        "boilerplate_reasons": dict(sorted(boilerplate.items(), key=lambda kv: (-kv[1], kv[0]))),
        "reject_reasons": dict(sorted(rejects.items(), key=lambda kv: (-kv[1], kv[0]))),
        "languages": {str(k): v for k, v in sorted(languages.items(), key=lambda kv: (-kv[1], str(kv[0])))},
        "dedup": dict(sorted(dedup.stats.counts.items())),
        "stages": {
            name: {**stats.to_dict(), "mb_per_s": _mb_per_s(bytes_in, stats.seconds)} for name, stats in stages.items()
        },
        "config": config,
    }


def _mb_per_s(nbytes: int, seconds: float) -> float | None:
    return round(nbytes / 1e6 / seconds, 3) if seconds > 0 else None


def render_markdown(report: dict) -> str:
    c = report["counts"]
    lines = [
        f"# corpusclean run {report['run_id']}",
        "",
        f"- pipeline version: {report['pipeline_version']}",
        f"- started: {report['started_at']}, finished: {report['finished_at']} ({report['wall_seconds']} s)",
        f"- input: `{report['raw_dir']}` — {report['inputs']['files']} files, "
        f"{report['inputs']['bytes'] / 1e6:.3f} MB, {report['inputs']['shards']} shards "
        f"({report['inputs'].get('new', 0)} new, {report['inputs'].get('changed', 0)} changed, "
        f"{report['inputs'].get('unchanged', 0)} unchanged and skipped, {report['inputs'].get('removed', 0)} removed from raw)",
        f"- output: `{report['out_dir']}`",
        "",
        "## Counts",
        "",
        "| | count |",
        "|---|---:|",
        f"| documents | {c['documents']} |",
        f"| paragraphs | {c['paragraphs']} |",
        f"| kept | {c['kept']} |",
        f"| boilerplate | {c['boilerplate']} |",
        f"| duplicate | {c['duplicate']} |",
        f"| rejects | {c['rejects']} |",
        "",
    ]
    for title, key in (("Boilerplate reasons", "boilerplate_reasons"), ("Reject reasons", "reject_reasons"),
                       ("Document languages", "languages"), ("Duplicates", "dedup")):
        if report[key]:
            lines += [f"## {title}", "", "| | count |", "|---|---:|"]
            lines += [f"| {k} | {v} |" for k, v in report[key].items()]
            lines.append("")
    lines += ["## Stages", "", "| stage | seconds | MB/s of input |", "|---|---:|---:|"]
    for name, s in report["stages"].items():
        lines.append(f"| {name} | {s['seconds']} | {s['mb_per_s'] if s['mb_per_s'] is not None else '-'} |")
    lines.append("")
    return "\n".join(lines)
