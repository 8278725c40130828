"""The clean-corpus flow: wiring only. Every decision lives in ``tasks/``.

No ``from __future__ import annotations`` here: Prefect builds the parameter model from the
signature, and a deployment that loads the flow by entrypoint cannot resolve string annotations.
"""

from pathlib import Path

from prefect import flow, get_run_logger, unmapped
from prefect.utilities.annotations import quote
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

from corpusclean.flows import artifacts
from corpusclean.flows.lifecycle import worker_init
from corpusclean.flows.pool import EarlyProcessPoolTaskRunner
from corpusclean.tasks import prefect_tasks as t
from corpusclean.tasks.plumbing import progress
from corpusclean.tasks.plumbing.timeline import event
from corpusclean.tasks.corpus import runs
from corpusclean.tasks.config import Config, RunConfig, load_config
from corpusclean.tasks.corpus.shard import plan_shards


def make_task_runner(run: RunConfig, shards: int | None = None, config: Config | None = None) -> TaskRunner:
    """The configured runner. ``shards``: when known to be at most one, worker processes would only
    add their start-up (seconds of imports each) to a run they cannot make parallel: threads.
    Worker processes can be started before the flow (``start_workers``); given the run's
    ``config``, each sets up the cleaning stages as it starts."""
    if run.task_runner == "processes" and (shards is None or shards > 1):
        return EarlyProcessPoolTaskRunner(max_workers=run.workers, initializer=worker_init,
                                          initargs=(config,) if config is not None else ())
    if run.task_runner == "dask":
        from prefect_dask import DaskTaskRunner  # optional dependency: pip install 'corpusclean[dask]'

        if run.dask_address:
            return DaskTaskRunner(address=run.dask_address)
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            cluster_kwargs={"n_workers": run.workers, "threads_per_worker": 1, "dashboard_address": None},
        )
    return ThreadPoolTaskRunner(max_workers=run.workers)


def _as_is():
    """How to pass the mapped arguments of the running flow's task runner as they are: a function
    of a list giving the value to map over.

    Prefect walks every element of a task's arguments looking for futures (the decisions' cluster
    ids, the document ids: tens of thousands per shard), and copies them while resolving. A
    ``quote`` stops the walk, but the process runner resolves each call's arguments in the flow
    process before pickling them, which removes the quote: the worker's task engine then walked
    them twice more (collecting the task run's inputs, resolving its parameters), ~0.3 CPU s per
    write task. So on the process runner each element is quoted twice: the flow process takes
    off one quote, the worker's engine the other (``Quoted``: it crosses the pickle intact), and
    neither walks the value. The thread runner's engine takes off the only one; prefect-dask
    hands the annotation itself to the task, so there the arguments go unquoted (walked, as
    before)."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return as_is_for(getattr(ctx, "task_runner", None) if ctx is not None else None)


def as_is_for(runner: TaskRunner | None):
    """``_as_is`` for a given task runner."""
    if runner is not None and type(runner).__name__ == "DaskTaskRunner":
        return lambda values: values
    if isinstance(runner, ProcessPoolTaskRunner):
        return lambda values: quote([Quoted(v) for v in values])
    return quote


class Quoted(quote):
    """A ``quote`` that survives pickling (``quote``, a tuple, comes back wrapping a 1-tuple of its
    value): the one the process runner's worker takes off."""

    __slots__ = ()

    def __reduce__(self):
        return type(self), (self.unwrap(),)


# Scheduled and deployed runs load this function by name, so its default runner is the one they
# use: worker processes on both cores (the CLI picks the runner from the config instead). The
# result (the report's summary) is persisted as JSON so that the UI and API show it.
@flow(name="clean-corpus", log_prints=False, task_runner=ProcessPoolTaskRunner(max_workers=2, initializer=worker_init),
      persist_result=True, result_serializer="json")
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
    Returns the run report's summary (report.json without the config).
    """
    event("flow", "B")
    log = get_run_logger()
    config: Config = load_config(config_path, overrides)
    run = runs.start_run(raw_dir, out_dir, config, flow_run_id=flow_run.get_id())
    log.info("run %s: %s -> %s", run.run_id, run.raw_dir, run.out_dir)
    try:
        files = t.discover_inputs(run.raw_dir, config.read.follow_symlinks)
        plan = t.plan_inputs(quote(files), quote(run.manifest), runs.read_fingerprint(config), retry_rejects)
        shards = plan_shards(plan.process, config.run.shard_mb)
        total_bytes = sum(f.size for f in plan.process)
        log.info("%d input files: %d new, %d changed, %d unchanged (skipped); %.2f MB in %d shards",
                 len(files), len(plan.new), len(plan.changed), len(plan.unchanged), total_bytes / 1e6, len(shards))
        progress.report("reading", files_total=len(plan.process), bytes_total=total_bytes, shards_total=len(shards),
                        staging_dir=run.staging_dir)
        tracker = artifacts.ProgressArtifact(run.run_id)
        event("submit_shards", n=len(shards))
        # Biggest first: the workers take shards in this order, so the last ones to start are the
        # smallest and the workers finish closer together. Results are put back in index order.
        order = sorted(range(len(shards)), key=lambda i: (-sum(f.size for f in shards[i]), i))
        futures = t.clean_shard.map(order, [shards[i] for i in order], unmapped(config), unmapped(run.staging_dir))
        results = []
        done_bytes = done_docs = done_files = 0
        for done, future in enumerate(as_completed(futures), start=1):
            result = future.result()
            event("shard_result", index=result.index)
            results.append(result)
            done_bytes, done_docs, done_files = done_bytes + result.bytes_in, done_docs + result.n_docs, done_files + result.n_files
            progress.report("reading", shards_done=done, bytes_done=done_bytes, docs_done=done_docs, files_done=done_files)
            tracker.update(artifacts.READING_SHARE * done / max(1, len(shards)))
        results.sort(key=lambda r: r.index)
        runs.forget_unverified(plan, results)
        log.info("cleaned %d shards: %d documents, %d paragraphs", len(results),
                 sum(r.n_docs for r in results), sum(r.n_paragraphs for r in results))
        progress.report("duplicates")
        # quote(): large arguments are passed as they are; Prefect would otherwise walk every element.
        dedup = t.find_duplicates(
            quote(results), config.dedup, config.run.reference, run.out_dir, quote(run.manifest), quote(plan),
            run.staging_dir,
        )
        tracker.update(artifacts.DEDUP_SHARE)
        parts = runs.new_parts(run, results)
        progress.report("writing", write_total=len(results) + len(dedup.rewrites), write_done=0)
        summaries = []
        event("submit_finalize")
        # as_is(): each call gets its shard's result and decisions as they are. Otherwise Prefect walks
        # every element of them (the decisions' cluster ids, the document ids) to look for futures,
        # in the flow process when it submits and again in the worker: ~0.3 CPU s per task.
        as_is = _as_is()
        for done, future in enumerate(as_completed(t.finalize_shard.map(
                as_is(results), as_is(dedup.decisions), as_is(parts), unmapped(run.out_dir), unmapped(run.run_id),
                unmapped(run.pipeline_version))),
                start=1):
            summaries.append(future.result())
            event("finalize_result", index=summaries[-1].index)
            progress.report("writing", write_done=done)
        summaries.sort(key=lambda s: s.index)  # as_completed gives them in finishing order
        replaced = [run.manifest.parts[r.position] for r in dedup.rewrites]
        rewritten = t.rewrite_part.map(unmapped(run.out_dir), as_is(replaced), as_is(dedup.rewrites),
                                       unmapped(run.run_dir)).result()
        progress.report("writing", write_done=len(results) + len(dedup.rewrites))
        tracker.update(artifacts.WRITE_SHARE)
        report = t.write_report(run, quote(plan), quote(results), quote(dedup), quote(summaries))
        file_rejects = {rel: (d, n) for r in results for rel, (d, n, _) in r.file_rejects.items()}
        progress.report("committing")
        t.commit_run(run, quote(plan), quote(parts), {r.position: p for r, p in zip(dedup.rewrites, rewritten)}, report,
                     quote(file_rejects))
        tracker.update(100.0)
        c = report["counts"]
        log.info("committed run %s: %d documents, %d paragraphs (%d kept, %d boilerplate, %d duplicate), %d rejects; "
                 "report: %s", run.run_id, c["documents"], c["paragraphs"], c["kept"], c["boilerplate"], c["duplicate"],
                 c["rejects"], run.out_dir / "report.html")
        artifacts.publish_report(report, run.out_dir)
        progress.report("done")
        event("flow", "E")
        return {k: v for k, v in report.items() if k != "config"}
    finally:
        runs.cleanup(run)
