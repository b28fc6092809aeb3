"""Liveness of the services Pitlane depends on: the database, the task broker and the upload storage.

`health_report()` checks the configured ones; tests pass a connection, broker or storage that points at a
closed port to see the failure path without touching the real ones.
"""

import functools
import os
from pathlib import Path
from typing import Any

import boto3
import dramatiq
import pika
from botocore.config import Config
from django.core.files.storage import FileSystemStorage, Storage, default_storage
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


# A probe answers in seconds: a stopped or hung object store must show as down, not hold the probe for minutes.
_PROBE_CONFIG = Config(connect_timeout=2, read_timeout=3, retries={"mode": "standard", "max_attempts": 1})


@functools.cache
def _s3_probe_client(storage: Storage) -> Any:
    # One client per storage (boto3 clients are thread-safe and slow to build), with the storage's own settings.
    session = boto3.Session(aws_access_key_id=storage.access_key, aws_secret_access_key=storage.secret_key,
                            aws_session_token=storage.security_token)
    return session.client("s3", region_name=storage.region_name, use_ssl=storage.use_ssl,
                          endpoint_url=storage.endpoint_url, verify=storage.verify,
                          config=storage.client_config.merge(_PROBE_CONFIG))


def check_storage(storage: Storage | None = None) -> CheckResult:
    """Reach the upload storage: HEAD of the S3 bucket, or a writable media folder (created on first upload)."""
    storage = storage or default_storage
    try:
        if isinstance(storage, FileSystemStorage):
            folder = Path(storage.location)
            while not folder.exists():
                folder = folder.parent
            if not os.access(folder, os.W_OK | os.X_OK):
                raise PermissionError(f"{folder} is not writable")
        elif hasattr(storage, "bucket_name"):  # django-storages' S3Storage
            _s3_probe_client(storage).head_bucket(Bucket=storage.bucket_name)
        else:
            raise TypeError(f"no health check for {type(storage).__name__}")
    except Exception as error:
        return _failure(error)
    return {"ok": True}


def health_report(
    connection: BaseDatabaseWrapper | None = None,
    broker: dramatiq.Broker | None = None,
    storage: Storage | None = None,
) -> dict[str, Any]:
    """{"database": {...}, "broker": {...}, "storage": {...}, "status": "ok" | "degraded"}."""
    checks = {"database": check_database(connection), "broker": check_broker(broker), "storage": check_storage(storage)}
    return checks | {"status": "ok" if all(check["ok"] for check in checks.values()) else "degraded"}
