"""The OpenAPI schema tells the truth (issue "Hardening", item 7): errors documented where they are answered,
blank names refused by the schema too, filters only on the methods that read them, race dates in a sane range."""

from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker) -> dict:
    with django_db_blocker.unblock():
        return APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


def _responses(schema: dict, path: str, method: str) -> set[str]:
    return set(schema["paths"][path][method]["responses"])


def test_error_answers_are_documented_where_operations_give_them(schema):
    assert _responses(schema, "/api/models/", "post") == {"201", "400", "401", "403", "413"}
    assert _responses(schema, "/api/models/{id}/", "delete") == {"204", "401", "403", "404"}
    assert _responses(schema, "/api/races/", "get") == {"200", "400", "404"}  # filters; a page beyond the last
    assert _responses(schema, "/api/races/{slug}/", "get") == {"200", "404"}
    assert _responses(schema, "/api/races/{slug}/", "delete") == {"204", "401", "403", "404"}
    assert _responses(schema, "/api/races/{slug}/participants/", "get") == {"200", "401", "403", "404"}
    assert _responses(schema, "/api/races/join/", "post") == {"200", "400", "401", "403"}
    assert _responses(schema, "/api/submissions/", "post") == {"201", "400", "401", "403", "404"}
    error = schema["paths"]["/api/races/{slug}/"]["get"]["responses"]["404"]["content"]["application/json"]
    assert error["schema"] == {"$ref": "#/components/schemas/ApiError"}


def test_blank_names_and_codes_are_invalid_by_the_schema(schema):
    components = schema["components"]["schemas"]
    assert components["ModelUpload"]["properties"]["name"]["minLength"] == 1
    assert components["Race"]["properties"]["name"]["minLength"] == 1
    assert components["Join"]["properties"]["code"]["minLength"] == 1
    assert components["SubmissionCreate"]["properties"]["race"]["minLength"] == 1


def test_query_filters_are_listed_only_for_the_method_that_reads_them(schema):
    def names(path: str, method: str) -> set[str]:
        return {parameter["name"] for parameter in schema["paths"][path][method].get("parameters", [])}

    assert {"phase", "kind"} <= names("/api/races/", "get")
    assert not {"phase", "kind"} & names("/api/races/", "post")
    assert "race" in names("/api/submissions/", "get")
    assert "race" not in names("/api/submissions/", "post")


def test_race_dates_are_bounded_in_the_schema_and_by_the_api(schema, make_racer, technical_track):
    pattern = schema["components"]["schemas"]["Race"]["properties"]["opens_at"]["pattern"]
    assert re.match(pattern, "2030-01-01T00:00:00Z") and not re.match(pattern, "0056-01-01T00:00:00Z")
    api = APIClient()
    api.force_authenticate(make_racer())
    race = {"name": "Far Cup", "track": technical_track.slug, "total_laps": 3, "minimum_laps": 1}
    year_56 = api.post("/api/races/", race | {"opens_at": "0056-01-01T00:00:00Z",
                                             "closes_at": "2030-01-01T00:00:00Z"}, format="json")
    assert year_56.status_code == 400
    assert year_56.json()["opens_at"] == ["Give a date between the years 2000 and 2100."]
    year_2500 = api.post("/api/races/", race | {"opens_at": "2030-01-01T00:00:00Z",
                                               "closes_at": "2500-01-01T00:00:00Z"}, format="json")
    assert year_2500.status_code == 400 and "closes_at" in year_2500.json()
    fine = api.post("/api/races/", race | {"opens_at": "2030-01-01T00:00:00Z",
                                          "closes_at": "2030-02-01T00:00:00Z"}, format="json")
    assert fine.status_code == 201, fine.content
