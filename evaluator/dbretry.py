"""Database calls that survive a dropped connection (server restart, failover, pg_terminate_backend).

A worker thread lives for days and a finished evaluation is expensive: a connection lost while the sandbox
ran, or a database server restarting when the result is ready, must cost a wait and a reconnect, not the result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)
DATABASE_ERRORS = (OperationalError, InterfaceError)
DEFAULT_PATIENCE_S = 20.0
MAX_BACKOFF_S = 5.0
T = TypeVar("T")


def with_database_retry(action: Callable[..., T], *args: Any, patience_s: float = DEFAULT_PATIENCE_S,
                        **kwargs: Any) -> T:
    """``action(*args, **kwargs)``, reconnecting and retrying (with backoff) while the database is unreachable.

    Gives up (re-raises) once the database has been unreachable for ``patience_s`` seconds; the first failure is
    always retried, since a stale connection is all it usually is. Only for actions that are safe to repeat
    after an unknown outcome: each evaluator action is one transaction checked against the lease token, so a
    retry can never record a result twice.
    """
    deadline: float | None = None
    delay = 0.5
    while True:
        try:
            return action(*args, **kwargs)
        except DATABASE_ERRORS as error:
            now = time.monotonic()
            if deadline is None:
                deadline = now + patience_s
            elif now >= deadline:
                raise
            log.warning("Database unavailable during %s (%s); reconnecting",
                        getattr(action, "__name__", action), str(error).strip()[:200])
            connection.close()  # this thread's connection; the next query opens a fresh one
            time.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)
