"""The engine's public surface: the target registry, requesting and cancelling work, and a third target kind.

The third kind ("echo") is a tiny real target registered by the test itself, as a later app (the training
console) would register its own: claims, callbacks, retries and the sandbox run go through the unchanged engine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

import pytest

from evaluator import execution, sandbox
from evaluator.contract import CONTRACT_VERSION, RaceJob, RaceResult
from evaluator.engine import (
    EvaluationAttempt,
    QueuePlace,
    SandboxWork,
    TargetLabel,
    UnknownTargetKind,
    pending_in_fair_order,
    queue_positions,
    register_target,
    registered_kinds,
    unregister_target,
    work_cancel,
    work_request,
)
from evaluator.execution import execute_attempt
from evaluator.services import attempt_claim_next, attempt_fail, attempt_succeed
from races.models import Submission
from races.services import submission_create
from sim.world.rules import RaceRules

pytestmark = pytest.mark.django_db(transaction=True)
AttemptStatus = EvaluationAttempt.Status
ECHO = "echo"
LAP = {"trial": 1, "elapsed_time_in_milliseconds": 4200, "completion_percentage": 100.0, "off_track_count": 0,
       "crash_count": 0, "immobilized_count": 0, "reversed_count": 0, "reset_count": 0,
       "episode_status": "Lap complete"}


class EchoTarget:
    """Targets numbered by the test; ids in ``done`` are final. Records every callback it receives."""

    def __init__(self, owner_id: int | None = None, priority: int = 0) -> None:
        self.place = QueuePlace(owner_id, priority)
        self.done: set[int] = set()
        self.events: list[tuple] = []

    def queue_place(self, target_id: int) -> QueuePlace:
        return self.place

    def closed(self, target_ids: Collection[int]) -> dict[int, str]:
        return {target_id: "echo is done" for target_id in target_ids if target_id in self.done}

    def sandbox_work(self, target_id: int) -> SandboxWork:
        job = RaceJob(track_name=f"echo-{target_id}", track_rows=[[0.0] * 6], rules=RaceRules(total_laps=1))
        return SandboxWork(job=job, archives=[], wall_seconds=30)

    def describe(self, target_ids: Collection[int]) -> dict[int, TargetLabel]:
        return {target_id: TargetLabel(f"Echo {target_id}") for target_id in target_ids}

    def on_running(self, target_id: int, attempt: EvaluationAttempt) -> None:
        self.events.append(("running", target_id, attempt.number))

    def on_result(self, target_id: int, attempt: EvaluationAttempt, result) -> None:
        self.events.append(("result", target_id, attempt.number, result))
        self.done.add(target_id)

    def on_requeue(self, target_id: int, note: str) -> None:
        self.events.append(("requeue", target_id, note))

    def on_failure(self, target_id: int, reason: str, attempt: EvaluationAttempt, car: int | None = None) -> None:
        self.events.append(("failure", target_id, reason, car))
        self.done.add(target_id)


@pytest.fixture
def echo():
    target = EchoTarget()
    register_target(ECHO, target)
    yield target
    unregister_target(ECHO)


def test_an_unknown_kind_is_a_clear_error():
    kinds = "match, model_evaluation, submission, training"
    with pytest.raises(UnknownTargetKind, match=rf"kind 'trainnig'.*registered: {kinds}"):
        work_request("trainnig", 1)
    with pytest.raises(ValueError, match="short non-empty name"):
        register_target("", EchoTarget())
    assert registered_kinds() == kinds.split(", ")  # races registered its kinds in ready()


def test_a_third_kind_goes_through_claim_result_and_retries_without_touching_the_engine(echo):
    first, second = work_request(ECHO, 1), work_request(ECHO, 2)
    assert (first.target_kind, first.target_id, first.number, first.owner_id) == (ECHO, 1, 1, None)
    assert queue_positions(ECHO) == {1: 1, 2: 2}
    claim = attempt_claim_next("w")
    assert (claim.target_kind, claim.target_id) == (ECHO, 1) and echo.events == [("running", 1, 1)]
    result = RaceResult(laps=[LAP], trace={}, timings={"race_s": 1.0})
    assert attempt_succeed(claim, result, sandbox_mode="bubblewrap", sandbox_seconds=2.5)
    assert echo.events[-1] == ("result", 1, 1, result)
    assert EvaluationAttempt.objects.get(pk=first.pk).timings == {"race_s": 1.0, "sandbox_s": 2.5}
    # A crash is retried at the same place in the queue, then given up with the target told why.
    crash = attempt_claim_next("w")
    attempt_fail(crash, "crashed (SIGSEGV)", retryable=True, crash_signature="SIGSEGV")
    assert echo.events[-1][:2] == ("requeue", 2) and queue_positions(ECHO) == {2: 1}
    attempt_fail(attempt_claim_next("w"), "crashed (SIGSEGV)", retryable=True, crash_signature="SIGSEGV")
    assert echo.events[-1][:2] == ("failure", 2) and "twice the same way" in echo.events[-1][2]
    assert second.number == 1 and EvaluationAttempt.objects.filter(target_kind=ECHO, target_id=2).count() == 2


def test_a_third_kind_takes_its_place_in_the_fair_order(echo, make_racer, make_race, make_model):
    racer = make_racer("Alpha")
    race = make_race(max_submissions_per_racer=5)
    submission = submission_create(racer, race, make_model(racer))
    echo.place = QueuePlace(owner_id=racer.pk, priority=0)  # the racer's own job: it takes turns with theirs
    work_request(ECHO, 9)
    later = submission_create(racer, race, make_model(racer, "second"))
    assert [(a.target_kind, a.target_id) for a in pending_in_fair_order()] == [
        (Submission.EVALUATION_KIND, submission.pk), (ECHO, 9), (Submission.EVALUATION_KIND, later.pk)]
    assert attempt_claim_next("w").target_id == submission.pk
    assert attempt_claim_next("w2") is None  # the racer is at their cap of one running job, whatever its kind
    echo.place = QueuePlace(priority=1000)  # an ownerless job of a higher priority: before everything, no cap
    work_request(ECHO, 10)
    assert attempt_claim_next("w2").target_id == 10


def test_work_cancel_supersedes_the_waiting_attempt_only(echo):
    work_request(ECHO, 1)
    assert work_cancel(ECHO, 1, "withdrawn by its owner") == 1
    attempt = EvaluationAttempt.objects.get(target_kind=ECHO, target_id=1)
    assert (attempt.status, attempt.error) == (AttemptStatus.SUPERSEDED, "withdrawn by its owner")
    assert attempt_claim_next("w") is None and queue_positions(ECHO) == {}
    work_request(ECHO, 2)
    running = attempt_claim_next("w")
    assert work_cancel(ECHO, 2, "too late") == 0  # a running attempt finishes; its target decides what it means
    assert attempt_succeed(running, RaceResult(laps=[LAP], trace={}))


def test_a_target_that_became_final_while_it_waited_is_superseded_with_its_reason(echo):
    work_request(ECHO, 1)
    echo.done.add(1)
    assert pending_in_fair_order() == [] and attempt_claim_next("w") is None
    assert EvaluationAttempt.objects.get(target_kind=ECHO).status == AttemptStatus.SUPERSEDED


@pytest.mark.skipif(not sandbox.bubblewrap_works(), reason="bubblewrap cannot run on this machine")
def test_a_third_kind_runs_in_the_sandbox_with_its_own_job(echo, monkeypatch):
    """The worker sends the target's job (versioned) and hands the validated result back to the target."""
    result = {"version": CONTRACT_VERSION, "ok": True, "laps": [LAP], "simtrace_csv": "", "duration_s": 0.5,
              "trace": {key: [] for key in ("t", "x", "y", "yaw", "speed", "status")}}
    code = ("import json, sys\njob = json.loads(sys.stdin.read())\n"
            "assert job['version'] == 1 and job['track']['name'] == 'echo-5' and job['rules']['total_laps'] == 1\n"
            f"print(json.dumps({result!r}))")
    monkeypatch.setattr(execution, "RUNNER", ("-c", code))
    work_request(ECHO, 5)
    execute_attempt(attempt_claim_next("w"))
    kind, target_id, number, recorded = echo.events[-1]
    assert (kind, target_id, number) == ("result", 5, 1)
    assert dataclasses.replace(recorded, timings={}) == RaceResult(laps=[LAP], trace=result["trace"], duration_s=0.5)
    assert "at_ended_s" in recorded.timings  # the worker's phase marks join the runner's own
    attempt = EvaluationAttempt.objects.get(target_kind=ECHO)
    assert attempt.status == AttemptStatus.SUCCEEDED and attempt.sandbox_mode == "bubblewrap", attempt.error
    assert attempt.timings["sandbox_s"] > 0  # the sandbox's wall time, for operators
