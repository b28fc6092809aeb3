"""Failures around a batch of evaluations: the broker restarts empty, database connections are dropped, the
database server stops and starts again.

Real worker processes, a real Redis (a throwaway server the test starts and kills), the real PostgreSQL test
database (or a throwaway cluster the test stops and restarts) and the real sandbox. The property under test:
every submission ends scored with exactly one run.
"""

from __future__ import annotations

import io
import itertools
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from evaluator import sandbox
from evaluator.models import EvaluationAttempt
from races.models import Race, Run, Submission
from races.services import model_upload, submission_create
from tests.evaluator.processes import (
    REPO,
    broker_at,
    database_at,
    start_worker,
    stop_worker,
    wait_for,
    worker_environment,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.skipif(not sandbox.bubblewrap_works(), reason="bubblewrap cannot run on this machine"),
]
FINAL = ("scored", "failed", "disqualified")


@pytest.fixture
def broker_on(redis_server):
    with broker_at(redis_server.url) as broker:
        yield broker


@pytest.fixture
def league_on_postgres_server(postgres_server, settings):
    """The test process and its workers use a migrated database on the throwaway cluster, not the test database.

    Request it before the fixtures that create data (``submit``), so that data is made there.
    """
    with database_at(postgres_server.url):
        subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=REPO, check=True, timeout=120,
                       env=worker_environment("", settings.MEDIA_ROOT))
        yield postgres_server


@pytest.fixture
def sprint(make_race, oval_track):
    return make_race(name="Chaos Sprint", track=oval_track, total_laps=1, minimum_laps=1, time_cap_s=60,
                     max_submissions_per_racer=20)


@pytest.fixture
def submit(sprint, make_racer, lapping_archive):
    racers = [make_racer(alias) for alias in ("Ada", "Bob", "Cyd")]
    models = {racer.pk: model_upload(racer, "clone", io.BytesIO(lapping_archive)) for racer in racers}
    turn = itertools.cycle(racers)

    def submit(count: int, race: Race | None = None) -> list[Submission]:
        return [submission_create(racer, race or sprint, models[racer.pk]) for racer in itertools.islice(turn, count)]

    return submit


def assert_each_scored_exactly_once(submissions: list[Submission]) -> None:
    ids = [s.pk for s in submissions]
    statuses = dict(Submission.objects.filter(pk__in=ids).values_list("pk", "status"))
    assert set(statuses.values()) == {"scored"}, statuses
    for submission in submissions:
        assert Run.objects.filter(submission=submission).count() == 1
        assert submission.attempts.filter(status=EvaluationAttempt.Status.SUCCEEDED).count() == 1
        assert not submission.attempts.filter(status__in=EvaluationAttempt.ACTIVE).exists()


def wait_for_a_first_result(submissions: list[Submission]) -> None:
    ids = [s.pk for s in submissions]
    wait_for(lambda: Submission.objects.filter(pk__in=ids, status="scored").exists(), 120, "a first result")


def evaluations_racing(submissions: list[Submission]) -> bool:
    """Some attempt of the batch was claimed at least a moment ago (its sandbox is up) and has not finished."""
    return EvaluationAttempt.objects.filter(
        target_kind=Submission.EVALUATION_KIND, target_id__in=[s.pk for s in submissions],
        status=EvaluationAttempt.Status.RUNNING, started_at__lt=timezone.now() - timedelta(seconds=0.5),
    ).exists()


def all_final(submissions: list[Submission]) -> bool:
    return not Submission.objects.filter(pk__in=[s.pk for s in submissions]).exclude(status__in=FINAL).exists()


def test_a_broker_that_restarts_empty_mid_batch_loses_no_submission(redis_server, broker_on, submit, settings,
                                                                    tmp_path):
    """Redis dies with the queue in it and comes back empty; submissions made meanwhile still succeed."""
    worker = start_worker(worker_environment(redis_server.url, settings.MEDIA_ROOT), tmp_path / "worker.log",
                          threads=2)
    try:
        batch = submit(4)
        wait_for_a_first_result(batch)
        redis_server.kill()
        batch += submit(2)  # the nudges fail: the submissions must still be created (and later evaluated)
        time.sleep(4)  # long enough for the worker's consumer to hit connection errors
        redis_server.start()  # empty: every queued nudge is gone
        wait_for(lambda: all_final(batch), 180, "the whole batch after the broker restart")
        assert worker.poll() is None, "the worker died with the broker"
    finally:
        stop_worker(worker)
    assert_each_scored_exactly_once(batch)


def test_dropped_database_connections_mid_batch_lose_no_result(redis_server, broker_on, submit, settings,
                                                                tmp_path):
    """pg_terminate_backend on every worker connection, over and over, while the batch runs."""
    worker = start_worker(worker_environment(redis_server.url, settings.MEDIA_ROOT, PITLANE_EVAL_LEASE_S="20"),
                          tmp_path / "worker.log", threads=2)
    stop = threading.Event()
    terminated: list[int] = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        test_backend = cursor.fetchone()[0]  # the test's own connection stays

    def drop_connections() -> None:
        from django.db import connections

        try:
            while not stop.wait(0.7):
                with connections["default"].cursor() as cursor:
                    cursor.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid() AND pid <> %s",
                        [test_backend],
                    )
                    terminated.append(cursor.fetchone()[0])
        finally:
            connections.close_all()

    try:
        batch = submit(6)
        killer = threading.Thread(target=drop_connections, daemon=True)
        killer.start()
        wait_for(lambda: all_final(batch), 240, "the whole batch while connections are dropped")
        stop.set()
        killer.join(10)
        assert worker.poll() is None, "the worker died with its database connections"
    finally:
        stop.set()
        stop_worker(worker)
    assert sum(terminated) >= 5, f"the test dropped too few connections to mean anything: {terminated}"
    assert_each_scored_exactly_once(batch)
    assert connection.is_usable()


def test_a_database_server_that_restarts_mid_batch_loses_no_result(league_on_postgres_server, redis_server, broker_on,
                                                                    submit, make_race, oval_track, settings, tmp_path):
    """PostgreSQL itself stops (every connection closed, nothing listening) and starts again mid-batch: evaluations
    running meanwhile keep their results, queued ones are still evaluated, and the worker lives on."""
    postgres = league_on_postgres_server
    # Many laps, so an evaluation seen running is still racing when the server goes: a one-lap sprint is over in
    # well under a second, and the whole batch could finish between the check and the stop.
    marathon = make_race(name="Chaos Marathon", track=oval_track, total_laps=10, minimum_laps=1,
                         time_cap_s=900, max_submissions_per_racer=20)
    worker = start_worker(worker_environment(redis_server.url, settings.MEDIA_ROOT), tmp_path / "worker.log",
                          threads=2)
    try:
        batch = submit(4, race=marathon)
        wait_for(lambda: evaluations_racing(batch), 120, "an evaluation to start racing")
        stopped_at = timezone.now()
        postgres.stop("fast")
        connection.close()  # this process's connection went down with the server
        # Past a few reconnects (backoff 0.5, 1, 2, 4 s), within the worker's 20 s of patience: evaluations
        # finish meanwhile and find no database.
        time.sleep(10)
        postgres.start()
        restarted_at = timezone.now()
        wait_for(lambda: all_final(batch), 180, "the whole batch after the database restart")
        assert worker.poll() is None, "the worker died with the database"
    finally:
        stop_worker(worker)
    attempts = EvaluationAttempt.objects.filter(target_kind=Submission.EVALUATION_KIND,
                                                target_id__in=[submission.pk for submission in batch])
    assert attempts.filter(started_at__lt=stopped_at,
                           finished_at__gt=restarted_at).exists(), "no evaluation spanned the outage"
    assert_each_scored_exactly_once(batch)
    lost = attempts.filter(status=EvaluationAttempt.Status.FAILED)
    assert not lost.exists(), f"results lost to the outage: {list(lost.values_list('error', flat=True))}"
