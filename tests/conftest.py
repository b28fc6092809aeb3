"""Project-wide test set-up: the real PostgreSQL, the real brokers, nothing fake.

`./pitlane test` sets PITLANE_DATABASE_URL to a throwaway database name per run (pytest-django creates
`test_<name>` and drops it) and PITLANE_TEST_REDIS_URL for the tests that use the real Redis broker.
Run directly (`.venv/bin/pytest tests/league -q`), the tests still use PostgreSQL on 127.0.0.1:5432,
under a per-process name so engineers sharing a machine do not drop each other's test database.
"""

import functools
import os
import shutil
import tempfile
from pathlib import Path

import dj_database_url
import dramatiq
import pytest
from django.conf import settings
from django.db import connections

_media_root: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _media_root
    if not os.environ.get("PITLANE_DATABASE_URL"):
        # In place: Django's connection handler holds this same dict. Its (unconnected) wrapper of the
        # old engine is dropped so the next access builds a PostgreSQL one.
        default = settings.DATABASES["default"]
        default["OPTIONS"] = {}  # the embedded SQLite options mean nothing to PostgreSQL
        default.update(
            dj_database_url.parse(f"postgres://postgres@127.0.0.1:5432/pitlane_{os.getpid()}", conn_max_age=0)
        )
        if hasattr(connections._connections, "default"):
            del connections["default"]
    # The driver-cloned demo entry trains for ~20 s: only the test about it asks for it.
    settings.PITLANE_DEMO_BASELINE = False
    # Hashed static names need `collectstatic` first; tests render templates without it.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # Uploaded files (and STATIC_ROOT) go to a throwaway folder, never to the developer's data/media.
    _media_root = tempfile.mkdtemp(prefix="pitlane-test-media-")
    settings.MEDIA_ROOT = _media_root
    # WhiteNoise serves STATIC_ROOT (filled by collectstatic); tests use the finders instead.
    settings.STATIC_ROOT = os.path.join(_media_root, "static")
    os.makedirs(settings.STATIC_ROOT)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _media_root:
        shutil.rmtree(_media_root, ignore_errors=True)


@pytest.fixture
def broker() -> dramatiq.Broker:
    """The configured global broker (in-memory without PITLANE_BROKER_URL), emptied before and after."""
    broker = dramatiq.get_broker()
    broker.flush_all()
    yield broker
    broker.flush_all()


@pytest.fixture
def worker(broker: dramatiq.Broker) -> dramatiq.Worker:
    """Real Dramatiq worker threads consuming the global broker's declared queues."""
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def redis_url() -> str:
    """A real Redis for broker tests (`./pitlane test` always sets PITLANE_TEST_REDIS_URL)."""
    url = os.environ.get("PITLANE_TEST_REDIS_URL", "")
    if not url:
        pytest.skip("PITLANE_TEST_REDIS_URL is not set (./pitlane test sets it to a local Redis database)")
    return url


@pytest.fixture(scope="session")
def lapping_archive() -> bytes:
    """A model that completes laps of the oval: cloned from the scripted driver, by our own code (trained once per
    run and shared by every test package: sim's imitation test races it, the evaluator and deployment tests upload
    it)."""
    return _lapping_archive()


@functools.cache
def _lapping_archive() -> bytes:
    # Cached here, not only by the fixture: a test may also call it directly, and training takes a minute of CPU.
    from sim.io.archive import write_model_archive
    from sim.learn.imitation import train_imitation_model
    from sim.world.builtin_tracks import build_builtin_track
    from sim.world.vehicle import get_vehicle

    vehicle = get_vehicle("original_deepracer")
    result = train_imitation_model(build_builtin_track("pitlane_oval"), vehicle, frames=3000, epochs=4)
    with tempfile.TemporaryDirectory(prefix="pitlane-lapping-") as folder:
        path = write_model_archive(Path(folder) / "model.tar.gz", vehicle, result.network.state_dict())
        return path.read_bytes()
