"""Head-to-head bracket matches go through the same attempts, leases, reaper and sandbox as submissions."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from evaluator import sandbox
from evaluator.contract import CarRun, MatchResult, RaceResult, ResultError, parse_runner_output
from evaluator.engine import pending_in_fair_order, queue_positions
from evaluator.models import EvaluationAttempt
from evaluator.services import (
    attempt_claim_next,
    attempt_fail,
    attempt_succeed,
    attempts_reap,
)
from races.models import BracketMatch, Race, Submission
from races.services import bracket_match_rerun, bracket_start, brackets_start_due, model_upload, submission_create
from tests.evaluator.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
A = EvaluationAttempt.Status
MATCH, SUBMISSION = BracketMatch.EVALUATION_KIND, Submission.EVALUATION_KIND
H2H = Race.RaceType.HEAD_TO_HEAD


def lap(ms: int, completion: float = 100.0) -> dict:
    return {"trial": 1, "elapsed_time_in_milliseconds": ms, "completion_percentage": completion,
            "off_track_count": 0, "crash_count": 0, "immobilized_count": 0, "reversed_count": 0, "reset_count": 0,
            "episode_status": "Lap complete" if completion == 100.0 else "Time up"}


def qualifying(ms: int) -> RaceResult:
    return RaceResult(laps=[lap(ms)], trace={}, simtrace_csv="", duration_s=1.0)


def match_result(ms_a: int, ms_b: int) -> MatchResult:
    trace = {"t": [0.0], "x": [0.0], "y": [0.0], "yaw": [0.0], "speed": [0.0], "status": ["prepare"]}
    return MatchResult(cars=(CarRun(laps=[lap(ms_a)], trace=trace), CarRun(laps=[lap(ms_b)], trace=trace)),
                       lanes=["outer", "inner"], duration_s=2.0)


@pytest.fixture
def final(make_racer, make_race, make_model):
    """A closed head-to-head race whose two qualifiers (Quick 9.0 s, Steady 9.5 s) meet in a 2-racer final."""
    race = make_race(name="Duel", race_type=H2H, bracket_size=2, total_laps=1)
    for alias, ms in (("Quick", 9000), ("Steady", 9500)):
        racer = make_racer(alias)
        submission_create(racer, race, make_model(racer, alias.lower()))
        claim = attempt_claim_next("qualifier")
        assert attempt_succeed(claim, qualifying(ms))
    Race.objects.filter(pk=race.pk).update(closed_early_at=timezone.now())
    race.refresh_from_db()
    (match,) = bracket_start(race)
    return match


def test_a_match_is_claimed_first_and_its_result_decides_it_once(final, make_race, make_racer, make_model):
    other = make_race(name="Open Cup")
    racer = make_racer("Waiting")
    submission_create(racer, other, make_model(racer, "w"))
    queue = pending_in_fair_order()
    assert [(attempt.target_kind, attempt.target_id) for attempt in queue[:1]] == [(MATCH, final.pk)]
    assert [attempt.target_kind for attempt in queue] == [MATCH, SUBMISSION]  # matches are first in line
    assert list(queue_positions(SUBMISSION).values()) == [2]  # the submission waits behind the match
    claim = attempt_claim_next("worker")
    assert (claim.target_kind, claim.target_id) == (MATCH, final.pk)
    assert BracketMatch.objects.get(pk=final.pk).status == "running"
    assert attempt_succeed(claim, match_result(9100, 9050))
    assert not attempt_succeed(claim, match_result(8000, 9999))  # recorded exactly once
    final.refresh_from_db()
    assert final.status == "decided" and final.winner == final.racer_b  # B was faster
    assert final.result["outcome"]["reason"] == "faster" and final.result["lanes"] == ["outer", "inner"]
    assert [car["laps"][0]["elapsed_time_in_milliseconds"] for car in final.result["cars"]] == [9100, 9050]
    assert final.attempts.get().status == A.SUCCEEDED


def test_a_model_failure_of_one_car_is_a_forfeit_and_a_crash_is_retried(final):
    claim = attempt_claim_next("worker")
    final.refresh_from_db()
    assert attempt_fail(claim, "a crash", retryable=True, crash_signature="SIGSEGV")
    final.refresh_from_db()
    assert final.status == "queued"  # a second attempt waits
    assert list(final.attempts.values_list("number", "status")) == [(1, A.FAILED), (2, A.PENDING)]
    claim = attempt_claim_next("worker")
    assert attempt_fail(claim, "the model could not be loaded: bad weights", retryable=False, car=0)
    final.refresh_from_db()
    assert final.status == "decided" and final.winner == final.racer_b
    assert final.result == {"forfeit": 0, "reason": "the model could not be loaded: bad weights"}


def test_a_match_whose_worker_vanished_is_reopened_by_the_reaper(final):
    claim = attempt_claim_next("lost")
    EvaluationAttempt.objects.filter(pk=claim.attempt_id).update(lease_expires_at=timezone.now() - timedelta(1))
    assert attempts_reap()["expired"] == 1
    final.refresh_from_db()
    assert final.status == "queued"
    assert list(final.attempts.values_list("status", flat=True)) == [A.EXPIRED, A.PENDING]
    assert not attempt_succeed(claim, match_result(9000, 9500))  # the lost worker's late result is refused
    retry = attempt_claim_next("other")
    assert retry.target_id == final.pk and attempt_succeed(retry, match_result(9000, 9500))
    final.refresh_from_db()
    assert final.winner == final.racer_a


def test_an_attempt_targets_exactly_one_thing_and_a_match_has_one_live_attempt(final):
    with pytest.raises(IntegrityError), transaction.atomic():
        EvaluationAttempt.objects.create(target_kind=MATCH, target_id=final.pk, number=2)  # attempt 1 still pending
    with pytest.raises(IntegrityError), transaction.atomic():
        EvaluationAttempt.objects.create(number=1)  # no target
    with pytest.raises(IntegrityError), transaction.atomic():
        EvaluationAttempt.objects.create(target_kind="", target_id=final.pk, number=9)  # no kind
    submission = Submission.objects.first()
    with pytest.raises(IntegrityError), transaction.atomic():  # numbers are unique per target
        EvaluationAttempt.objects.create(target_kind=SUBMISSION, target_id=submission.pk, number=1,
                                         status=A.SUCCEEDED)


def test_the_runner_output_of_a_match_is_validated():
    good = {"ok": True, **{k: v for k, v in match_result(9000, 9500).to_json().items() if k != "duration_s"},
            "duration_s": 3.0, "timings": {"race_s": 2.0}}
    import json

    parsed = parse_runner_output(json.dumps(good).encode(), 1, 10**6, match=True)
    assert [len(car.laps) for car in parsed.cars] == [1, 1]
    for broken in ({"cars": good["cars"][:1]}, {"lanes": ["inner", "inner"]}, {"cars": [{"laps": []}] * 2}):
        with pytest.raises(ResultError):
            parse_runner_output(json.dumps(good | broken).encode(), 1, 10**6, match=True)
    failure = {"ok": False, "kind": "model", "error": "bad", "car": 1}
    assert parse_runner_output(json.dumps(failure).encode(), 1, 10**6, match=True).car == 1
    with pytest.raises(ResultError):
        parse_runner_output(json.dumps(failure | {"car": 2}).encode(), 1, 10**6, match=True)
    with pytest.raises(ResultError):  # a submission's runner never names a car
        parse_runner_output(json.dumps(failure).encode(), 1, 10**6)


# --------------------------------------------------------------------------------- through the real sandbox
@pytest.mark.slow
@pytest.mark.skipif(not sandbox.bubblewrap_works(), reason="bubblewrap cannot run on this machine")
def test_a_bracket_match_is_raced_in_the_sandbox_and_deterministic(worker, make_race, make_racer, oval_track,
                                                                   lapping_archive):
    race = make_race(name="Oval Duel", track=oval_track, race_type=H2H, bracket_size=4, total_laps=1, time_cap_s=40)
    submissions = []
    for alias in ("Left", "Right"):
        racer = make_racer(alias)
        submissions.append(submission_create(racer, race, model_upload(racer, "clone", io.BytesIO(lapping_archive))))
    wait_for(lambda: Submission.objects.filter(pk__in=[s.pk for s in submissions], status="scored").count() == 2,
             180, "both qualifying runs")
    Race.objects.filter(pk=race.pk).update(closed_early_at=timezone.now())
    assert brackets_start_due() == 1 and brackets_start_due() == 0  # the periodic tick starts it once
    match = BracketMatch.objects.get(race=race)
    assert (match.round, match.seed_a, match.seed_b) == (1, 1, 2)  # 2 qualifiers: a bracket of two
    wait_for(lambda: BracketMatch.objects.get(pk=match.pk).status in ("decided", "failed"), 240, "the match")
    match.refresh_from_db()
    assert match.status == "decided", match.failure_reason
    assert match.winner_id in (match.racer_a_id, match.racer_b_id)
    cars = match.result["cars"]
    assert sorted(match.result["lanes"]) == ["inner", "outer"]
    assert all(car["laps"] and len(car["trace"]["x"]) > 50 for car in cars)
    first = match.result
    bracket_match_rerun(match)
    wait_for(lambda: BracketMatch.objects.get(pk=match.pk).status == "decided", 240, "the re-run")
    match.refresh_from_db()
    assert match.result["cars"] == first["cars"] and match.result["outcome"] == first["outcome"]
    assert match.result["attempt"] == 2
