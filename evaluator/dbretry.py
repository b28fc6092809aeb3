"""Database calls that survive a dropped connection (server restart, failover, pg_terminate_backend).

A worker thread lives for days and a finished evaluation is expensive: a connection lost while the sandbox
ran must cost a reconnect, not the result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)
DATABASE_ERRORS = (OperationalError, InterfaceError)
T = TypeVar("T")


def with_database_retry(action: Callable[..., T], *args: Any, attempts: int = 6, **kwargs: Any) -> T:
    """``action(*args, **kwargs)``, reconnecting and retrying (with backoff) when the connection is gone.

    Only for actions that are safe to repeat after an unknown outcome: each evaluator action is one
    transaction checked against the lease token, so a retry can never record a result twice.
    """
    for attempt in range(attempts):
        try:
            return action(*args, **kwargs)
        except DATABASE_ERRORS as error:
            if attempt == attempts - 1:
                raise
            log.warning("Database unavailable during %s (%s); reconnecting",
                        getattr(action, "__name__", action), str(error).strip()[:200])
            connection.close()  # this thread's connection; the next query opens a fresh one
            time.sleep(min(0.5 * 2**attempt, 8.0))
    raise AssertionError("unreachable")
