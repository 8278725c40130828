"""The clean-corpus flow: wiring only. Every decision lives in ``tasks/``.

No ``from __future__ import annotations`` here: Prefect builds the parameter model from the
signature, and a deployment that loads the flow by entrypoint cannot resolve string annotations.
"""

from pathlib import Path

from prefect import flow, unmapped
from prefect.utilities.annotations import quote
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

from tasks import prefect_tasks as t
from tasks import progress, runs
from tasks.config import Config, RunConfig, load_config
from tasks.shard import plan_shards


def make_task_runner(run: RunConfig) -> TaskRunner:
    if run.task_runner == "processes":
        return ProcessPoolTaskRunner(max_workers=run.workers)
    if run.task_runner == "dask":
        from prefect_dask import DaskTaskRunner  # optional dependency: pip install 'corpusclean[dask]'

        if run.dask_address:
            return DaskTaskRunner(address=run.dask_address)
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={"n_workers": run.workers, "threads_per_worker": 1, "dashboard_address": None},
        )
    return ThreadPoolTaskRunner(max_workers=run.workers)


# Scheduled and deployed runs load this function by name, so its default runner is the one they
# use: worker processes on both cores (the CLI picks the runner from the config instead).
@flow(name="clean-corpus", log_prints=False, task_runner=ProcessPoolTaskRunner(max_workers=2))
def clean_corpus(
    raw_dir: Path = Path("data/raw"),
    out_dir: Path = Path("data/clean"),
    config_path: Path | None = None,
    overrides: list[str] | None = None,
    retry_rejects: bool = False,
) -> dict:
    """Clean the new and changed files under ``raw_dir`` into the deduplicated Parquet corpus in ``out_dir``.

    Files already in the corpus (same path, same SHA-256) are skipped, unless they had rejects and
    the read settings changed since (or ``retry_rejects``); new paragraphs are deduplicated against
    the whole corpus. The run commits all its files at once, or nothing.
    """
    config: Config = load_config(config_path, overrides)
    run = runs.start_run(raw_dir, out_dir, config, flow_run_id=flow_run.get_id())
    try:
        files = t.discover_inputs(run.raw_dir, config.read.follow_symlinks)
        plan = t.plan_inputs(quote(files), quote(run.manifest), runs.read_fingerprint(config), retry_rejects)
        shards = plan_shards(plan.process, config.run.shard_mb)
        futures = t.clean_shard.map(range(len(shards)), shards, unmapped(config), unmapped(run.staging_dir))
        results = []
        for done, future in enumerate(as_completed(futures), start=1):
            results.append(future.result())
            progress.report("clean", done, len(shards))
        results.sort(key=lambda r: r.index)
        runs.forget_unverified(plan, results)
        progress.report("dedup", 0, 1)
        # quote(): large arguments are passed as they are; Prefect would otherwise walk every element.
        dedup = t.find_duplicates(
            quote(results), config.dedup, config.run.reference, run.out_dir, quote(run.manifest), quote(plan)
        )
        progress.report("dedup", 1, 1)
        parts = runs.new_parts(run, results)
        summaries = t.finalize_shard.map(
            results, dedup.decisions, parts, unmapped(run.out_dir), unmapped(run.run_id), unmapped(run.pipeline_version)
        ).result()
        replaced = [run.manifest.parts[r.position] for r in dedup.rewrites]
        rewritten = t.rewrite_part.map(unmapped(run.out_dir), replaced, dedup.rewrites, unmapped(run.run_dir)).result()
        report = t.write_report(run, quote(plan), quote(results), quote(dedup), quote(summaries))
        file_rejects = {rel: n for r in results for rel, (_, n, _) in r.file_rejects.items()}
        t.commit_run(run, quote(plan), quote(parts), {r.position: p for r, p in zip(dedup.rewrites, rewritten)}, report,
                     quote(file_rejects))
        return report
    finally:
        runs.cleanup(run)
