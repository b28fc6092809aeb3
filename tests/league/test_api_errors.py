"""The API never answers with an HTML error page; the site keeps its HTML ones."""

import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.league.api_error_urls")]


@pytest.fixture
def anon(client):
    client.raise_request_exception = False
    return client


def test_unknown_api_path_is_a_json_404(anon):
    response = anon.get("/api/does-not-exist/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_unknown_page_is_an_html_404(anon):
    response = anon.get("/no-such-page/")
    assert response.status_code == 404
    assert "text/html" in response["Content-Type"]
    assert "Off track" in response.content.decode()


def test_crash_in_a_drf_view_is_a_json_500(anon):
    response = anon.get("/api/drf-crash/")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error."}


def test_crash_in_any_api_path_is_a_json_500(anon):
    response = anon.get("/api/plain-crash/")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Internal server error."}


def test_crash_in_a_page_is_an_html_500(anon):
    response = anon.get("/page-crash/")
    assert response.status_code == 500
    assert "text/html" in response["Content-Type"]


def test_drf_errors_keep_their_status_and_json_body(anon):
    response = anon.get("/api/private/", headers={"Authorization": "Token nope"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}
    assert anon.get("/api/private/").status_code == 401  # token auth first: 401 with WWW-Authenticate
