"""The run report: per-stage counts and timings, as JSON (for machines) and Markdown (for people)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from .corpus_dedup import RunDedup
from .output import ShardSummary
from .shard import ShardResult
from ..plumbing.stage import StageStats

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


def rejected_files(results: list[ShardResult]) -> dict:
    """Files of this run that gave no document at all (every record, or the file, rejected), with the
    reason each was first rejected for: what the run summary warns about."""
    reasons: Counter = Counter()
    for r in results:
        for n_docs, _, reason in r.file_rejects.values():
            if n_docs == 0:
                reasons[reason] += 1
    return {"rejected_files": sum(reasons.values()),
            "rejected_file_reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))}


def skipped_records(results: list[ShardResult]) -> dict[str, int]:
    """Input records that are not documents by nature (WARC request, metadata, warcinfo, revisit), by
    record type: neither documents nor rejects, counted so that the input adds up."""
    skipped: Counter = Counter()
    for r in results:
        read = r.stats.get("read")
        if read is not None:
            skipped.update({k.split(":", 1)[1]: v for k, v in read.counts.items() if k.startswith("skipped:")})
    return dict(sorted(skipped.items()))


def mostly_rejected(report: dict) -> bool:
    """More than half of the files this run read gave no document (all of them, or a raw folder of
    unreadable files): the CLI exits 4 so that scripts notice."""
    i = report["inputs"]
    return i.get("rejected_files", 0) * 2 > i["files"] > 0


def rejected_warning(report: dict) -> str | None:
    """One line when some files of this run gave no document, else None."""
    i = report["inputs"]
    n = i.get("rejected_files", 0)
    if not n:
        return None
    reasons = ", ".join(f"{k} {v}" for k, v in i.get("rejected_file_reasons", {}).items())
    share = "all" if n == i["files"] else f"{n} of {i['files']}"
    return (f"{share} files read by this run gave no document ({reasons}): see the rejects table "
            "(`corpusclean files rejects`)")


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
        "inputs": {"files": sum(r.n_files for r in results), "bytes": bytes_in, "shards": len(results), **plan,
                   **rejected_files(results), "skipped_records": skipped_records(results)},
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
        # Per stage: cpu_seconds (CPU time of the thread running it) and wall_seconds (elapsed,
        # also waiting for a core), each summed over shards; MB/s is the run's input MB over them.
        "stages": {name: _stage_entry(stats, bytes_in) for name, stats in stages.items()},
        "config": config,
    }


def _stage_entry(stats: StageStats, bytes_in: int) -> dict:
    return {
        **stats.to_dict(),
        "mb_per_s_cpu": _mb_per_s(bytes_in, stats.cpu_seconds),
        "mb_per_s_wall": _mb_per_s(bytes_in, stats.wall_seconds),
        "us_per_line_cpu": round(stats.cpu_seconds * 1e6 / stats.lines_in, 3) if stats.lines_in else None,
    }


def _mb_per_s(nbytes: int, seconds: float) -> float | None:
    return round(nbytes / 1e6 / seconds, 3) if seconds > 0 else None


def _or_dash(value: float | None) -> str:
    return "-" if value is None else f"{value}"


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
    ]
    warning = rejected_warning(report)
    if warning:
        lines.append(f"- **warning**: {warning}")
    lines += [
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
    ]
    skipped = report["inputs"].get("skipped_records")
    if skipped:  # not documents by nature: neither kept nor rejected
        lines.append(f"| non-document records skipped ({', '.join(f'{k} {v}' for k, v in skipped.items())}) "
                     f"| {sum(skipped.values())} |")
    lines.append("")
    for title, key in (("Boilerplate reasons", "boilerplate_reasons"), ("Reject reasons", "reject_reasons"),
                       ("Document languages", "languages"), ("Duplicates", "dedup")):
        if report[key]:
            lines += [f"## {title}", "", "| | count |", "|---|---:|"]
            lines += [f"| {k} | {v} |" for k, v in report[key].items()]
            lines.append("")
    lines += [
        "## Stages",
        "",
        "CPU s: CPU time of the thread running the stage; wall s: elapsed time (on a busy machine it also",
        "counts waiting for a core). Both are summed over shards, so MB/s (the run's input MB over those",
        "seconds) is per core; µs/line is CPU time per paragraph line the stage saw.",
        "",
        "| stage | CPU s | wall s | MB/s (CPU) | MB/s (wall) | µs/line (CPU) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in report["stages"].items():
        lines.append(
            f"| {name} | {s['cpu_seconds']} | {s['wall_seconds']} | {_or_dash(s['mb_per_s_cpu'])} "
            f"| {_or_dash(s['mb_per_s_wall'])} | {_or_dash(s['us_per_line_cpu'])} |"
        )
    lines.append("")
    return "\n".join(lines)
