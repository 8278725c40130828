"""A process-pool task runner whose workers start before the flow does.

Prefect's ``ProcessPoolTaskRunner`` spawns its workers when the flow submits the first task:
each then imports Prefect and the stages and builds the stages' tables (rule matchers,
language profiles) before its first shard, seconds of CPU after the flow has started. The
command has to wait for Prefect's temporary API server anyway (the longest step of its
start-up), so ``start_workers`` spawns them during that wait, and their initializer warms the
stages (``tasks.warmup``): the flow's first shards start on ready workers.

The flow engine enters a *duplicate* of the flow's task runner; duplicates share the workers
started early, and the first one entered adopts them (a later flow run with the same runner,
as ``serve`` makes, gets a pool of its own, as with Prefect's runner).
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, _initialize_process_pool_worker


def _ready() -> None:
    """The job each early worker is started with (the pool spawns a worker per pending job)."""


class _Started:
    """Workers started early, waiting for the flow's runner to adopt them."""

    def __init__(self, max_workers: int, initializer, initargs: tuple) -> None:
        context = multiprocessing.get_context("spawn")
        # As ProcessPoolTaskRunner.__enter__ does: the queue over which workers send their events
        # and logs, and a thread forwarding them to the API (they come only once tasks run). The
        # forwarding loop is Prefect's, run by a runner of its own that is never pickled (the
        # flow's runner is, with the flow, into every task's context).
        self.forwarder = ProcessPoolTaskRunner(max_workers=max_workers)
        self.forwarder._subprocess_message_queue = context.Queue()
        self.forwarder._message_forwarding_thread = threading.Thread(
            target=self.forwarder._forward_subprocess_messages, name="ProcessPoolTaskRunnerMessageForwarder",
            daemon=True,
        )
        self.forwarder._message_forwarding_thread.start()
        self.executor = ProcessPoolExecutor(
            max_workers=max_workers,
            mp_context=context,
            initializer=_initialize_process_pool_worker,
            initargs=(self.forwarder._subprocess_message_queue, initializer, initargs),
        )
        for _ in range(max_workers):  # one pending job per worker: spawns them all now
            self.executor.submit(_ready)
        self.adopted = False

    def discard(self) -> None:
        """End the workers of a run that never reached its flow."""
        if not self.adopted:
            self.adopted = True
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.forwarder._stop_message_forwarding()


class EarlyProcessPoolTaskRunner(ProcessPoolTaskRunner):
    def __init__(self, max_workers: int | None = None, initializer=None, initargs: tuple = (), **kwargs: Any) -> None:
        super().__init__(max_workers=max_workers, initializer=initializer, initargs=initargs, **kwargs)
        self._early: _Started | None = None

    def start_workers(self) -> None:
        """Spawn the workers now (idempotent); the flow's runner adopts them when it starts."""
        if self._early is None:
            self._early = _Started(self._max_workers, self._initializer, self._initargs)

    def discard_workers(self) -> None:
        """End early workers that no flow adopted (a run that failed or stopped before its flow)."""
        if self._early is not None:
            self._early.discard()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_early"] = None  # processes and queues do not travel
        return state

    def duplicate(self) -> "EarlyProcessPoolTaskRunner":
        runner = super().duplicate()
        runner._early = self._early
        return runner

    def __enter__(self) -> "EarlyProcessPoolTaskRunner":
        early = self._early
        if early is None or early.adopted:
            return super().__enter__()
        early.adopted = True
        TaskRunner.__enter__(self)  # marks it started; the pool is the one started early
        self._subprocess_message_queue = early.forwarder._subprocess_message_queue
        self._message_forwarding_thread = early.forwarder._message_forwarding_thread
        self._executor = early.executor
        self._resolver_executor = ThreadPoolExecutor(max_workers=self._max_workers)
        return self
