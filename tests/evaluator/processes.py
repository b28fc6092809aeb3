"""Real processes for the evaluator's failure tests: Dramatiq workers and a throwaway Redis server."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dramatiq
from django.db import connection

REPO = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def current_database_url() -> str:
    """The database pytest-django created for this run, so a worker subprocess uses the same one."""
    s = connection.settings_dict
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def worker_environment(broker_url: str, media_root: str, **extra: str) -> dict[str, str]:
    return os.environ | {
        "DJANGO_SETTINGS_MODULE": "tests.evaluator.worker_settings",
        "PITLANE_DATABASE_URL": current_database_url(),
        "PITLANE_BROKER_URL": broker_url,
        "PITLANE_MEDIA_ROOT": str(media_root),
        "PITLANE_DEMO_BASELINE": "false",
        "PITLANE_EVAL_STALE_PENDING_S": "2",
        "PYTHONPATH": str(REPO),
    } | extra


@contextlib.contextmanager
def broker_at(url: str) -> Iterator[dramatiq.Broker]:
    """This test process sends its evaluation nudges to the broker at ``url``, like the web process would."""
    from evaluator import actors
    from league.broker import build_broker

    previous = dramatiq.get_broker()
    broker = build_broker(url)
    dramatiq.set_broker(broker)
    actors.evaluate_next.broker = broker
    broker.declare_actor(actors.evaluate_next)
    try:
        yield broker
    finally:
        actors.evaluate_next.broker = previous
        dramatiq.set_broker(previous)


def start_worker(env: dict[str, str], log: Path, threads: int = 1) -> subprocess.Popen:
    """``manage.py rundramatiq`` in its own process group (so a test can kill -9 all of it)."""
    return subprocess.Popen(
        [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", str(threads)],
        cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def stop_worker(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


class RedisServer:
    """A redis-server of the test's own on a free port, without persistence: a restart loses every message."""

    def __init__(self, workdir: Path) -> None:
        self.binary = shutil.which("redis-server")
        self.workdir = workdir
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, 10, "redis-server to accept connections")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False
