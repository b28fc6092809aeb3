"""Evaluation attempts: atomic fair claims, leases, the reaper, superseded results and bounded retries."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from evaluator.contract import RaceResult
from evaluator.engine import pending_in_fair_order, queue_positions
from evaluator.models import EvaluationAttempt
from evaluator.services import (
    attempt_claim_next,
    attempt_fail,
    attempt_heartbeat,
    attempt_succeed,
    attempts_reap,
)
from races.models import LeaderboardEntry, Run, Submission
from races.services import submission_create
from races.services.submissions import submission_queue_position as queue_position

pytestmark = pytest.mark.django_db(transaction=True)
AttemptStatus = EvaluationAttempt.Status
RESULT = RaceResult(
    laps=[{"trial": 1, "elapsed_time_in_milliseconds": 9000, "completion_percentage": 100.0, "off_track_count": 0,
           "crash_count": 0, "immobilized_count": 0, "reversed_count": 0, "reset_count": 0,
           "episode_status": "Lap complete"}],
    trace={}, simtrace_csv="", duration_s=1.0,
)
SUBMISSION = Submission.EVALUATION_KIND


@pytest.fixture
def submit(make_racer, make_race, make_model):
    race = make_race(max_submissions_per_racer=100)
    racers: dict[str, object] = {}

    def submit(alias: str = "Alpha"):
        if alias not in racers:
            racers[alias] = make_racer(alias)
        racer = racers[alias]
        return submission_create(racer, race, make_model(racer, f"m{racer.submissions.count()}"))

    return submit


def expire(claim) -> None:
    EvaluationAttempt.objects.filter(pk=claim.attempt_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_a_claim_takes_the_attempt_atomically_and_marks_the_submission_running(submit):
    submission = submit()
    claim = attempt_claim_next("worker-a")
    assert (claim.target_kind, claim.target_id) == (SUBMISSION, submission.pk)
    assert attempt_claim_next("worker-b") is None  # nothing left to claim
    submission.refresh_from_db()
    assert submission.status == "running"
    assert attempt_heartbeat(claim)


def test_a_result_is_recorded_once_and_the_attempt_succeeds(submit):
    submission = submit()
    claim = attempt_claim_next("w")
    assert attempt_succeed(claim, RESULT)
    assert not attempt_succeed(claim, RESULT)  # the same claim cannot record twice
    assert Run.objects.filter(submission=submission).count() == 1
    assert LeaderboardEntry.objects.get().ranking_score_ms == 9000


def test_the_reaper_reopens_a_lost_worker_and_the_late_result_is_rejected(submit):
    submission = submit()
    lost = attempt_claim_next("worker-killed")
    expire(lost)
    assert attempts_reap() == {"expired": 1, "renudged": 0}
    submission.refresh_from_db()
    assert submission.status == "queued"
    assert list(submission.attempts.values_list("number", "status")) == [
        (1, AttemptStatus.EXPIRED), (2, AttemptStatus.PENDING)]
    assert not attempt_heartbeat(lost)
    retry = attempt_claim_next("worker-b")
    assert attempt_succeed(retry, RESULT)
    assert not attempt_succeed(lost, replace(RESULT, duration_s=2.0))  # the superseded attempt's late result
    assert Run.objects.get(submission=submission).attempt_number == 2
    assert LeaderboardEntry.objects.count() == 1


def test_retries_stop_at_the_limit_with_a_reason(submit, settings):
    settings.PITLANE_EVAL_MAX_ATTEMPTS = 2
    submission = submit()
    for _ in range(2):
        expire(attempt_claim_next("w"))
        attempts_reap()
    submission.refresh_from_db()
    assert submission.status == "failed"
    assert submission.failure_reason.startswith("Evaluation failed 2 times: the worker w stopped responding")


def test_a_model_error_fails_at_once_and_a_repeated_crash_stops_quickly(submit):
    refused = submit("Alpha")
    attempt_fail(attempt_claim_next("w"), "The model archive was refused: NaN weights", retryable=False)
    refused.refresh_from_db()
    assert refused.status == "failed" and refused.attempts.count() == 1
    crashing = submit("Beta")
    attempt_fail(attempt_claim_next("w"), "crashed (SIGSEGV)", retryable=True, crash_signature="SIGSEGV")
    attempt_fail(attempt_claim_next("w"), "crashed (SIGSEGV)", retryable=True, crash_signature="SIGSEGV")
    crashing.refresh_from_db()
    assert crashing.status == "failed" and "crashed the evaluator twice" in crashing.failure_reason
    assert crashing.attempts.count() == 2


def test_claims_are_fair_across_racers_and_capped_per_racer(submit):
    a1, a2, a3 = submit("Alpha"), submit("Alpha"), submit("Alpha")
    b1 = submit("Beta")
    assert queue_position(a1) == 1 and queue_position(b1) == 2 and queue_position(a2) == 3
    first = attempt_claim_next("w1")
    assert first.target_id == a1.pk
    # Alpha is at its cap of one running evaluation: Beta goes next although Alpha submitted earlier.
    second = attempt_claim_next("w2")
    assert second.target_id == b1.pk
    assert attempt_claim_next("w3") is None
    attempt_succeed(first, RESULT)
    assert attempt_claim_next("w1").target_id == a2.pk
    assert queue_position(a3) == 1 and queue_position(a1) is None


def test_pending_attempts_nobody_took_are_nudged_again(submit, settings, broker):
    settings.PITLANE_EVAL_STALE_PENDING_S = 60
    submit()
    EvaluationAttempt.objects.update(enqueued_at=timezone.now() - timedelta(minutes=5))
    broker.flush_all()
    assert attempts_reap()["renudged"] == 1
    assert broker.queues and sum(len(q.queue) if hasattr(q, "queue") else q.qsize() for q in
                                 broker.queues.values()) >= 1


def test_attempts_queued_before_this_process_started_are_nudged_at_once(submit, monkeypatch, broker):
    """A set-up command or a restarted embedded server lost its in-memory queue: the first reap recovers it."""
    from evaluator import services

    submit()
    broker.flush_all()
    monkeypatch.setattr(services, "PROCESS_STARTED", timezone.now())
    assert attempts_reap()["renudged"] == 1
    assert attempts_reap()["renudged"] == 0  # nudged once, not on every reap


def test_the_queue_is_round_robin_by_racer_and_positions_follow_it(submit):
    a1, a2, a3 = submit("Alpha"), submit("Alpha"), submit("Alpha")
    b1, b2 = submit("Beta"), submit("Beta")
    g1 = submit("Gamma")
    assert [a.target_id for a in pending_in_fair_order()] == [s.pk for s in (a1, b1, g1, a2, b2, a3)]
    assert queue_positions(SUBMISSION) == {a1.pk: 1, b1.pk: 2, g1.pk: 3, a2.pk: 4, b2.pk: 5, a3.pk: 6}
    claimed = [attempt_claim_next(f"w{i}").target_id for i in range(3)]
    assert claimed == [a1.pk, b1.pk, g1.pk]
    # Everyone is at the cap of one running evaluation: the rest waits, Alpha's second still goes first.
    assert attempt_claim_next("w3") is None and queue_position(a2) == 1


def test_a_submission_disqualified_while_it_waits_is_not_evaluated(submit):
    from races.services import submission_disqualify

    waiting = submit("Alpha")
    submission_disqualify(waiting, "copied model")
    assert queue_position(waiting) is None
    assert attempt_claim_next("w") is None
    assert list(waiting.attempts.values_list("status", flat=True)) == [AttemptStatus.SUPERSEDED]
