"""From submission to leaderboard through real workers, the real sandbox and real failures."""

from __future__ import annotations

import io
import signal

import pytest

from evaluator import sandbox
from evaluator.models import EvaluationAttempt
from races.models import LeaderboardEntry, Run, Submission
from races.services import model_upload, submission_create
from tests.evaluator.processes import broker_at, start_worker, stop_worker, wait_for, worker_environment

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(not sandbox.bubblewrap_works(), reason="bubblewrap cannot run on this machine"),
]


@pytest.fixture
def oval_race(make_race, oval_track):
    return make_race(name="Oval Sprint", track=oval_track, total_laps=2, minimum_laps=2, time_cap_s=60,
                     ranking_method="AVG_LAP_TIME", max_submissions_per_racer=10)


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
    timings = submission.attempts.get().timings
    assert 0 < timings["policy_s"] < timings["race_s"], timings  # the network's share of racing, for operators
    # The racer's "evaluated in": from the job to the result, not the runtime import nor the wait of a sandbox
    # started ahead (its page once said 21.3 s for a run scored 1 s after it was queued).
    job_to_result = timings["track_s"] + timings["model_wait_s"] + timings["load_s"] + timings["race_s"]
    assert run.duration_s == pytest.approx(job_to_result, abs=0.01) and timings["import_s"] > 0.1, (run.duration_s,
                                                                                                   timings)


def test_the_same_archive_on_the_same_race_gives_the_same_result(worker, oval_race, make_racer, lapping_archive):
    first, second = (
        submission_create(racer, oval_race, model_upload(racer, "clone", io.BytesIO(lapping_archive)))
        for racer in (make_racer("Twice"), make_racer("Again"))
    )
    wait_for(lambda: Run.objects.filter(submission__in=[first, second]).count() == 2, 180, "both results")
    runs = [Run.objects.get(submission=s) for s in (first, second)]
    assert runs[0].laps == runs[1].laps and runs[0].trace == runs[1].trace


@pytest.fixture
def long_oval_race(make_race, oval_track):
    """Six laps: an evaluation seen running is still racing when the test acts on it (two laps take about a
    second, which a check every 0.25 s can miss)."""
    return make_race(name="Oval Six", track=oval_track, total_laps=6, minimum_laps=2, time_cap_s=900,
                     max_submissions_per_racer=10)


def test_a_worker_killed_mid_run_is_replaced_and_the_result_counts_once(long_oval_race, make_racer, lapping_archive,
                                                                         redis_server, tmp_path, settings):
    """kill -9 the worker during an evaluation: the lease expires, the reaper re-queues, another worker scores."""
    env = worker_environment(redis_server.url, settings.MEDIA_ROOT, PITLANE_EVAL_LEASE_S="4")
    with broker_at(redis_server.url):
        _kill_one_worker_and_let_another_finish(env, long_oval_race, make_racer("Survivor"), lapping_archive,
                                                tmp_path)


def _kill_one_worker_and_let_another_finish(env, race, racer, archive: bytes, tmp_path) -> None:
    first = start_worker(env, tmp_path / "worker-a.log")
    submission = submission_create(racer, race, model_upload(racer, "clone", io.BytesIO(archive)))
    wait_for(lambda: submission.attempts.filter(status=EvaluationAttempt.Status.RUNNING).exists(), 90,
             "the first worker to start evaluating")
    stop_worker(first, signal.SIGKILL)
    second = start_worker(env, tmp_path / "worker-b.log")
    try:
        wait_for(lambda: Submission.objects.get(pk=submission.pk).status == "scored", 150,
                 "the second worker to score the submission")
    finally:
        stop_worker(second)
    statuses = list(submission.attempts.order_by("number").values_list("status", flat=True))
    assert statuses == ["expired", "succeeded"], statuses
    assert Run.objects.filter(submission=submission).count() == 1
    assert LeaderboardEntry.objects.filter(race=race).count() == 1
