"""What a worker does with a claimed attempt, through the real sandbox: each kind of failure ends as specified.

The runner is replaced by tiny scripts here (the real runner is exercised end to end in test_end_to_end).
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from datetime import timedelta

import pytest
from django.db import InternalError, OperationalError
from django.utils import timezone

from evaluator import execution, sandbox
from evaluator.config import evaluator_settings
from evaluator.execution import execute_attempt
from evaluator.models import EvaluationAttempt
from evaluator.services import attempt_claim_next, attempt_heartbeat, attempts_reap
from races import evaluation_targets
from races.services import model_upload, submission_create

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not sandbox.bubblewrap_works(), reason="bubblewrap cannot run on this machine"),
]


@pytest.fixture
def evaluate(make_racer, make_race, archive_bytes):
    race = make_race(max_submissions_per_racer=10)
    racer = make_racer("Executor")
    model = model_upload(racer, "fresh", io.BytesIO(archive_bytes))

    def evaluate(runs: int = 1):
        submission = submission_create(racer, race, model)
        for _ in range(runs):
            execute_attempt(attempt_claim_next("test-worker"))
        submission.refresh_from_db()
        return submission

    return evaluate


def runner(monkeypatch, code: str) -> None:
    monkeypatch.setattr(execution, "RUNNER", ("-c", code))


def statuses(submission) -> list[str]:
    return list(submission.attempts.order_by("number").values_list("status", flat=True))


def test_an_archive_that_fails_validation_fails_at_once(evaluate):
    """Validated at upload, but storage is not trusted: the bytes the worker fetches are checked again."""
    submission = evaluate(runs=0)
    with submission.model.archive.open("wb") as stored:
        stored.write(b"\x1f\x8b tampered")
    execute_attempt(attempt_claim_next("test-worker"))
    submission.refresh_from_db()
    assert submission.status == "failed" and submission.failure_reason.startswith("The model archive was refused")
    assert statuses(submission) == ["failed"]


def test_a_model_error_reported_by_the_runner_fails_at_once(evaluate, monkeypatch):
    runner(monkeypatch, "import json; print(json.dumps({'ok': False, 'kind': 'model', 'error': 'bad weights'}))")
    submission = evaluate()
    assert (submission.status, submission.failure_reason, statuses(submission)) == ("failed", "bad weights",
                                                                                      ["failed"])


def test_garbage_output_is_a_crash_retried_once_then_failed(evaluate, monkeypatch):
    runner(monkeypatch, "print('I am not JSON')")
    submission = evaluate(runs=2)
    assert submission.status == "failed" and "crashed the evaluator twice the same way" in submission.failure_reason
    assert "no valid JSON document" in submission.failure_reason
    assert statuses(submission) == ["failed", "failed"]


def test_a_hanging_run_is_killed_at_the_wall_limit_and_reported(evaluate, monkeypatch):
    runner(monkeypatch, "import time; time.sleep(600)")
    monkeypatch.setattr(evaluation_targets, "wall_seconds", lambda race: 2.0)
    submission = evaluate(runs=1)
    assert submission.status == "queued"  # a crash is retried
    first = submission.attempts.get(number=1)
    assert first.error == "Evaluation exceeded the wall-clock limit of 2 s"


def a_good_result_printed(after_s: float = 0.0) -> str:
    """Runner code that prints a valid one-lap result (after sleeping ``after_s``)."""
    lap = {"trial": 1, "elapsed_time_in_milliseconds": 9000, "completion_percentage": 100.0, "off_track_count": 0,
           "crash_count": 0, "immobilized_count": 0, "reversed_count": 0, "reset_count": 0,
           "episode_status": "Lap complete"}
    trace = {key: [] for key in ("t", "x", "y", "yaw", "speed", "status")}
    result = {"ok": True, "laps": [lap], "trace": trace, "simtrace_csv": "", "duration_s": 1.0}
    return f"import time; time.sleep({after_s}); print({json.dumps(json.dumps(result))})"


def test_a_crash_then_a_success_counts_the_success_once(evaluate, monkeypatch):
    runner(monkeypatch, "import os; os.kill(os.getpid(), 9)")
    submission = evaluate(runs=1)
    assert submission.attempts.get(number=1).error.startswith("The evaluation crashed (SIGKILL;")
    runner(monkeypatch, a_good_result_printed())
    execute_attempt(attempt_claim_next("test-worker"))
    submission.refresh_from_db()
    assert submission.status == "scored" and statuses(submission) == ["failed", "succeeded"]
    assert submission.run.laps[0]["elapsed_time_in_milliseconds"] == 9000


def test_a_run_whose_lease_was_taken_over_is_stopped_and_its_outcome_ignored(evaluate, monkeypatch):
    """The reaper gave the attempt to another worker (e.g. heartbeats were blocked): stop wasting the CPU."""
    runner(monkeypatch, "import time; time.sleep(600)")
    monkeypatch.setattr(execution, "HEARTBEAT_EVERY_S", 0.2)
    submission = evaluate(runs=0)
    claim = attempt_claim_next("slow-worker")

    def reap_it() -> None:
        from django.db import connection

        time.sleep(1.0)
        # The reaper runs once the lease has run out. (Expiring the lease first and reaping at the real time raced
        # the heartbeat: a beat in between renewed the lease, nothing was reaped and the run went on to its wall
        # limit, 240 s, on a loaded machine.)
        attempts_reap(now=timezone.now() + timedelta(seconds=evaluator_settings().lease_s + 1))
        connection.close()

    reaper = threading.Thread(target=reap_it)
    reaper.start()
    started = time.monotonic()
    execute_attempt(claim)
    reaper.join()
    assert time.monotonic() - started < 15
    assert statuses(submission) == ["expired", "pending"]


def test_a_heartbeat_after_the_result_is_recorded_is_not_taken_for_a_lost_lease(evaluate, monkeypatch, caplog):
    """Recording the result closes the attempt before the heartbeat stops: a beat in between finds the attempt no
    longer running, which is no lost lease (the log said so after every evaluation that met the race)."""
    runner(monkeypatch, a_good_result_printed())
    monkeypatch.setattr(execution, "HEARTBEAT_EVERY_S", 0.05)
    submission = evaluate(runs=0)
    record = execution.attempt_succeed

    def record_then_linger(*args, **kwargs):
        recorded = record(*args, **kwargs)
        time.sleep(0.5)  # several beats find the attempt closed
        return recorded

    monkeypatch.setattr(execution, "attempt_succeed", record_then_linger)
    with caplog.at_level(logging.WARNING, logger="evaluator.execution"):
        execute_attempt(attempt_claim_next("test-worker"))
    assert statuses(submission) == ["succeeded"]
    assert "lost its lease" not in caplog.text


def test_a_lease_lost_while_the_sandbox_is_still_starting_stops_the_run_once_it_has_started(evaluate, monkeypatch):
    """On a loaded machine the reaper can win before the worker holds the process: the run must not go on."""
    runner(monkeypatch, "import time; time.sleep(600)")
    monkeypatch.setattr(execution, "HEARTBEAT_EVERY_S", 0.1)
    submission = evaluate(runs=0)
    claim = attempt_claim_next("slow-worker")
    EvaluationAttempt.objects.filter(pk=claim.attempt_id).update(lease_expires_at=timezone.now())
    attempts_reap()
    start_sandboxed = sandbox.start_sandboxed

    def slow_start(*args, **kwargs):
        time.sleep(1.0)  # the heartbeat notices the lost lease meanwhile
        return start_sandboxed(*args, **kwargs)

    monkeypatch.setattr(sandbox, "start_sandboxed", slow_start)
    started = time.monotonic()
    execute_attempt(claim)
    assert time.monotonic() - started < 15
    assert statuses(submission) == ["expired", "pending"]


def test_a_database_outage_outlasting_the_workers_patience_is_retried_but_never_blamed_on_the_model(
        evaluate, monkeypatch):
    """Twice the result could not be stored: two retries, not "the model crashed the evaluator twice"."""
    runner(monkeypatch, a_good_result_printed())
    monkeypatch.setattr(execution, "RECORD_PATIENCE_S", 0.0)

    def database_gone(*args, **kwargs):
        raise OperationalError("connection failed: Connection refused")

    monkeypatch.setattr(execution, "attempt_succeed", database_gone)
    submission = evaluate(runs=2)
    assert submission.status == "queued" and statuses(submission) == ["failed", "failed", "pending"]
    first = submission.attempts.get(number=1)
    assert first.error.startswith("internal error: the database was unavailable") and first.crash_signature == ""


def test_a_heartbeat_that_fails_keeps_trying_and_the_result_counts(evaluate, monkeypatch):
    """E.g. a read-only database during a failover: the heartbeat thread must outlive the error, not the lease."""
    runner(monkeypatch, a_good_result_printed(after_s=1.5))
    monkeypatch.setattr(execution, "HEARTBEAT_EVERY_S", 0.2)
    monkeypatch.setattr(execution, "HEARTBEAT_RETRY_S", 0.05)
    beats = []

    def failing_over(claim):
        beats.append(claim.attempt_id)
        if len(beats) <= 3:
            raise InternalError("cannot execute UPDATE in a read-only transaction")
        return attempt_heartbeat(claim)

    monkeypatch.setattr(execution, "attempt_heartbeat", failing_over)
    submission = evaluate()
    assert len(beats) > 4, "the heartbeat stopped after its errors"
    assert submission.status == "scored" and statuses(submission) == ["succeeded"]
