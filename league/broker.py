"""Dramatiq set-up for Django: which broker PITLANE_BROKER_URL names, and the embedded worker.

django_dramatiq builds the global broker from ``settings.DRAMATIQ_BROKER`` while the app registry loads
(before any ``@dramatiq.actor`` module is imported, so actors bind to it) and supplies the worker's Django
entry module and its database-connection middleware. This module keeps what is the league's own:
- `dramatiq_broker_settings(url)`: PITLANE_BROKER_URL as django_dramatiq settings (redis:// → Redis,
  amqp:// → RabbitMQ, empty → in-memory StubBroker served by worker threads inside the web process);
- `build_broker(url)`: a broker for any URL from those same settings (the health probe's tests, benchmarks);
- `PeriodicSchedulerMiddleware`: the periodic jobs (league.periodic) run in every worker process;
- `actor_modules()` and `start_embedded_worker()` for the embedded layout.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
from collections.abc import Iterator

import dramatiq
from django.apps import apps
from django.conf import settings
from django.utils.module_loading import import_string
from dramatiq.middleware import Middleware

logger = logging.getLogger(__name__)

ACTOR_MODULE = "actors"  # each app's Dramatiq actors live in <app>.actors (DRAMATIQ_AUTODISCOVER_MODULES)
BROKER_CLASSES = {
    "redis": "dramatiq.brokers.redis.RedisBroker",
    "rediss": "dramatiq.brokers.redis.RedisBroker",
    "unix": "dramatiq.brokers.redis.RedisBroker",
    "amqp": "dramatiq.brokers.rabbitmq.RabbitmqBroker",
    "amqps": "dramatiq.brokers.rabbitmq.RabbitmqBroker",
}
MIDDLEWARE = (
    # Dramatiq's defaults (a broker given a middleware list uses only that list)...
    "dramatiq.middleware.AgeLimit",
    "dramatiq.middleware.TimeLimit",
    "dramatiq.middleware.ShutdownNotifications",
    "dramatiq.middleware.Callbacks",
    "dramatiq.middleware.Pipelines",
    "dramatiq.middleware.Retries",
    # ...then Django's: worker threads live for days, and a connection the server dropped (restart, idle
    # timeout) must be replaced before the next message instead of failing it.
    "django_dramatiq.middleware.DbConnectionsMiddleware",
    "league.broker.PeriodicSchedulerMiddleware",
)


class PeriodicSchedulerMiddleware(Middleware):
    """Start this process's periodic scheduler (league.periodic) once the worker is up."""

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from league import periodic

        periodic.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from league import periodic

        periodic.stop()


def dramatiq_broker_settings(url: str) -> dict:
    """``DRAMATIQ_BROKER`` for a PITLANE_BROKER_URL value; an unknown scheme is a clear error at start-up."""
    scheme = url.split("://", 1)[0].lower() if url else ""
    if not url:
        broker, options = "dramatiq.brokers.stub.StubBroker", {}
    elif scheme in BROKER_CLASSES:
        broker, options = BROKER_CLASSES[scheme], {"url": url}
    else:
        raise ValueError(f"PITLANE_BROKER_URL {url!r}: use redis://…, amqp://… or leave it empty")
    return {"BROKER": broker, "OPTIONS": options, "MIDDLEWARE": list(MIDDLEWARE)}


def build_broker(url: str) -> dramatiq.Broker:
    """A broker for ``url`` built from the same settings django_dramatiq uses for the global one."""
    config = dramatiq_broker_settings(url)
    middleware = [import_string(path)() for path in config["MIDDLEWARE"]]
    return import_string(config["BROKER"])(middleware=middleware, **config["OPTIONS"])


def is_embedded() -> bool:
    """True when the queue lives inside the web process (no PITLANE_BROKER_URL)."""
    return not settings.PITLANE_BROKER_URL


def actor_modules() -> list[str]:
    """`<app>.actors` of every installed app that has such a module, in INSTALLED_APPS order."""
    names = []
    for config in apps.get_app_configs():
        name = f"{config.name}.{ACTOR_MODULE}"
        if importlib.util.find_spec(name) is not None:
            names.append(name)
    return names


@contextlib.contextmanager
def _quiet(logger_name: str, words: str) -> Iterator[None]:
    """Drop the named logger's records containing ``words`` while the block runs."""
    def keep(record: logging.LogRecord) -> bool:
        return words not in record.getMessage()

    target = logging.getLogger(logger_name)
    target.addFilter(keep)
    try:
        yield
    finally:
        target.removeFilter(keep)


def start_embedded_worker() -> list[dramatiq.Worker]:
    """Start worker threads for the in-process broker (embedded layout) and the periodic scheduler.

    Evaluations and the long jobs of other queues (training) get threads of their own: with one pool, as many
    trainings as threads would hold every thread for hours and no evaluation would run. Actor modules are imported
    first so a broken one fails the boot, not the first evaluation.
    """
    from evaluator.engine import DEFAULT_QUEUE, registered_queues  # the evaluator's queues; league → evaluator

    broker = dramatiq.get_broker()
    for name in actor_modules():
        importlib.import_module(name)
    queues = {queue for queue in broker.get_declared_queues() if not queue.endswith(".DQ")}
    long_jobs = set(registered_queues()) - {DEFAULT_QUEUE}  # training
    pools = [(queues - long_jobs, settings.PITLANE_EMBEDDED_WORKER_THREADS)]
    if long_jobs and settings.PITLANE_EMBEDDED_TRAINING_THREADS:
        pools.append((long_jobs, settings.PITLANE_EMBEDDED_TRAINING_THREADS))
    workers = []
    for pool_queues, threads in pools:
        # Delay queues follow their queue; each worker emits after_worker_boot (the scheduler starts once).
        worker = dramatiq.Worker(broker, queues=pool_queues | {f"{q}.DQ" for q in pool_queues},
                                 worker_threads=threads)
        # Each Worker adds a listener for queues declared later; Dramatiq warns of the second as a duplicate, but it
        # only adds consumers for its own Worker's queues.
        with _quiet(f"dramatiq.broker.{type(broker).__name__}", "middleware of the same type twice"):
            worker.start()
        workers.append(worker)
        logger.info("embedded dramatiq worker started: %d thread(s) on queues %s", threads, sorted(pool_queues))
    return workers
