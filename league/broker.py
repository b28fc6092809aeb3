"""Dramatiq set-up for Django: the broker named by settings, actor discovery and the embedded worker.

A thin replacement for django_dramatiq (which does not support Django 5.2 / Dramatiq 2):
- `build_broker(url)` maps PITLANE_BROKER_URL to a broker (redis:// → Redis, amqp:// → RabbitMQ,
  empty → in-memory StubBroker served by worker threads inside the web process);
- `install_broker()` makes it Dramatiq's global broker; LeagueConfig.ready() calls it, so it happens
  before any `@dramatiq.actor` module is imported (actors bind to the global broker when declared);
- `actor_modules()` lists `<app>.actors` for every installed app that has one.
"""

import importlib
import importlib.util
import logging

import dramatiq
from django import db
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Middleware

logger = logging.getLogger(__name__)


class DbConnectionsMiddleware(Middleware):
    """Close stale Django DB connections around every message, like django_dramatiq's middleware.

    Worker threads live for days; without this a connection dropped by the server (restart, idle
    timeout) would fail every later message handled by that thread.
    """

    def _close_old_connections(self, *args, **kwargs) -> None:
        db.close_old_connections()

    before_process_message = _close_old_connections
    after_process_message = _close_old_connections

    def _close_all_connections(self, *args, **kwargs) -> None:
        db.connections.close_all()

    before_consumer_thread_shutdown = _close_all_connections
    before_worker_thread_shutdown = _close_all_connections
    before_worker_shutdown = _close_all_connections


class PeriodicSchedulerMiddleware(Middleware):
    """Start this process's periodic scheduler (league.periodic) once the worker is up."""

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from league import periodic

        periodic.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from league import periodic

        periodic.stop()


def build_broker(url: str) -> dramatiq.Broker:
    """The broker for a PITLANE_BROKER_URL value, with the Django middleware installed."""
    scheme = url.split("://", 1)[0].lower() if url else ""
    if scheme in {"redis", "rediss", "unix"}:
        broker: dramatiq.Broker = RedisBroker(url=url)
    elif scheme in {"amqp", "amqps"}:
        broker = RabbitmqBroker(url=url)
    elif not url:
        broker = StubBroker()
    else:
        raise ValueError(f"PITLANE_BROKER_URL {url!r}: use redis://…, amqp://… or leave it empty")
    broker.add_middleware(DbConnectionsMiddleware())
    broker.add_middleware(PeriodicSchedulerMiddleware())
    return broker


def is_embedded() -> bool:
    """True when the queue lives inside the web process (no PITLANE_BROKER_URL)."""
    return not settings.PITLANE_BROKER_URL


_installed: dramatiq.Broker | None = None


def install_broker() -> dramatiq.Broker:
    """Build the broker from settings and make it Dramatiq's global broker."""
    global _installed
    previous = dramatiq.broker.global_broker
    if previous is not None and previous is not _installed and previous.actors:
        # Those actors were bound to Dramatiq's own default broker and would never reach ours.
        raise ImproperlyConfigured(
            f"actors {sorted(previous.actors)} were declared before the league app configured the broker: "
            "import actor modules from services or views, never from models.py or app modules"
        )
    broker = _installed = build_broker(settings.PITLANE_BROKER_URL)
    dramatiq.set_broker(broker)
    return broker


def actor_modules() -> list[str]:
    """`<app>.actors` of every installed app that has such a module, in INSTALLED_APPS order."""
    names = []
    for config in apps.get_app_configs():
        name = f"{config.name}.actors"
        if importlib.util.find_spec(name) is not None:
            names.append(name)
    return names


def import_actors() -> list[str]:
    """Import every actor module so its actors (and their queues) are declared on the broker."""
    names = actor_modules()
    for name in names:
        importlib.import_module(name)
    return names


def start_embedded_worker(threads: int | None = None) -> dramatiq.Worker:
    """Start worker threads for the in-process broker (embedded layout) and the periodic scheduler.

    Actor modules are imported first so a broken one fails the boot, not the first evaluation.
    """
    broker = dramatiq.get_broker()
    import_actors()
    worker = dramatiq.Worker(broker, worker_threads=threads or settings.PITLANE_EMBEDDED_WORKER_THREADS)
    worker.start()  # emits after_worker_boot → PeriodicSchedulerMiddleware starts the scheduler
    logger.info("embedded dramatiq worker started on queues %s", sorted(broker.get_declared_queues()))
    return worker
