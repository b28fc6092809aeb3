"""A tiny interval scheduler: runs registered callables every N seconds on a daemon thread.

Apps register jobs in their AppConfig.ready():

    from league import periodic
    periodic.register(reap_expired_attempts, every_seconds=30)

One scheduler runs in every worker process (started by the broker middleware after the worker boots)
and in the embedded web server, so on a multi-machine deployment the same job runs on many machines:
registered jobs must be idempotent and atomic in the database (e.g. select_for_update(skip_locked)).
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django import db

logger = logging.getLogger(__name__)


@dataclass
class Job:
    name: str
    func: Callable[[], object]
    every_seconds: float
    next_run: float = 0.0  # monotonic time; 0 = run at the first tick


_jobs: dict[str, Job] = {}
_lock = threading.Lock()
_thread: threading.Thread | None = None
_stop = threading.Event()


def register(func: Callable[[], object], *, every_seconds: float, name: str | None = None) -> Job:
    """Run `func()` every `every_seconds` seconds in each scheduler. Registering a name again replaces it."""
    if every_seconds <= 0:
        raise ValueError(f"every_seconds must be positive, got {every_seconds!r}")
    name = name or f"{func.__module__}.{func.__qualname__}"
    job = Job(name=name, func=func, every_seconds=float(every_seconds))
    with _lock:
        _jobs[name] = job
    return job


def unregister(name: str) -> None:
    with _lock:
        _jobs.pop(name, None)


def jobs() -> list[Job]:
    with _lock:
        return list(_jobs.values())


def run_pending(now: float | None = None) -> list[str]:
    """Run every job that is due at `now` (monotonic seconds); returns the names that ran.

    A failing job is logged and retried at its next interval; it never stops the others.
    """
    now = time.monotonic() if now is None else now
    ran = []
    for job in jobs():
        if job.next_run > now:
            continue
        job.next_run = now + job.every_seconds
        try:
            job.func()
        except Exception:
            logger.exception("periodic job %s failed", job.name)
        finally:
            # The scheduler thread is long-lived: never keep a broken or idle connection between ticks.
            db.close_old_connections()
        ran.append(job.name)
    return ran


def _loop(tick_seconds: float) -> None:
    while not _stop.wait(tick_seconds):
        run_pending()
    db.connections.close_all()


def start(tick_seconds: float = 1.0) -> bool:
    """Start this process's scheduler thread; False if one is already running here."""
    global _thread
    with _lock:
        if _thread is not None and _thread.is_alive():
            return False
        _stop.clear()
        _thread = threading.Thread(target=_loop, args=(tick_seconds,), name="pitlane-periodic", daemon=True)
        _thread.start()
    logger.info("periodic scheduler started with jobs %s", [job.name for job in jobs()])
    return True


def stop(timeout: float = 5.0) -> None:
    """Stop the scheduler thread (waits for a job in progress, up to `timeout` seconds)."""
    global _thread
    _stop.set()
    thread, _thread = _thread, None
    if thread is not None:
        thread.join(timeout)


def is_running() -> bool:
    return _thread is not None and _thread.is_alive()
