import copy

import dramatiq
import pytest
from django.db import connections
from django.urls import reverse

from league.broker import build_broker
from league.health import check_broker, check_database, health_report

pytestmark = pytest.mark.django_db


def closed_port_connection():
    """A second connection to the same kind of database, on a port where nothing listens."""
    default = connections["default"]
    settings_dict = copy.deepcopy(default.settings_dict)
    settings_dict.update(HOST="127.0.0.1", PORT="9")
    return type(default)(settings_dict, alias="health_probe_down")


def test_all_up_with_real_postgres_and_real_redis(redis_url):
    report = health_report(connection=connections["default"], broker=build_broker(redis_url))
    assert report == {"database": {"ok": True}, "broker": {"ok": True}, "storage": {"ok": True}, "status": "ok"}


def test_broker_down_is_degraded_with_the_error():
    report = health_report(broker=build_broker("redis://127.0.0.1:9/0"))
    assert report["status"] == "degraded"
    assert report["database"] == {"ok": True}
    assert report["broker"]["ok"] is False
    assert "ConnectionError" in report["broker"]["error"]


def test_rabbitmq_broker_down_is_reported():
    result = check_broker(build_broker("amqp://guest:guest@127.0.0.1:9/"))
    assert result["ok"] is False
    assert result["error"]


def test_database_down_is_degraded_with_the_error():
    down = closed_port_connection()
    try:
        report = health_report(connection=down, broker=build_broker(""))
    finally:
        down.close()
    assert report["status"] == "degraded"
    assert report["broker"] == {"ok": True}
    assert report["database"]["ok"] is False
    assert "OperationalError" in report["database"]["error"]
    # The test database itself is untouched.
    assert check_database() == {"ok": True}


def test_healthz_is_200_json_when_everything_is_up(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_healthz_is_503_when_the_broker_is_down(client):
    configured = dramatiq.get_broker()
    dramatiq.set_broker(build_broker("redis://127.0.0.1:9/0"))
    try:
        response = client.get(reverse("healthz"))
    finally:
        dramatiq.set_broker(configured)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"] == {"ok": True}
    assert body["broker"]["ok"] is False
