"""A throwaway league for benchmarks: its own PostgreSQL database and Redis db, real ``rundramatiq`` workers.

``throwaway_league()`` creates the database, points this process's Django at it (migrated, broker flushed) and
drops it at the end, with every worker started through it stopped first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POSTGRES = "postgres://postgres@127.0.0.1:5432"
OUT = REPO / "benchmarks" / "out"


class League:
    """The running throwaway league: its environment (for child processes) and its workers."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.workers: list[subprocess.Popen] = []

    def start_worker(self, name: str, queues: tuple[str, ...] = (), processes: int = 1, threads: int = 1,
                     preexec_fn: Callable[[], None] | None = None) -> subprocess.Popen:
        """``manage.py rundramatiq`` serving ``queues`` (all if empty), logging to ``benchmarks/out/<name>.log``."""
        log = OUT / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "manage.py", "rundramatiq", "--processes", str(processes), "--threads", str(threads)]
        if queues:
            command += ["--queues", *queues]
        worker = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                                  start_new_session=True, preexec_fn=preexec_fn)
        self.workers.append(worker)
        return worker

    def stop_workers(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.pid, signal.SIGTERM)
        for worker in self.workers:
            worker.wait(60)
        self.workers = []


@contextlib.contextmanager
def throwaway_league(redis_url: str, extra_env: dict[str, str] | None = None) -> Iterator[League]:
    import psycopg

    database = f"pitlane_bench_{os.getpid()}"
    media = tempfile.mkdtemp(prefix="pitlane-bench-media-")
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    env = os.environ | {
        "PITLANE_DATABASE_URL": f"{POSTGRES}/{database}",
        "PITLANE_BROKER_URL": redis_url,
        "PITLANE_MEDIA_ROOT": media,
        "PITLANE_DEMO_BASELINE": "false",
        "PITLANE_LOG_LEVEL": "WARNING",
    } | (extra_env or {})
    os.environ.update(env)
    league = League(env)
    try:
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "league.settings")
        sys.path.insert(0, str(REPO))
        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        import dramatiq

        dramatiq.get_broker().flush_all()
        yield league
    finally:
        league.stop_workers()
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        shutil.rmtree(media, ignore_errors=True)


def wait_until(predicate: Callable[[], bool], timeout: float, what: str = "the league") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not finish within {timeout:.0f} s")
        time.sleep(0.2)


def lapping_archive(track_slug: str, vehicle_name: str = "original_deepracer") -> bytes:
    """A model that laps ``track_slug`` (the racing-line driver imitated; cached under benchmarks/out/)."""
    cached = OUT / f"driver-clone-{track_slug}-{vehicle_name}.tar.gz"
    if not cached.exists():
        from sim.io.archive import write_model_archive
        from sim.learn.imitation import clone_racing_line_driver
        from sim.world.track_catalog import get_track
        from sim.world.vehicle import get_vehicle

        OUT.mkdir(parents=True, exist_ok=True)
        track, vehicle = get_track(track_slug), get_vehicle(vehicle_name)
        model = clone_racing_line_driver(track, vehicle)
        write_model_archive(cached, vehicle, model.network.state_dict())
    return cached.read_bytes()
