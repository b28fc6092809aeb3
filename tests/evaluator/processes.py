"""Real processes for the evaluator's failure tests: Dramatiq workers, a throwaway Redis and PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
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
    from evaluator.engine import registered_queues
    from league.broker import build_broker

    previous = dramatiq.get_broker()
    broker = build_broker(url)
    dramatiq.set_broker(broker)
    queue_actors = [actors.actor_for(queue) for queue in registered_queues()]  # evaluate_next and the training one
    for actor in queue_actors:
        actor.broker = broker
        broker.declare_actor(actor)
    try:
        yield broker
    finally:
        for actor in queue_actors:
            actor.broker = previous
        dramatiq.set_broker(previous)


@contextlib.contextmanager
def database_at(url: str) -> Iterator[None]:
    """This test process's ORM uses the database at ``url``, and so do the workers it starts meanwhile
    (``worker_environment`` passes on the current database)."""
    import dj_database_url
    from django.contrib.contenttypes.models import ContentType

    target = dj_database_url.parse(url)
    saved = dict(connection.settings_dict)
    connection.close()
    # In place: every thread's connection to "default" is built from this same dict.
    connection.settings_dict.update({key: target[key] for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT")})
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
        ContentType.objects.clear_cache()  # its ids were the other database's


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


class PostgresServer:
    """A PostgreSQL cluster of the test's own (initdb + pg_ctl, newest installed version) on a free port.

    Trust authentication and fsync off: it lives for one test. PostgreSQL refuses to run as root, so as root
    every server command runs as the ``postgres`` user, which owns the cluster's folder.
    ``unavailable`` says why the cluster cannot be made here (then the test skips).
    """

    database = "pitlane_chaos"

    def __init__(self) -> None:
        self.bindir = self._newest_bindir()
        self.run_as = None
        if os.geteuid() == 0:
            with contextlib.suppress(KeyError):
                self.run_as = pwd.getpwnam("postgres")
        self.unavailable = ""
        if self.bindir is None:
            self.unavailable = "initdb is not installed (no /usr/lib/postgresql/<version>/bin)"
        elif os.geteuid() == 0 and (self.run_as is None or not shutil.which("runuser")):
            self.unavailable = "running as root, and no postgres user (or runuser) to run PostgreSQL as"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.workdir: Path | None = None

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.database}"

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    def create(self) -> None:
        """initdb, start, and create the (empty) database."""
        # Not under pytest's tmp_path: that folder is private to root, and the server may run as postgres.
        self.workdir = Path(tempfile.mkdtemp(prefix="pitlane-pg-"))
        if self.run_as is not None:
            os.chown(self.workdir, self.run_as.pw_uid, self.run_as.pw_gid)
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "--auth=trust", "--no-sync",
                  "--encoding=UTF8", "--locale=C")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", self.database)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.workdir} -c fsync=off " \
                  "-c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "start", "-w", "-t", "30", "-D", str(self.datadir), "-l", str(self.workdir / "log"),
                  "-o", options)

    def stop(self, mode: str = "fast") -> None:
        """``fast`` disconnects every client and rolls their transactions back; ``immediate`` is a crash."""
        self._run("pg_ctl", "stop", "-w", "-t", "30", "-D", str(self.datadir), "-m", mode)

    def destroy(self) -> None:
        if self.workdir is None:
            return
        if (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log(self) -> str:
        path = self.workdir / "log" if self.workdir else None
        return path.read_text(errors="replace")[-4000:] if path and path.exists() else ""

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as.pw_name, "--", *command]
        done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/", timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr.decode(errors='replace')}"
                               f"\n{self.log()}")

    @staticmethod
    def _newest_bindir() -> Path | None:
        found = [path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
        if not found:
            return None
        return max(found, key=lambda bindir: [int(part) for part in re.findall(r"\d+", bindir.parent.name)])
