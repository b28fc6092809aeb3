"""Gunicorn hooks for `manage.py runleague`: the embedded layout runs Dramatiq workers in the web process."""

import logging

logger = logging.getLogger("league.gunicorn")

# Django alone decides whether a request came over HTTPS (PITLANE_BEHIND_PROXY sets SECURE_PROXY_SSL_HEADER).
# gunicorn would otherwise believe X-Forwarded-Proto from any client on 127.0.0.1 (its forwarded_allow_ips) and
# hand Django https, whatever PITLANE_BEHIND_PROXY says (found by tests/deployment).
secure_scheme_headers: dict[str, str] = {}
_embedded_workers: list = []


def post_worker_init(worker) -> None:
    """After the WSGI app (and so Django and the broker) is loaded in the worker process."""
    global _embedded_workers
    from league.broker import is_embedded, start_embedded_worker

    if is_embedded():
        _embedded_workers = start_embedded_worker()


def worker_exit(server, worker) -> None:
    global _embedded_workers
    if _embedded_workers:
        from league import periodic

        periodic.stop()
        for embedded in _embedded_workers:
            embedded.stop(timeout=10_000)
        _embedded_workers = []
