"""Evaluation attempts: request, fair claim, lease and heartbeat, finish exactly once, reap lost workers.

An attempt evaluates a submission or races a head-to-head bracket match (``attempt.match``); both go through
the same claim, lease, heartbeat, retry and reaper. Matches are few and hold up a bracket: they go first.

The database is the source of truth and the queue is only a nudge: each Dramatiq message says "there may
be work"; the worker that receives it claims the fairest pending attempt (the racer served least recently,
among racers under their concurrency cap). A lost message therefore costs nothing, and the reaper
re-nudges pending work that waited too long and re-opens attempts whose worker vanished.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from evaluator.models import EvaluationAttempt
from races.models import BracketMatch, Submission
from races.services import submission_fail, submission_mark_running, submission_record_result, submission_requeue
from races.services.brackets import (
    bracket_match_fail,
    bracket_match_mark_running,
    bracket_match_requeue,
    bracket_record_result,
)

log = logging.getLogger(__name__)
A = EvaluationAttempt.Status
FINAL_SUBMISSION = (Submission.Status.SCORED, Submission.Status.FAILED, Submission.Status.DISQUALIFIED)
FINAL_MATCH = (BracketMatch.Status.DECIDED, BracketMatch.Status.BYE, BracketMatch.Status.FAILED)
# Attempts enqueued before this process started may have been nudged into a queue that no longer exists
# (the embedded in-memory broker of a previous run, a set-up command): the first reap re-nudges them.
PROCESS_STARTED = timezone.now()
RENUDGES_PER_REAP = 8


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def lease_seconds() -> float:
    return _setting("PITLANE_EVAL_LEASE_S", 60)


def max_attempts() -> int:
    return int(_setting("PITLANE_EVAL_MAX_ATTEMPTS", 3))


def max_concurrent_per_racer() -> int:
    return int(_setting("PITLANE_EVAL_MAX_CONCURRENT_PER_RACER", 1))


def stale_pending_seconds() -> float:
    return _setting("PITLANE_EVAL_STALE_PENDING_S", 120)


@dataclass(frozen=True)
class Claim:
    attempt_id: int
    submission_id: int | None
    number: int
    token: uuid.UUID
    match_id: int | None = None  # set instead of submission_id for a bracket match


def evaluation_request(submission: Submission) -> EvaluationAttempt:
    """Open the next attempt for ``submission`` in the caller's transaction; nudge a worker after commit."""
    return _request(submission=submission)


def evaluation_request_match(match: BracketMatch) -> EvaluationAttempt:
    """Open the next attempt to race bracket ``match`` in the caller's transaction; nudge a worker after commit."""
    return _request(match=match)


def _request(**target: Submission | BracketMatch) -> EvaluationAttempt:
    last = EvaluationAttempt.objects.filter(**target).aggregate(n=Max("number"))["n"] or 0
    attempt = EvaluationAttempt.objects.create(number=last + 1, **target)
    # robust: a broker outage must not turn a committed submission into an error page; the reaper re-nudges.
    transaction.on_commit(nudge_workers, robust=True)
    return attempt


def nudge_workers() -> bool:
    """Tell some worker there may be work; False (logged) when the broker is unreachable."""
    from evaluator.actors import evaluate_next  # actors import services, never the reverse at import time

    try:
        evaluate_next.send()
    except Exception as error:  # Redis/RabbitMQ down: the attempt is safe in the database, the reaper retries
        log.warning("Could not nudge an evaluation worker (%s); the reaper will retry", error)
        return False
    return True


def pending_in_fair_order(limit: int | None = None) -> list[EvaluationAttempt]:
    """Pending attempts in the order workers will take them: round robin by racer.

    Every claim moves its racer to the back of the line, so the projection is: each racer's first waiting
    attempt (round 1), then each racer's second (round 2), and so on; within a round, the racer served
    longest ago goes first (never served = first; a racer with a running evaluation counts as served now,
    since the per-racer cap holds them back). Within one racer, submission order is kept. Bracket matches
    come before all of them, oldest first.
    """
    waiting = EvaluationAttempt.objects.filter(status=A.PENDING).order_by("created_at", "pk")
    matches = list(waiting.filter(match__isnull=False).exclude(match__status__in=FINAL_MATCH).select_related("match"))
    pending = list(waiting.filter(submission__isnull=False).exclude(submission__status__in=FINAL_SUBMISSION)
                   .select_related("submission"))
    if not pending:
        return matches if limit is None else matches[:limit]
    users = {a.submission.user_id for a in pending}
    last_served = dict(
        EvaluationAttempt.objects.filter(submission__user_id__in=users, started_at__isnull=False)
        .values("submission__user_id")
        .annotate(last=Max("started_at"))
        .values_list("submission__user_id", "last")
    )
    now = timezone.now()
    for user_id in EvaluationAttempt.objects.filter(status=A.RUNNING, submission__user_id__in=users).values_list(
        "submission__user_id", flat=True
    ):
        last_served[user_id] = now
    never = now - timedelta(days=36500)
    rounds: dict[int, int] = {}
    keyed = []
    for attempt in pending:  # already in submission order
        user_id = attempt.submission.user_id
        rounds[user_id] = rounds.get(user_id, -1) + 1
        keyed.append(((rounds[user_id], last_served.get(user_id) or never, attempt.created_at, attempt.pk), attempt))
    keyed.sort(key=lambda pair: pair[0])
    ordered = matches + [attempt for _, attempt in keyed]
    return ordered if limit is None else ordered[:limit]


def queue_positions() -> dict[int, int]:
    """``{submission_id: position}`` of every waiting submission (1 = next); one pass over the queue."""
    return {attempt.submission_id: i for i, attempt in enumerate(pending_in_fair_order(), start=1)
            if attempt.submission_id is not None}


def queue_position(submission: Submission) -> int | None:
    """1 = next to be evaluated; None when the submission is not waiting."""
    return queue_positions().get(submission.pk)


def attempt_claim_next(worker_id: str) -> Claim | None:
    """Claim the fairest pending attempt that no other worker holds; None when there is nothing to do."""
    cap = max_concurrent_per_racer()
    _supersede_waiting_for_final_submissions()
    for candidate in pending_in_fair_order():
        with transaction.atomic():
            attempt = (
                EvaluationAttempt.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(pk=candidate.pk, status=A.PENDING)
                .select_related("submission", "match")
                .first()
            )
            if attempt is None:
                continue
            if attempt.match_id is not None:
                if attempt.match.status in FINAL_MATCH:
                    _close(attempt, A.SUPERSEDED, f"not raced: the match is {attempt.match.status}")
                    continue
                _start(attempt, worker_id)
                bracket_match_mark_running(attempt.match, attempt)
                return Claim(attempt.pk, None, attempt.number, attempt.lease_token, match_id=attempt.match_id)
            if attempt.submission.status in FINAL_SUBMISSION:  # e.g. disqualified while it waited
                _close(attempt, A.SUPERSEDED, f"not evaluated: the submission is {attempt.submission.status}")
                continue
            # Serialise claims per racer (the row lock waits for a concurrent claim of the same racer to
            # commit), so two workers cannot both see the racer under the cap.
            get_user_model().objects.select_for_update().filter(pk=attempt.submission.user_id).first()
            busy = EvaluationAttempt.objects.filter(
                status=A.RUNNING, submission__user_id=attempt.submission.user_id
            ).count()
            if busy >= cap:
                continue
            _start(attempt, worker_id)
            submission_mark_running(attempt.submission, attempt)
            return Claim(attempt.pk, attempt.submission_id, attempt.number, attempt.lease_token)
    return None


def _start(attempt: EvaluationAttempt, worker_id: str) -> None:
    now = timezone.now()
    attempt.status = A.RUNNING
    attempt.lease_token = EvaluationAttempt.new_token()
    attempt.lease_expires_at = now + timedelta(seconds=lease_seconds())
    attempt.heartbeat_at = now
    attempt.started_at = now
    attempt.worker_id = worker_id[:128]
    attempt.save()


def attempt_heartbeat(claim: Claim) -> bool:
    """Extend the lease; False means the attempt is no longer ours (the reaper expired it)."""
    now = timezone.now()
    updated = EvaluationAttempt.objects.filter(pk=claim.attempt_id, status=A.RUNNING, lease_token=claim.token).update(
        heartbeat_at=now, lease_expires_at=now + timedelta(seconds=lease_seconds())
    )
    return updated == 1


def attempt_succeed(claim: Claim, result: dict[str, Any]) -> bool:
    """Record the result if this claim still owns the attempt; a superseded attempt's late result is refused."""
    with transaction.atomic():
        attempt = _owned(claim)
        if attempt is None:
            log.warning("Rejected a late result of attempt %s (lease lost)", claim.attempt_id)
            return False
        if attempt.match_id is not None:
            bracket_record_result(attempt.match, attempt, result)
        else:
            submission_record_result(attempt.submission, attempt, result)
        sandbox = result.get("sandbox", {})
        attempt.timings = {**result.get("timings", {}), "sandbox_s": sandbox.get("wall_seconds")}
        attempt.sandbox_mode = sandbox.get("mode", "")
        _close(attempt, A.SUCCEEDED)
    return True


def attempt_fail(claim: Claim, error: str, retryable: bool, crash_signature: str = "", car: int | None = None) -> bool:
    """A failed attempt: a model error fails the submission at once; a crash retries, but not forever.

    For a match, ``car`` (0 or 1) names the car whose model failed: the other car wins by forfeit."""
    with transaction.atomic():
        attempt = _owned(claim)
        if attempt is None:
            log.warning("Ignored a late failure of attempt %s (lease lost): %s", claim.attempt_id, error)
            return False
        attempt.crash_signature = crash_signature[:200]
        _close(attempt, A.FAILED, error)
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
        EvaluationAttempt.objects.filter(status=A.RUNNING, lease_expires_at__lt=now).values_list("pk", flat=True)
    ):
        with transaction.atomic():
            attempt = (
                EvaluationAttempt.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(pk=attempt_id, status=A.RUNNING, lease_expires_at__lt=now)
                .select_related("submission", "match")
                .first()
            )
            if attempt is None:
                continue
            error = f"the worker {attempt.worker_id or '?'} stopped responding (lease expired)"
            _close(attempt, A.EXPIRED, error)
            _retry_or_give_up(attempt, error)
            expired += 1
    _supersede_waiting_for_final_submissions()
    stale = EvaluationAttempt.objects.filter(
        Q(enqueued_at__lt=now - timedelta(seconds=stale_pending_seconds())) | Q(enqueued_at__lt=PROCESS_STARTED),
        status=A.PENDING,
    ).update(enqueued_at=now)
    # Each finished evaluation nudges again while work waits, so a few nudges restore lost parallelism; one per
    # stale attempt would flood the queue whenever a long (healthy) queue makes every attempt "stale".
    for _ in range(min(stale, RENUDGES_PER_REAP)):
        if not nudge_workers():
            break  # broker down: these attempts become stale again and are re-nudged by a later reap
    return {"expired": expired, "renudged": stale}


def _supersede_waiting_for_final_submissions() -> int:
    """Pending attempts of submissions (or matches) that became final meanwhile are not evaluated."""
    waiting = EvaluationAttempt.objects.filter(status=A.PENDING)
    return waiting.filter(Q(submission__status__in=FINAL_SUBMISSION) | Q(match__status__in=FINAL_MATCH)).update(
        status=A.SUPERSEDED, error="not evaluated: it was already final", finished_at=timezone.now()
    )


def _owned(claim: Claim) -> EvaluationAttempt | None:
    return (
        EvaluationAttempt.objects.select_for_update(of=("self",))
        .filter(pk=claim.attempt_id, status=A.RUNNING, lease_token=claim.token)
        .select_related("submission", "match")
        .first()
    )


def _close(attempt: EvaluationAttempt, status: str, error: str = "") -> None:
    attempt.status = status
    attempt.error = error
    attempt.finished_at = timezone.now()
    attempt.lease_token = None
    attempt.save()


def _retry_or_give_up(attempt: EvaluationAttempt, error: str) -> None:
    target = {"match": attempt.match} if attempt.match_id is not None else {"submission": attempt.submission}
    previous = (
        EvaluationAttempt.objects.filter(number__lt=attempt.number, **target)
        .order_by("-number")
        .first()
    )
    same_crash = bool(attempt.crash_signature) and previous is not None and (
        previous.crash_signature == attempt.crash_signature
    )
    if same_crash:
        _give_up(attempt, f"The model crashed the evaluator twice the same way: {error}")
    elif attempt.number >= max_attempts():
        _give_up(attempt, f"Evaluation failed {attempt.number} times: {error}")
    else:
        note = f"Attempt {attempt.number} failed ({error}); trying again"
        if attempt.match_id is not None:
            bracket_match_requeue(attempt.match, note)
        else:
            submission_requeue(attempt.submission, note)
        _request(**target)


def _give_up(attempt: EvaluationAttempt, reason: str, car: int | None = None) -> None:
    if attempt.match_id is not None:
        bracket_match_fail(attempt.match, reason, attempt, car=car)
    else:
        submission_fail(attempt.submission, reason, attempt)
