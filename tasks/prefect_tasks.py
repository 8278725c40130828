"""Thin Prefect task wrappers around the plain stage functions.

Each task is one shard-sized unit of work (seconds, not milliseconds): Prefect's per-task
overhead is a few milliseconds, so tasks never run per paragraph or per document.
Caching is off: inputs are large and runs must always re-read the raw folder.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from .corpus import corpus_state, output, runs, shard
from .config import Config, DedupConfig
from .corpus.corpus_dedup import PartRewrite, RunDedup, ShardDecisions, committed_parts, find_run_duplicates
from .corpus.partitioned_index import INDEX_DIR
from .corpus.corpus_state import InputPlan, Manifest, Part
from .plumbing.faults import fault_point
from .plumbing.memory import release_memory
from .plumbing.timeline import event, span
from .stages.read import SourceFile, discover
from .corpus.shard import ShardResult

_TASK = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="discover-inputs", **_TASK)
def discover_inputs(raw_dir: Path, follow_symlinks: str = "inside") -> list[SourceFile]:
    return discover(raw_dir, follow_symlinks)


@task(name="plan-inputs", **_TASK)
def plan_inputs(files: list[SourceFile], manifest: Manifest, read_key: str | None = None,
                retry_rejects: bool = False) -> InputPlan:
    return corpus_state.plan_inputs(files, manifest, read_key, retry_rejects)


@task(name="clean-shard", **_TASK)
def clean_shard(index: int, files: list[SourceFile], config: Config, staging_dir: Path) -> ShardResult:
    fault_point("clean_shard", staging_dir)
    event("clean_shard", "B", index=index, bytes=sum(f.size for f in files))
    try:
        return shard.clean_shard(index, files, config, staging_dir)
    finally:
        release_memory()  # the worker idles (holding its peak) while the flow process dedups
        event("clean_shard", "E", index=index)


def _partition_mapper():
    """Where the partitions of the duplicate search run: on the Dask cluster's workers when the
    flow runs on Dask (plain functions on the runner's client: a step is P short, independent
    calls over files, with no Prefect state to track per partition); on the process runner's
    worker processes (idle meanwhile: plain functions on its executor, a partition per worker);
    else here, one at a time."""
    from concurrent.futures import ProcessPoolExecutor

    from prefect.context import FlowRunContext

    from .corpus.dedup_partitions import PoolMap, dask_map, local_map

    ctx = FlowRunContext.get()
    runner = getattr(ctx, "task_runner", None) if ctx is not None else None
    if runner is not None and type(runner).__name__ == "DaskTaskRunner":
        return dask_map(runner.client)
    executor = getattr(runner, "_executor", None)
    workers = getattr(runner, "_max_workers", None) or 1
    if isinstance(executor, ProcessPoolExecutor) and workers > 1:
        return PoolMap(executor, workers)
    return local_map


@task(name="find-duplicates", **_TASK)
def find_duplicates(
    results: list[ShardResult], config: DedupConfig, reference: bool, out_dir: Path, manifest: Manifest, plan: InputPlan,
    work_dir: Path | None = None,
) -> RunDedup:
    """Over the committed corpus (its persistent keys) plus this run's shards. ``work_dir``: where
    the partitioned search exchanges its files (the run's staging folder; shared under Dask)."""
    if not results and not plan.changed:
        return find_run_duplicates([], config, reference)  # nothing new: committed decisions stand
    fault_point("after_clean")
    event("find_duplicates", "B")
    superseded = plan.superseded
    committed = committed_parts(out_dir, manifest.parts, superseded)  # where the parts are: read where searched
    try:
        return find_run_duplicates(results, config, reference, committed, work_dir=work_dir,
                                   mapper=_partition_mapper(), index_dir=out_dir / INDEX_DIR)
    finally:
        del committed
        release_memory()  # the flow process holds the search's peak otherwise while workers finalize
        event("find_duplicates", "E")


@task(name="finalize-shard", **_TASK)
def finalize_shard(
    result: ShardResult, decisions: ShardDecisions, part: Part, out_dir: Path, run_id: str, pipeline_version: str
) -> output.ShardSummary:
    with span("finalize_shard", index=result.index):
        summary = output.finalize_shard(result, decisions, part, out_dir, run_id, pipeline_version)
        fault_point("mid_write")
        release_memory()
    return summary


@task(name="rewrite-part", **_TASK)
def rewrite_part(out_dir: Path, part: Part, rewrite: PartRewrite, run_dir: Path) -> Part:
    return output.rewrite_part(out_dir, part, rewrite, run_dir)


@task(name="write-report", **_TASK)
def write_report(run: runs.RunContext, plan: InputPlan, results: list[ShardResult], dedup: RunDedup,
                 summaries: list[output.ShardSummary]) -> dict:
    with span("write_report"):
        return runs.write_report(run, plan, results, dedup, summaries)


@task(name="commit-run", **_TASK)
def commit_run(run: runs.RunContext, plan: InputPlan, new: list[Part], rewritten: dict[int, Part], report: dict,
               file_rejects: dict[str, int] | None = None) -> Manifest:
    with span("commit_run"):
        return runs.commit_run(run, plan, new, rewritten, report, file_rejects)
