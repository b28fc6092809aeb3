"""From submission to leaderboard through real workers, the real sandbox and real failures."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from evaluator.models import EvaluationAttempt
from races.models import LeaderboardEntry, Run, Submission
from races.services import model_upload, submission_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def oval_race(make_race):
    from races.services import track_install_builtins

    oval = {t.slug: t for t in track_install_builtins()}["pitlane_oval"]
    return make_race(name="Oval Sprint", track=oval, total_laps=2, minimum_laps=2, time_cap_s=60,
                     ranking_method="AVG_LAP_TIME", max_submissions_per_racer=10)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def test_a_submission_is_evaluated_in_the_sandbox_and_ranked(worker, oval_race, make_racer, lapping_archive):
    racer = make_racer("Cloner")
    model = model_upload(racer, "clone", io.BytesIO(lapping_archive))
    submission = submission_create(racer, oval_race, model)
    wait_for(lambda: Submission.objects.get(pk=submission.pk).status in ("scored", "failed"), 120, "the result")
    submission.refresh_from_db()
    assert submission.status == "scored", submission.failure_reason
    run = Run.objects.get(submission=submission)
    assert run.qualified and [lap["episode_status"] for lap in run.laps] == ["Lap complete", "Lap complete"]
    entry = LeaderboardEntry.objects.get(race=oval_race)
    assert entry.ranking_score_ms == run.ranking_score_ms and 15_000 < entry.ranking_score_ms < 25_000
    assert len(run.trace["x"]) > 100 and run.simtrace.read().startswith(b"episode,steps,X,Y")


def test_the_same_archive_on_the_same_race_gives_the_same_result(worker, oval_race, make_racer, lapping_archive):
    first, second = (
        submission_create(racer, oval_race, model_upload(racer, "clone", io.BytesIO(lapping_archive)))
        for racer in (make_racer("Twice"), make_racer("Again"))
    )
    wait_for(lambda: Run.objects.filter(submission__in=[first, second]).count() == 2, 180, "both results")
    runs = [Run.objects.get(submission=s) for s in (first, second)]
    assert runs[0].laps == runs[1].laps and runs[0].trace == runs[1].trace


def _test_database_url() -> str:
    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    out = log.open("w")
    return subprocess.Popen(
        [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", "1"],
        cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
    )


def test_a_worker_killed_mid_run_is_replaced_and_the_result_counts_once(oval_race, make_racer, lapping_archive,
                                                                         redis_url, tmp_path, settings):
    """kill -9 the worker during an evaluation: the lease expires, the reaper re-queues, another worker scores."""
    env = os.environ | {
        "PITLANE_DATABASE_URL": _test_database_url(),
        "PITLANE_BROKER_URL": redis_url,
        "PITLANE_EVAL_LEASE_S": "4",
        "PITLANE_MEDIA_ROOT": settings.MEDIA_ROOT,
        "PITLANE_DEMO_BASELINE": "false",
    }
    settings.PITLANE_BROKER_URL = redis_url
    import dramatiq

    from league.broker import build_broker

    previous = dramatiq.get_broker()
    redis_broker = build_broker(redis_url)
    dramatiq.set_broker(redis_broker)
    from evaluator import actors

    actors.evaluate_next.broker = redis_broker
    redis_broker.declare_actor(actors.evaluate_next)
    redis_broker.flush_all()
    try:
        first = _start_worker(env, tmp_path / "worker-a.log")
        racer = make_racer("Survivor")
        model = model_upload(racer, "clone", io.BytesIO(lapping_archive))
        submission = submission_create(racer, oval_race, model)
        wait_for(lambda: EvaluationAttempt.objects.filter(submission=submission, status="running").exists(), 90,
                 "the first worker to start evaluating")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        second = _start_worker(env, tmp_path / "worker-b.log")
        try:
            wait_for(lambda: Submission.objects.get(pk=submission.pk).status == "scored", 150,
                     "the second worker to score the submission")
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(30)
        statuses = list(submission.attempts.order_by("number").values_list("status", flat=True))
        assert statuses == ["expired", "succeeded"], statuses
        assert Run.objects.filter(submission=submission).count() == 1
        assert LeaderboardEntry.objects.filter(race=oval_race).count() == 1
    finally:
        redis_broker.flush_all()
        actors.evaluate_next.broker = previous
        dramatiq.set_broker(previous)
