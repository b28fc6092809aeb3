"""Dramatiq actors of the evaluator. Messages are nudges; the database decides what runs (see services)."""

from __future__ import annotations

import logging

import dramatiq

from evaluator import sandbox
from evaluator.config import evaluator_settings
from evaluator.dbretry import with_database_retry
from evaluator.engine import nudge_workers
from evaluator.execution import execute_attempt, worker_identity
from evaluator.models import EvaluationAttempt
from evaluator.services import attempt_claim_next, attempts_reap

log = logging.getLogger(__name__)


@dramatiq.actor(queue_name="evaluations", max_retries=0, time_limit=30 * 60 * 1000)
def evaluate_next() -> None:
    """Claim the fairest pending attempt and evaluate it; then nudge again if more work waits."""
    try:
        sandbox.sandbox_mode(evaluator_settings().sandbox_allow_fallback)
    except sandbox.SandboxUnavailable as error:
        # A host problem, not the racer's: claim nothing, so the attempts wait (the admin shows why).
        log.error("Evaluation refused on this worker: %s", error)
        return
    claim = with_database_retry(attempt_claim_next, worker_identity())
    if claim is None:
        return
    try:
        execute_attempt(claim)
    finally:
        if with_database_retry(EvaluationAttempt.objects.filter(status=EvaluationAttempt.Status.PENDING).exists):
            nudge_workers()


@dramatiq.actor(queue_name="evaluations", max_retries=0)
def reap_attempts() -> None:
    with_database_retry(attempts_reap)
