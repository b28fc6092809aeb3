"""The evaluator's tests use the league factories of tests/races, and Redis and PostgreSQL servers of their own."""

import pytest

from tests.races.conftest import (  # noqa: F401
    archive_bytes,
    make_model,
    make_race,
    make_racer,
    oval_track,
    technical_track,
)


@pytest.fixture
def redis_server(tmp_path):
    """A throwaway redis-server (free port, no persistence) that a test may kill and restart."""
    from tests.evaluator.processes import RedisServer

    server = RedisServer(tmp_path)
    if server.binary is None:
        pytest.skip("redis-server is not installed")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def postgres_server():
    """A throwaway PostgreSQL cluster (free port, trust auth, fsync off) that a test may stop and restart."""
    from tests.evaluator.processes import PostgresServer

    server = PostgresServer()
    if server.unavailable:
        pytest.skip(server.unavailable)
    try:
        server.create()
        yield server
    finally:
        server.destroy()
