import threading

import pytest

from league import periodic


@pytest.fixture
def clean_registry():
    """Only the test's own jobs while it runs: the apps' jobs (due at their first tick, and needing the database)
    come back afterwards, each as it was."""
    apps_jobs = periodic.jobs()
    for job in apps_jobs:
        periodic.unregister(job.name)
    yield
    for job in periodic.jobs():
        periodic.unregister(job.name)
    for job in apps_jobs:
        periodic.register(job.func, every_seconds=job.every_seconds, name=job.name).next_run = job.next_run
    periodic.stop()


@pytest.mark.django_db  # run_pending closes stale database connections after each job
def test_a_job_runs_at_the_first_tick_then_every_interval(clean_registry):
    calls = []
    periodic.register(lambda: calls.append(1), every_seconds=10, name="t.interval")
    assert "t.interval" in periodic.run_pending(now=1000.0)
    assert "t.interval" not in periodic.run_pending(now=1009.9)
    assert "t.interval" in periodic.run_pending(now=1010.0)
    assert len(calls) == 2


@pytest.mark.django_db  # run_pending closes stale database connections after each job
def test_a_failing_job_does_not_stop_the_others(clean_registry, caplog):
    calls = []

    def broken():
        raise RuntimeError("boom")

    periodic.register(broken, every_seconds=5, name="t.broken")
    periodic.register(lambda: calls.append(1), every_seconds=5, name="t.fine")
    ran = periodic.run_pending(now=50.0)
    assert {"t.broken", "t.fine"} <= set(ran)
    assert calls == [1]
    assert "periodic job t.broken failed" in caplog.text


def test_registering_a_name_again_replaces_the_job(clean_registry):
    periodic.register(lambda: None, every_seconds=5, name="t.same")
    periodic.register(lambda: None, every_seconds=7, name="t.same")
    assert [job.every_seconds for job in periodic.jobs() if job.name == "t.same"] == [7.0]


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match="every_seconds must be positive"):
        periodic.register(lambda: None, every_seconds=0)


def test_the_scheduler_thread_runs_jobs_and_starts_once_per_process(clean_registry):
    ran = threading.Event()
    periodic.register(ran.set, every_seconds=60, name="t.thread")
    assert periodic.start(tick_seconds=0.02) is True
    assert periodic.start(tick_seconds=0.02) is False
    assert ran.wait(5)
    periodic.stop()
    assert not periodic.is_running()


def test_a_dramatiq_worker_starts_the_scheduler(clean_registry, worker):
    assert periodic.is_running()
