"""The whole API against its own OpenAPI schema with schemathesis: every operation, every check, zero failures.

Runs in-process through Django's WSGI application (no server), authenticated with a real API token of a racer
who owns a model and organises a race, so the operations answer with data rather than only with errors. The
number of examples per operation is bounded to keep the run near a minute on two cores.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.specs.openapi.checks import positive_data_acceptance

from races.models import Race

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

EXAMPLES_PER_OPERATION = 15
# Well-formed by the schema yet refused by rules no OpenAPI schema can state, so a 400 is the right answer to
# "schema-valid" data here (positive_data_acceptance expects 2xx/404): an archive must be a working model, an
# invite code must exist, and a race's settings depend on each other (minimum laps <= total laps, closes after
# it opens, the settings of its race type only). Every other check still runs on these operations.
RULES_BEYOND_THE_SCHEMA = {("POST", "/api/models/"), ("POST", "/api/races/"), ("POST", "/api/races/join/"),
                           # a vehicle, hyperparameters and a reward function that work together; a model to clone
                           ("POST", "/api/training/"), ("POST", "/api/training/clone/"),
                           # an action space whose keys depend on its type; a track that exists
                           ("POST", "/api/vehicles/"), ("PUT", "/api/vehicles/{id}/"),
                           ("POST", "/api/reward-functions/validate/"),
                           # a track that exists and is driven in that direction
                           ("GET", "/api/reward-functions/racing-line/")}


@pytest.fixture
def keep_the_test_connection():
    """The real WSGI handler closes the database connection after each request, and with it the test's
    transaction; Django's own test client disconnects the same two signals for its requests."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def racer_token(keep_the_test_connection, make_racer, make_race, make_model) -> str:
    from datetime import timedelta

    from django.utils import timezone

    from races.services.seasons import season_attach_race, season_create

    racer = make_racer("Contract")
    make_model(racer, "contract-model")
    cup = make_race(name="Contract Cup")
    community = make_race(kind=Race.Kind.COMMUNITY, organiser=racer, name="Contract Community")
    # Seasons with a race each, so the season operations answer with data.
    staff = make_racer("ContractStaff")
    staff.is_staff = True
    staff.save()
    window = {"starts_at": timezone.now() - timedelta(days=2), "ends_at": timezone.now() + timedelta(days=30)}
    season_attach_race(season_create(Race.Kind.VIRTUAL_CIRCUIT, staff, name="Contract Season", **window), cup, staff)
    season_attach_race(season_create(Race.Kind.COMMUNITY, racer, name="Contract League", **window), community, racer)
    return Token.objects.create(user=racer).key


# Loaded at collection (the schema needs no database); schemathesis' fixture-based lazy loader does not run
# under pytest 9.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_keeps_the_contract(case, racer_token: str) -> None:
    excluded = [positive_data_acceptance] if (case.method, case.path) in RULES_BEYOND_THE_SCHEMA else []
    case.call_and_validate(headers={"Authorization": f"Token {racer_token}"}, excluded_checks=excluded)
