"""Dramatiq actors of the evaluator. Messages are nudges; the database decides what runs (see services).

One "evaluate next" actor per queue: ``evaluate_next`` on the default queue (submissions, matches), and one for
each other queue a target kind registered (``evaluator.engine.register_target(..., queue=...)``), e.g. the
training jobs' own queue. An operator runs workers per queue (``rundramatiq --queues training``), so long jobs
never take the evaluation workers. The actors of every registered queue exist once the apps are ready (this module
is imported after ``django.setup()``); a queue registered later gets its actor on its first nudge.

Each worker thread that serves the evaluation queue keeps one sandbox started ahead (``execution.WarmSandbox``):
started when the thread boots and after each evaluation, discarded when the thread stops (``WarmSandboxMiddleware``,
added to the broker here, with ``PromptPollingMiddleware``: an idle worker polls the broker every 100 ms at most).
"""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.middleware import Middleware

from evaluator import sandbox
from evaluator.config import evaluator_settings
from evaluator.dbretry import with_database_retry
from evaluator.engine import DEFAULT_QUEUE, kinds_in_queue, nudge_workers, registered_queues
from evaluator.execution import (
    execute_attempt,
    remove_orphaned_scratch_once,
    warm_sandbox_of_this_thread,
    warm_up_race_plans_once,
    worker_identity,
)
from evaluator.models import EvaluationAttempt
from evaluator.services import attempt_claim_next, attempts_reap

log = logging.getLogger(__name__)
# Long jobs (a training runs for hours) must not be cut by Dramatiq's time limit: the sandbox's wall clock and the
# lease end them. Evaluations keep the half hour they always had.
LONG_JOB_TIME_LIMIT_MS = 7 * 24 * 3600 * 1000
# An idle Redis consumer polls with a backoff growing to the worker's timeout (Dramatiq's default: 1 s), which made
# the wait from "queued" to "claimed" ~0.5 s on average. 100 ms costs Redis ~10 cheap polls a second per queue.
IDLE_POLL_MS = 100


def _evaluate_next(queue: str) -> None:
    """Claim the fairest pending attempt of the queue and run it; then nudge again if more work waits there."""
    try:
        sandbox.sandbox_mode(evaluator_settings().sandbox_allow_fallback)
    except sandbox.SandboxUnavailable as error:
        # A host problem, not the racer's: claim nothing, so the attempts wait (the admin shows why).
        log.error("Evaluation refused on this worker: %s", error)
        return
    claim = with_database_retry(attempt_claim_next, worker_identity(), queue)
    if claim is None:
        return
    # Evaluations only: a training job needs other limits and runs for hours (a sandbox waiting meanwhile is waste).
    warm = warm_sandbox_of_this_thread() if queue == DEFAULT_QUEUE else None
    try:
        execute_attempt(claim, warm)
    finally:
        if warm is not None:  # started already unless the job ended early (e.g. its archive was refused)
            warm.start_ahead()
        waiting = EvaluationAttempt.objects.filter(status=EvaluationAttempt.Status.PENDING,
                                                   target_kind__in=kinds_in_queue(queue))
        if with_database_retry(waiting.exists):
            nudge_workers(queue)


@dramatiq.actor(queue_name=DEFAULT_QUEUE, max_retries=0, time_limit=30 * 60 * 1000)
def evaluate_next() -> None:
    """Claim the fairest pending attempt and evaluate it; then nudge again if more work waits."""
    _evaluate_next(DEFAULT_QUEUE)


_actors: dict[str, dramatiq.Actor] = {DEFAULT_QUEUE: evaluate_next}


def actor_for(queue: str) -> dramatiq.Actor:
    """The "evaluate next" actor of ``queue`` (declared on the current broker the first time)."""
    if queue not in _actors:
        def run() -> None:
            _evaluate_next(queue)

        run.__name__ = run.__qualname__ = f"evaluate_next_{queue}"
        _actors[queue] = dramatiq.actor(run, queue_name=queue, max_retries=0, time_limit=LONG_JOB_TIME_LIMIT_MS)
    return _actors[queue]


for _queue in registered_queues():
    actor_for(_queue)


@dramatiq.actor(queue_name=DEFAULT_QUEUE, max_retries=0)
def reap_attempts() -> None:
    with_database_retry(attempts_reap)


class PromptPollingMiddleware(Middleware):
    """Idle workers look for new messages every ``IDLE_POLL_MS`` at most (set before the consumers start)."""

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        worker.worker_timeout = min(worker.worker_timeout, IDLE_POLL_MS)


class WarmSandboxMiddleware(Middleware):
    """A worker thread serving the evaluation queue starts its sandbox ahead as it boots, so even the first
    evaluation finds one, and discards it as it stops (SIGTERM to the worker), so none outlives the worker. The
    first thread to boot also removes the folders of worker processes that were killed (``kill -9`` cleans nothing),
    and the first evaluation thread builds a throwaway race plan so the first evaluation finds onnx imported."""

    def after_worker_thread_boot(self, broker: dramatiq.Broker, thread: dramatiq.WorkerThread) -> None:
        remove_orphaned_scratch_once()
        if DEFAULT_QUEUE not in getattr(thread, "consumers", {}):
            return  # e.g. ``rundramatiq --queues training``
        try:
            sandbox.sandbox_mode(evaluator_settings().sandbox_allow_fallback)
        except sandbox.SandboxUnavailable:
            return  # reported when a message comes (nothing is claimed on such a worker)
        warm_sandbox_of_this_thread().start_ahead()
        warm_up_race_plans_once()  # while the sandbox imports its runtime

    def before_worker_thread_shutdown(self, broker: dramatiq.Broker, thread: dramatiq.WorkerThread) -> None:
        warm_sandbox_of_this_thread().discard()


dramatiq.get_broker().add_middleware(PromptPollingMiddleware())
dramatiq.get_broker().add_middleware(WarmSandboxMiddleware())
