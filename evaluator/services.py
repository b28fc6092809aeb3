"""Evaluation attempts: fair claim, lease and heartbeat, finish exactly once, reap lost workers.

The engine (``evaluator.engine``) opens attempts for registered targets and computes the fair order; this module
runs their life: a worker claims the fairest pending attempt (row lock, ``skip_locked``, a fresh lease token), its
heartbeats extend the lease, and its result or failure is recorded exactly once, through the target's callbacks,
only while it still owns the lease. Failures are retried a bounded number of times.

The database is the source of truth and the queue is only a nudge: each Dramatiq message says "there may
be work"; the worker that receives it claims the fairest pending attempt (the owner served least recently,
among owners under their concurrency cap). A lost message therefore costs nothing, and the reaper
re-nudges pending work that waited too long and re-opens attempts whose worker vanished.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from evaluator.config import evaluator_settings
from evaluator.contract import MatchResult, RaceResult
from evaluator.engine import (
    DEFAULT_QUEUE,
    QueuePlace,
    TrainingFinished,
    attempt_open,
    attempts_of,
    kinds_in_queue,
    nudge_workers,
    pending_in_fair_order,
    queue_of,
    supersede_closed_targets,
    target_for,
)
from evaluator.models import EvaluationAttempt

log = logging.getLogger(__name__)
AttemptStatus = EvaluationAttempt.Status
# Attempts enqueued before this process started may have been nudged into a queue that no longer exists
# (the embedded in-memory broker of a previous run, a set-up command): the first reap re-nudges them.
PROCESS_STARTED = timezone.now()
RENUDGES_PER_REAP = 8


@dataclass(frozen=True)
class Claim:
    """A worker's hold on one attempt: valid while ``token`` is the attempt's lease token."""

    attempt_id: int
    target_kind: str
    target_id: int
    number: int
    token: uuid.UUID


def attempt_claim_next(worker_id: str, queue: str = DEFAULT_QUEUE) -> Claim | None:
    """Claim the fairest pending attempt of ``queue``'s kinds that no other worker holds; None when there is
    nothing to do (or everything waiting is held back by an owner's cap or its kind's capacity)."""
    default_cap = evaluator_settings().max_concurrent_per_racer
    queue_kinds = kinds_in_queue(queue)
    supersede_closed_targets()
    for candidate in pending_in_fair_order(queue=queue):
        with transaction.atomic():
            attempt = (
                EvaluationAttempt.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(pk=candidate.pk, status=AttemptStatus.PENDING)
                .first()
            )
            if attempt is None:
                continue
            target = target_for(attempt.target_kind)
            closed = target.closed([attempt.target_id])
            if closed:  # e.g. a submission disqualified while it waited
                _close(attempt, AttemptStatus.SUPERSEDED, closed[attempt.target_id])
                continue
            capacity = getattr(target, "capacity", lambda: None)()
            if capacity is not None:
                # Serialise claims of the kind (PostgreSQL: a transaction lock; SQLite writes one at a time anyway),
                # so two workers cannot both see it under its capacity.
                kind = attempt.target_kind
                if connection.vendor == "postgresql":
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"evaluator:{kind}"])
                if EvaluationAttempt.objects.filter(status=AttemptStatus.RUNNING, target_kind=kind).count() >= capacity:
                    continue
            if attempt.owner_id is not None:
                # Serialise claims per owner (the row lock waits for a concurrent claim of the same owner to
                # commit), so two workers cannot both see the owner under the cap.
                get_user_model().objects.select_for_update().filter(pk=attempt.owner_id).first()
                cap = getattr(target, "owner_cap", lambda: default_cap)()
                busy = EvaluationAttempt.objects.filter(status=AttemptStatus.RUNNING, owner_id=attempt.owner_id,
                                                        target_kind__in=queue_kinds).count()
                if busy >= cap:
                    continue
            _start(attempt, worker_id)
            target.on_running(attempt.target_id, attempt)
            return Claim(attempt.pk, attempt.target_kind, attempt.target_id, attempt.number, attempt.lease_token)
    return None


def _start(attempt: EvaluationAttempt, worker_id: str) -> None:
    now = timezone.now()
    attempt.status = AttemptStatus.RUNNING
    attempt.lease_token = EvaluationAttempt.new_token()
    attempt.lease_expires_at = now + timedelta(seconds=evaluator_settings().lease_s)
    attempt.heartbeat_at = now
    attempt.started_at = now
    attempt.worker_id = worker_id[:128]
    attempt.save()


def attempt_heartbeat(claim: Claim) -> bool:
    """Extend the lease; False means the attempt is no longer ours (the reaper expired it)."""
    now = timezone.now()
    owned = EvaluationAttempt.objects.filter(pk=claim.attempt_id, status=AttemptStatus.RUNNING, lease_token=claim.token)
    updated = owned.update(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=evaluator_settings().lease_s))
    return updated == 1


def attempt_succeed(claim: Claim, result: RaceResult | MatchResult | TrainingFinished, sandbox_mode: str = "",
                    sandbox_seconds: float | None = None) -> bool:
    """Record the result if this claim still owns the attempt; a superseded attempt's late result is refused."""
    with transaction.atomic():
        attempt = _owned(claim)
        if attempt is None:
            log.warning("Rejected a late result of attempt %s (lease lost)", claim.attempt_id)
            return False
        target_for(attempt.target_kind).on_result(attempt.target_id, attempt, result)
        attempt.timings = {**result.timings, "sandbox_s": sandbox_seconds}
        attempt.sandbox_mode = sandbox_mode
        _close(attempt, AttemptStatus.SUCCEEDED)
    return True


def attempt_fail(claim: Claim, error: str, retryable: bool, crash_signature: str = "", car: int | None = None) -> bool:
    """A failed attempt: a model error fails the target at once; a crash retries, but not forever.

    In a two-model job (a match), ``car`` (0 or 1) names the model at fault (the target decides what it means)."""
    with transaction.atomic():
        attempt = _owned(claim)
        if attempt is None:
            log.warning("Ignored a late failure of attempt %s (lease lost): %s", claim.attempt_id, error)
            return False
        attempt.crash_signature = crash_signature[:200]
        _close(attempt, AttemptStatus.FAILED, error)
        if retryable:
            _retry_or_give_up(attempt, error)
        else:
            _give_up(attempt, error, car)
    return True


def attempts_reap(now=None) -> dict[str, int]:
    """Expire attempts whose worker stopped heartbeating, and re-nudge pending attempts nobody took."""
    now = now or timezone.now()
    expired = 0
    for attempt_id in list(
        EvaluationAttempt.objects.filter(status=AttemptStatus.RUNNING, lease_expires_at__lt=now)
        .values_list("pk", flat=True)
    ):
        with transaction.atomic():
            attempt = (
                EvaluationAttempt.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(pk=attempt_id, status=AttemptStatus.RUNNING, lease_expires_at__lt=now)
                .first()
            )
            if attempt is None:
                continue
            error = f"the worker {attempt.worker_id or '?'} stopped responding (lease expired)"
            _close(attempt, AttemptStatus.EXPIRED, error)
            _retry_or_give_up(attempt, error)
            expired += 1
    supersede_closed_targets()
    stale_attempts = EvaluationAttempt.objects.filter(
        Q(enqueued_at__lt=now - timedelta(seconds=evaluator_settings().stale_pending_s))
        | Q(enqueued_at__lt=PROCESS_STARTED),
        status=AttemptStatus.PENDING,
    )
    stale_by_queue: dict[str, int] = {}
    for kind in stale_attempts.values_list("target_kind", flat=True):
        stale_by_queue[queue_of(kind)] = stale_by_queue.get(queue_of(kind), 0) + 1
    stale = stale_attempts.update(enqueued_at=now)
    # Each finished evaluation nudges again while work waits, so a few nudges restore lost parallelism; one per
    # stale attempt would flood the queue whenever a long (healthy) queue makes every attempt "stale".
    for queue, count in sorted(stale_by_queue.items()):
        for _ in range(min(count, RENUDGES_PER_REAP)):
            if not nudge_workers(queue):
                break  # broker down: these attempts become stale again and are re-nudged by a later reap
    return {"expired": expired, "renudged": stale}


def _owned(claim: Claim) -> EvaluationAttempt | None:
    return (
        EvaluationAttempt.objects.select_for_update(of=("self",))
        .filter(pk=claim.attempt_id, status=AttemptStatus.RUNNING, lease_token=claim.token)
        .first()
    )


def _close(attempt: EvaluationAttempt, status: str, error: str = "") -> None:
    attempt.status = status
    attempt.error = error
    attempt.finished_at = timezone.now()
    attempt.lease_token = None
    attempt.save()


def _retry_or_give_up(attempt: EvaluationAttempt, error: str) -> None:
    previous = (
        attempts_of(attempt.target_kind, attempt.target_id).filter(number__lt=attempt.number)
        .order_by("-number")
        .first()
    )
    same_crash = bool(attempt.crash_signature) and previous is not None and (
        previous.crash_signature == attempt.crash_signature
    )
    if same_crash:
        _give_up(attempt, f"The model crashed the evaluator twice the same way: {error}")
    elif attempt.number >= evaluator_settings().max_attempts:
        _give_up(attempt, f"Evaluation failed {attempt.number} times: {error}")
    else:
        target_for(attempt.target_kind).on_requeue(attempt.target_id,
                                                   f"Attempt {attempt.number} failed ({error}); trying again")
        attempt_open(attempt.target_kind, attempt.target_id, QueuePlace(attempt.owner_id, attempt.priority))


def _give_up(attempt: EvaluationAttempt, reason: str, car: int | None = None) -> None:
    target_for(attempt.target_kind).on_failure(attempt.target_id, reason, attempt, car=car)
