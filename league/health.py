"""Liveness of the two services Pitlane depends on: the database and the task broker.

`health_report()` checks the configured ones; tests pass a connection or broker that points at a
closed port to see the failure path without touching the real ones.
"""

from typing import Any

import dramatiq
import pika
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

CheckResult = dict[str, Any]


def _failure(error: Exception) -> CheckResult:
    # The first line is enough to diagnose (refused, auth, unknown host) and leaks no settings.
    lines = str(error).strip().splitlines()
    name = type(error).__name__
    return {"ok": False, "error": f"{name}: {lines[0]}" if lines else name}


def check_database(connection: BaseDatabaseWrapper | None = None) -> CheckResult:
    """Run `SELECT 1` on `connection` (default: the "default" alias)."""
    connection = connection or connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:
        return _failure(error)
    return {"ok": True}


def check_broker(broker: dramatiq.Broker | None = None) -> CheckResult:
    """Round-trip to the broker's server (Redis PING, AMQP handshake); the in-process broker is always up."""
    broker = broker or dramatiq.get_broker()
    try:
        if isinstance(broker, RedisBroker):
            broker.client.ping()
        elif isinstance(broker, RabbitmqBroker):
            # A fresh connection: the broker's own are per-thread and may belong to busy consumers.
            pika.BlockingConnection(broker.parameters).close()
        elif not isinstance(broker, StubBroker):
            raise TypeError(f"no health check for {type(broker).__name__}")
    except Exception as error:
        return _failure(error)
    return {"ok": True}


def health_report(
    connection: BaseDatabaseWrapper | None = None, broker: dramatiq.Broker | None = None
) -> dict[str, Any]:
    """{"database": {...}, "broker": {...}, "status": "ok" | "degraded"}."""
    database = check_database(connection)
    broker_result = check_broker(broker)
    status = "ok" if database["ok"] and broker_result["ok"] else "degraded"
    return {"database": database, "broker": broker_result, "status": status}
