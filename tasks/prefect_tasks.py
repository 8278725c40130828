"""Thin Prefect task wrappers around the plain stage functions.

Each task is one shard-sized unit of work (seconds, not milliseconds): Prefect's per-task
overhead is a few milliseconds, so tasks never run per paragraph or per document.
Caching is off: inputs are large and runs must always re-read the raw folder.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks import output, report, runs, shard
from tasks.config import Config, DedupConfig
from tasks.corpus_dedup import RunDedup, ShardDecisions, find_run_duplicates
from tasks.read import SourceFile, discover
from tasks.shard import ShardResult

_TASK = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="discover-inputs", **_TASK)
def discover_inputs(raw_dir: Path) -> list[SourceFile]:
    return discover(raw_dir)


@task(name="clean-shard", **_TASK)
def clean_shard(index: int, files: list[SourceFile], config: Config, staging_dir: Path) -> ShardResult:
    return shard.clean_shard(index, files, config, staging_dir)


@task(name="find-duplicates", **_TASK)
def find_duplicates(results: list[ShardResult], config: DedupConfig, reference: bool = False) -> RunDedup:
    return find_run_duplicates(results, config, reference)


@task(name="finalize-shard", **_TASK)
def finalize_shard(
    result: ShardResult, decisions: ShardDecisions, run_dir: Path, run_id: str, pipeline_version: str
) -> output.ShardSummary:
    return output.finalize_shard(result, decisions, run_dir, run_id, pipeline_version)


@task(name="write-report", **_TASK)
def write_report(run: runs.RunContext, results: list[ShardResult], dedup: RunDedup,
                 summaries: list[output.ShardSummary]) -> dict:
    return runs.write_report(run, results, dedup, summaries)


@task(name="commit-output", **_TASK)
def commit_output(run: runs.RunContext) -> None:
    output.commit_output(run.out_dir, run.run_dir, run.run_id)
