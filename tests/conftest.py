"""Project-wide test set-up: the real PostgreSQL, the real brokers, nothing fake.

`./pitlane test` sets PITLANE_DATABASE_URL to a throwaway database name per run (pytest-django creates
`test_<name>` and drops it) and PITLANE_TEST_REDIS_URL for the tests that use the real Redis broker.
Run directly (`.venv/bin/pytest tests/league -q`), the tests still use PostgreSQL on 127.0.0.1:5432,
under a per-process name so engineers sharing a machine do not drop each other's test database.

`./pitlane test` runs the files in two lanes (pytest-xdist, whole files per lane): most tests keep one core busy,
so a second lane nearly halves the run. Each lane has its own test database (pytest-django's `_gw<n>` suffix),
Redis database, media folder and throwaway services; the lapping model is trained once and shared.
"""

import collections
import fcntl
import functools
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
import dramatiq
import pytest
from _pytest.nodeid import NodeId
from django.conf import settings
from django.db import connections

_media_root: str | None = None
# What the lanes of one run share (the lapping model): made by the first process, inherited by the lanes it starts.
SHARED_DIR_VARIABLE = "PITLANE_TEST_SHARED_DIR"
_shared_dir: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _media_root, _shared_dir
    if not os.environ.get(SHARED_DIR_VARIABLE):
        _shared_dir = tempfile.mkdtemp(prefix="pitlane-test-shared-")
        os.environ[SHARED_DIR_VARIABLE] = _shared_dir
    lane = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", … in a lane; empty when run in one process
    lanes = getattr(config.option, "numprocesses", None)
    if not lane and isinstance(lanes, int) and lanes > 1:
        # Inherited by the lanes and their subprocesses: torch (and the trainer, see use_cores_for_torch) then
        # takes one core, not both; two threads on a core the other lane keeps busy trained ~5x slower.
        os.environ["OMP_NUM_THREADS"] = "1"
    if lane and os.environ.get("PITLANE_TEST_REDIS_URL"):
        os.environ["PITLANE_TEST_REDIS_URL"] = redis_url_for_lane(os.environ["PITLANE_TEST_REDIS_URL"], int(lane[2:]))
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
    for folder in (_media_root, _shared_dir):  # the shared one by its maker, after its lanes have ended
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


def redis_url_for_lane(url: str, lane: int) -> str:
    """The lane's own Redis database (1..15, next to the run's), so the lanes' brokers never share queues."""
    if lane == 0:
        return url
    parts = urlsplit(url)
    index = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(index - 1 + lane) % 15 + 1}"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under its own id, then files with the most slow tests first (stable otherwise): a lane takes whole
    files in this order, so the long files start early and the short ones fill the end of both lanes."""
    _give_each_test_its_own_id(items)
    slow_per_file: dict[Path, int] = {}
    for item in items:
        slow_per_file[item.path] = slow_per_file.get(item.path, 0) + (item.get_closest_marker("slow") is not None)
    items.sort(key=lambda item: -slow_per_file[item.path])


def _give_each_test_its_own_id(items: list[pytest.Item]) -> None:
    """The lanes hand out tests by id, so tests sharing one would silently run once (schemathesis' operations are
    all ``test_every_operation_keeps_the_contract`` without their ``[METHOD /path]``). Such a test gets the id
    pytest gives any parametrised test, from its name; an id that is still shared stops the run."""
    counts = collections.Counter(item.nodeid for item in items)
    for item in items:
        if counts[item.nodeid] > 1 and item.parent is not None:
            item._id = NodeId.parse(f"{item.parent.nodeid}::{item.name}")  # no public setter (pytest 9)
    counts = collections.Counter(item.nodeid for item in items)
    shared = sorted(nodeid for nodeid, count in counts.items() if count > 1)
    if shared:
        raise pytest.UsageError(f"these test ids are shared by several tests, which would run once: {shared}")


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, which it drops at the end: first, the connections that the tests' threads
    left open (a worker thread's own) are closed, else the drop fails ("is being accessed by other users") and the
    lane's database stays behind on the machine."""
    yield
    with django_db_blocker.unblock():
        connection = connections["default"]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                               " WHERE datname = current_database() AND pid <> pg_backend_pid()")


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
    # The lanes of a run share one: the first to ask trains it while the other waits for the file.
    folder = Path(os.environ[SHARED_DIR_VARIABLE])
    path = folder / "lapping-model.tar.gz"
    with open(folder / "lapping-model.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            partial = path.with_suffix(".partial")
            partial.write_bytes(_train_lapping_archive())
            partial.rename(path)
        return path.read_bytes()


def _train_lapping_archive() -> bytes:
    from sim.io.archive import write_model_archive
    from sim.learn.imitation import train_imitation_model
    from sim.world.builtin_tracks import build_builtin_track
    from sim.world.vehicle import get_vehicle

    vehicle = get_vehicle("original_deepracer")
    result = train_imitation_model(build_builtin_track("pitlane_oval"), vehicle, frames=3000, epochs=4)
    with tempfile.TemporaryDirectory(prefix="pitlane-lapping-") as folder:
        path = write_model_archive(Path(folder) / "model.tar.gz", vehicle, result.network.state_dict())
        return path.read_bytes()
