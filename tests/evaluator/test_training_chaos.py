"""A training worker killed with kill -9 mid-training: the job is re-leased, resumes from its last stored checkpoint
on another worker, loses at most one iteration, and its minutes are counted once.

Real worker processes (``manage.py rundramatiq``), a real Redis, the real PostgreSQL test database, the real sandbox.
An episode budget ends the job, so nothing depends on how fast this machine trains.
"""

from __future__ import annotations

import re
import signal
import time

import pytest

from evaluator import sandbox
from evaluator.models import EvaluationAttempt
from races.models import TrainingJob
from races.services.training import training_start
from tests.evaluator.processes import broker_at, start_worker, stop_worker, wait_for, worker_environment
from tests.races.training_helpers import small_options, small_request

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(not sandbox.bubblewrap_works(), reason="bubblewrap cannot run on this machine"),
]
EPISODES = 40  # 8 iterations of 5 episodes


def test_a_training_worker_killed_mid_run_resumes_elsewhere_from_its_last_checkpoint(redis_server, make_racer,
                                                                                       oval_track, settings, tmp_path):
    env = worker_environment(redis_server.url, settings.MEDIA_ROOT, PITLANE_EVAL_LEASE_S="6",
                             PITLANE_TRAINING_PROGRESS_S="1")
    racer = make_racer("Phoenix")
    with broker_at(redis_server.url):
        job = training_start(racer, small_request(oval_track, name="survivor"), small_options(max_episodes=EPISODES))
    first = start_worker(env, tmp_path / "first.log")
    second = None
    try:
        wait_for(lambda: TrainingJob.objects.filter(pk=job.pk, checkpoint_iteration__gte=2).exists(), 240,
                 "two stored iterations on the first worker")
        stop_worker(first, signal.SIGKILL)  # the whole process group: the worker and its sandbox
        killed_at = time.monotonic()
        job.refresh_from_db()
        stored, shown, counted = job.checkpoint_iteration, job.iterations, job.trained_seconds
        assert job.iterations < EPISODES // 5, "the job finished before the kill: the test proves nothing"
        second = start_worker(env, tmp_path / "second.log")
        wait_for(lambda: TrainingJob.objects.filter(pk=job.pk, status__in=("done", "failed")).exists(), 300,
                 "the job to finish on the second worker")
        resumed_for = time.monotonic() - killed_at
    finally:
        stop_worker(first, signal.SIGKILL)
        if second is not None:
            stop_worker(second)
    job.refresh_from_db()
    log = (tmp_path / "second.log").read_text(errors="replace")[-3000:]
    assert job.status == "done", f"{job.failure_reason}\n{log}"
    attempts = list(EvaluationAttempt.objects.filter(target_kind="training", target_id=job.pk).order_by("number"))
    assert [a.status for a in attempts] == ["expired", "succeeded"], [(a.status, a.error) for a in attempts]
    # It resumed from the last stored checkpoint: the second run's log starts after it, and at most the iteration
    # under way (or one committed but not yet stored) was lost against what the page showed.
    trained_again = sorted(int(n) for n in re.findall(r"^iteration (\d+):", job.log_tail, re.MULTILINE))
    assert trained_again and trained_again[-1] == EPISODES // 5, job.log_tail
    resumed_from = trained_again[0] - 1
    assert resumed_from >= stored >= 2 and shown - resumed_from <= 1, (stored, shown, trained_again)
    # The model's history is whole: every iteration once, the episode budget met exactly.
    assert [row["iteration"] for row in job.curve] == list(range(1, EPISODES // 5 + 1))
    assert job.episodes == EPISODES and job.model is not None
    # Minutes counted once: the first attempt's seconds as last reported, plus the second attempt's clock.
    second_attempt = job.trained_seconds - job.seconds_before_attempt
    assert job.seconds_before_attempt >= counted > 0
    assert 0 < second_attempt <= resumed_for
    assert job.trained_seconds < counted + resumed_for
