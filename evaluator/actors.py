"""Dramatiq actors of the evaluator. Messages are nudges; the database decides what runs (see services)."""

from __future__ import annotations

import dramatiq

from evaluator.execution import execute_attempt, worker_identity
from evaluator.models import EvaluationAttempt
from evaluator.services import attempt_claim_next, attempts_reap, nudge_workers


@dramatiq.actor(queue_name="evaluations", max_retries=0, time_limit=30 * 60 * 1000)
def evaluate_next() -> None:
    """Claim the fairest pending attempt and evaluate it; then nudge again if more work waits."""
    claim = attempt_claim_next(worker_identity())
    if claim is None:
        return
    try:
        execute_attempt(claim)
    finally:
        if EvaluationAttempt.objects.filter(status=EvaluationAttempt.Status.PENDING).exists():
            nudge_workers()


@dramatiq.actor(queue_name="evaluations", max_retries=0)
def reap_attempts() -> None:
    attempts_reap()
