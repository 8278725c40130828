"""The write tasks' large arguments reach the task as they are, without Prefect walking them.

Prefect's engine walks a task's arguments (looking for futures) with ``visit_collection``: once in
the flow process when the process runner resolves a call before pickling it, and twice in the
worker (collecting the task run's inputs, resolving its parameters). On a shard's decisions
(tens of thousands of cluster ids) each walk cost ~0.1 CPU s. These tests replay what each runner
does to a mapped argument with Prefect's own functions, no API needed, and count the visits.
"""

from __future__ import annotations

import cloudpickle
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import quote
from prefect.utilities.collections import visit_collection
from prefect.utilities.engine import collect_task_run_inputs_sync, resolve_inputs_sync, resolve_to_final_result

from corpusclean.flows.clean_corpus import as_is_for
from corpusclean.flows.pool import EarlyProcessPoolTaskRunner


def _values():
    return [{"cluster": [f"p{i}" for i in range(5_000)], "index": k} for k in range(3)]


def _mapped_calls(mapped):
    """What ``TaskRunner.map`` hands each call: the annotation taken off the list, then put back on
    each element."""
    if isinstance(mapped, quote):
        return [mapped.rewrap(v) for v in mapped.unwrap()]
    return list(mapped)


def _engine_resolve(value) -> tuple[object, int]:
    """The task engine's ``_resolve_parameters`` for one argument, with its visits counted."""
    visits = 0

    def counting(expr, context):
        nonlocal visits
        visits += 1
        return resolve_to_final_result(expr, context)

    resolved = visit_collection(value, visit_fn=counting, return_data=True, max_depth=-1, remove_annotations=True,
                                context={"parameter_name": "decisions"})
    return resolved, visits


def test_process_runner_arguments_reach_the_worker_quoted_and_are_never_walked() -> None:
    for runner in (ProcessPoolTaskRunner(max_workers=2), EarlyProcessPoolTaskRunner(max_workers=2)):
        values = _values()
        for call, original in zip(_mapped_calls(as_is_for(runner)(values)), values):
            # the flow process: ProcessPoolTaskRunner._resolve_futures_and_submit, then the pickle to the worker
            sent = resolve_inputs_sync({"decisions": call}, return_data=True, max_depth=-1)["decisions"]
            received = cloudpickle.loads(cloudpickle.dumps(sent))
            assert isinstance(received, quote)  # one quote left for the worker's engine
            # the worker: the task run's inputs are not walked, the parameter is unquoted without a walk
            assert collect_task_run_inputs_sync(received) == set()
            resolved, visits = _engine_resolve(received)
            assert resolved == original and not isinstance(resolved, quote)
            assert visits <= 2  # the quote and its value, not the 5,000 cluster ids


def test_a_single_quote_is_walked_in_the_worker() -> None:
    """Why two quotes: with one, the flow process's resolution takes it off and the worker walks
    every element."""
    original = _values()[0]
    sent = resolve_inputs_sync({"decisions": quote(original)}, return_data=True, max_depth=-1)["decisions"]
    assert not isinstance(sent, quote)
    _, visits = _engine_resolve(sent)
    assert visits > 5_000


def test_thread_runner_arguments_reach_the_task_as_they_are() -> None:
    values = _values()
    for call, original in zip(_mapped_calls(as_is_for(ThreadPoolTaskRunner(max_workers=2))(values)), values):
        resolved, visits = _engine_resolve(call)  # the thread runner's engine resolves the call as mapped
        assert resolved == original and not isinstance(resolved, quote)
        assert visits <= 2


def test_no_runner_and_dask_pass_values_through() -> None:
    class DaskTaskRunner:  # matched by name, as the optional prefect-dask runner is
        pass

    values = _values()
    assert as_is_for(DaskTaskRunner())(values) is values
    assert isinstance(as_is_for(None)(values), quote)


def test_quoted_survives_pickling() -> None:
    from corpusclean.flows.clean_corpus import Quoted

    value = {"cluster": ["p1", None]}
    back = cloudpickle.loads(cloudpickle.dumps(Quoted(value)))
    assert isinstance(back, Quoted) and isinstance(back, quote) and back.unwrap() == value

