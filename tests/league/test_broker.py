import io
import os
import threading
import uuid

import dramatiq
import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django_dramatiq.middleware import DbConnectionsMiddleware
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from league.broker import PeriodicSchedulerMiddleware, actor_modules, build_broker
from tests.league.manage_process import manage_py


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("redis://127.0.0.1:6379/0", RedisBroker),
        ("amqp://guest:guest@127.0.0.1:5672/", RabbitmqBroker),
        ("", StubBroker),
    ],
)
def test_broker_url_selects_the_broker_with_django_middleware(url, kind):
    broker = build_broker(url)
    assert type(broker) is kind
    middleware = {type(m) for m in broker.middleware}
    assert {DbConnectionsMiddleware, PeriodicSchedulerMiddleware} <= middleware


def test_unknown_broker_scheme_is_a_clear_error():
    with pytest.raises(ValueError, match=r"use redis://…, amqp://… or leave it empty"):
        build_broker("kafka://localhost")


def test_the_configured_broker_is_installed_before_actors_are_declared():
    from evaluator.actors import evaluate_next

    # Without PITLANE_BROKER_URL the tests run the embedded (in-memory) layout.
    broker = dramatiq.get_broker()
    assert isinstance(broker, StubBroker)
    assert {DbConnectionsMiddleware, PeriodicSchedulerMiddleware} <= {type(m) for m in broker.middleware}
    assert evaluate_next.broker is broker


def test_actor_modules_are_the_installed_apps_that_have_one():
    names = actor_modules()
    assert all(name.endswith(".actors") for name in names)
    assert "league.actors" not in names  # league declares no actors
    assert set(names) <= {"races.actors", "evaluator.actors"}


@pytest.mark.django_db(transaction=True)
def test_redis_broker_round_trips_a_message_through_a_real_worker(redis_url):
    """Enqueue on real Redis; a real Worker thread runs the actor, which reads the real database."""
    broker = build_broker(redis_url)
    queue = f"pitlane-test-{uuid.uuid4().hex[:12]}"
    seen: list[tuple[str, int]] = []
    done = threading.Event()

    @dramatiq.actor(broker=broker, queue_name=queue, max_retries=0)
    def count_users(tag: str) -> None:
        seen.append((tag, User.objects.filter(username__startswith="rt-").count()))
        done.set()

    User.objects.create_user("rt-1")
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        count_users.send("hello")
        assert done.wait(15), "the worker did not process the message within 15 s"
    finally:
        worker.stop()
        broker.flush(queue)
        broker.close()
    assert seen == [("hello", 1)]


def test_rundramatiq_refuses_the_embedded_broker(settings):
    settings.PITLANE_BROKER_URL = ""
    with pytest.raises(CommandError, match="embedded broker"):
        call_command("rundramatiq")


def test_rundramatiq_runs_the_dramatiq_cli_on_the_django_entry_and_actor_modules(settings, monkeypatch):
    settings.PITLANE_BROKER_URL = "redis://127.0.0.1:6379/0"
    executed: list[list[str]] = []
    monkeypatch.setattr(os, "execvp", lambda path, argv: executed.append(argv))
    call_command("rundramatiq", "--processes", "3", "--threads", "4", stdout=io.StringIO())
    [command] = executed
    assert command[0] == "dramatiq"
    assert "django_dramatiq.setup" in command
    assert set(actor_modules()) <= set(command)
    assert command[command.index("--processes") + 1] == "3"
    assert command[command.index("--threads") + 1] == "4"
    assert command[command.index("--path") + 1] == str(settings.BASE_DIR)


def test_rundramatiq_defaults_to_two_threads_per_process(settings, monkeypatch):
    settings.PITLANE_BROKER_URL = "redis://127.0.0.1:6379/0"
    executed: list[list[str]] = []
    monkeypatch.setattr(os, "execvp", lambda path, argv: executed.append(argv))
    monkeypatch.setenv("dramatiq_queue_prefetch", "")  # restored (unset) after the test, whatever the command sets
    monkeypatch.delenv("dramatiq_queue_prefetch")
    call_command("rundramatiq", stdout=io.StringIO())
    assert executed[0][executed[0].index("--threads") + 1] == "2"
    # No more messages fetched than threads: a nudge never waits in a process whose threads are all busy.
    assert os.environ["dramatiq_queue_prefetch"] == "2"  # noqa: SIM112 (Dramatiq reads this lower-case name)


def test_rundramatiq_worker_boots_against_real_redis(redis_url, tmp_path):
    env = {**os.environ, "PITLANE_BROKER_URL": redis_url, "PITLANE_DATA_DIR": str(tmp_path)}
    log = tmp_path / "worker.log"
    with manage_py(["rundramatiq", "--processes", "1", "--threads", "1"], env, log, ready="is ready for action"):
        pass
    assert "periodic scheduler started" in log.read_text()


@pytest.mark.django_db(transaction=True)
def test_a_worker_thread_recovers_when_its_database_connection_is_dropped():
    """DbConnectionsMiddleware: a connection killed between two messages (database restart, idle
    timeout) is replaced before the next message instead of failing it."""
    from django.db import connection

    # A broker of its own (with the league's middleware): workers other tests left on the global
    # in-memory broker would subscribe to this test's queue too and could take its message.
    broker = build_broker("")

    outcomes: list[object] = []

    @dramatiq.actor(broker=broker, queue_name=f"pitlane-test-{uuid.uuid4().hex[:12]}", max_retries=0)
    def backend_pid() -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                outcomes.append(cursor.fetchone()[0])
        except Exception as error:
            outcomes.append(error)

    def run_one() -> object:
        backend_pid.send()
        broker.join(backend_pid.queue_name, timeout=10_000)
        worker.join()
        return outcomes[-1]

    # One thread (one connection), consuming only this test's queue: other apps' actors (the evaluator's
    # nudges) must not occupy the thread.
    worker = dramatiq.Worker(broker, queues={backend_pid.queue_name}, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        first = run_one()
        assert isinstance(first, int), first
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [first])
        second = run_one()
    finally:
        worker.stop()
    assert isinstance(second, int), f"the second message failed: {second!r}"
    assert second != first


def test_the_admin_has_no_empty_dramatiq_task_log():
    """django_dramatiq's Task admin stays empty without its AdminMiddleware; the evaluator's attempts are the log."""
    from django.contrib import admin
    from django_dramatiq.models import Task

    assert not admin.site.is_registered(Task)


def test_the_embedded_layout_keeps_evaluation_threads_no_training_can_take(settings):
    """One pool for every queue would let as many trainings as threads hold all of them for hours."""
    from league import periodic
    from league.broker import start_embedded_worker

    settings.PITLANE_EMBEDDED_WORKER_THREADS, settings.PITLANE_EMBEDDED_TRAINING_THREADS = 2, 1
    workers = start_embedded_worker()
    try:
        evaluations, training = workers
        assert "evaluations" in evaluations.consumer_whitelist and evaluations.worker_threads == 2
        assert not {"training", "training.DQ"} & evaluations.consumer_whitelist
        assert training.consumer_whitelist == {"training", "training.DQ"} and training.worker_threads == 1
        assert set(training.consumers) == {"training", "training.DQ"}  # consuming only its queue
    finally:
        for worker in workers:
            worker.stop()
        periodic.stop()
    settings.PITLANE_EMBEDDED_TRAINING_THREADS = 0  # this server trains nothing (a training worker elsewhere may)
    workers = start_embedded_worker()
    try:
        assert len(workers) == 1 and "training" not in workers[0].consumer_whitelist
    finally:
        for worker in workers:
            worker.stop()
        periodic.stop()
