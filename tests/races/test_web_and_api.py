"""Web pages and the REST API: private races are invisible on every route; errors are clear JSON, never 500."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from evaluator.contract import RaceResult
from races.models import Race
from races.services import submission_create, submission_mark_running, submission_record_result

pytestmark = pytest.mark.django_db(transaction=True)

LAP = {"trial": 1, "elapsed_time_in_milliseconds": 9500, "completion_percentage": 100.0, "off_track_count": 1,
       "crash_count": 0, "immobilized_count": 0, "reversed_count": 0, "reset_count": 1,
       "episode_status": "Lap complete"}


@pytest.fixture
def private_world(make_racer, make_race, make_model):
    organiser, member, stranger = make_racer("Organiser"), make_racer("Member"), make_racer("Stranger")
    race = make_race(kind=Race.Kind.COMMUNITY, organiser=organiser, name="Secret Cup")
    from races.services import race_join

    race_join(race.invite_code, member)
    submission = submission_create(member, race, make_model(member))
    attempt = submission.attempts.get()
    submission_mark_running(submission, attempt)
    submission_record_result(submission, attempt, RaceResult(
        laps=[LAP], duration_s=1.0, simtrace_csv="",
        trace={"t": [0.0, 0.1], "x": [0.0, 0.1], "y": [0.0, 0.0], "yaw": [0.0, 0.0], "speed": [1.0, 1.0],
               "status": ["in_progress", "lap_complete"]},
    ))
    return {"race": race, "organiser": organiser, "member": member, "stranger": stranger, "submission": submission}


def private_routes(world) -> list[tuple[str, str]]:
    slug, pk = world["race"].slug, world["submission"].pk
    return [
        ("get", f"/races/{slug}/"),
        ("get", f"/races/{slug}/leaderboard.json"),
        ("get", f"/races/{slug}/leaderboard.csv"),
        ("get", f"/races/{slug}/track.png"),
        ("get", f"/races/{slug}/manage/"),
        ("post", f"/races/{slug}/submit/"),
        ("post", f"/races/{slug}/manage/reset-code/"),
        ("post", f"/races/{slug}/manage/close/"),
        ("post", f"/races/{slug}/manage/delete/"),
        ("post", f"/races/{slug}/manage/remove/"),
        ("get", f"/submissions/{pk}/simtrace.csv"),
        ("get", f"/submissions/{pk}/"),
        ("get", f"/submissions/{pk}/status.json"),
        ("get", f"/submissions/{pk}/trajectory.png"),
        ("get", f"/api/races/{slug}/"),
        ("delete", f"/api/races/{slug}/"),
        ("get", f"/api/races/{slug}/leaderboard/"),
        ("get", f"/api/races/{slug}/leaderboard.csv"),
        ("post", f"/api/races/{slug}/reset-code/"),
        ("post", f"/api/races/{slug}/close/"),
        ("get", f"/api/races/{slug}/participants/"),
        ("delete", f"/api/races/{slug}/participants/1/"),
        ("get", f"/api/submissions/{pk}/"),
    ]


def test_a_private_race_is_a_404_on_every_route_for_strangers(private_world, client):
    client.force_login(private_world["stranger"])
    for method, url in private_routes(private_world):
        response = getattr(client, method)(url)
        assert response.status_code == 404, (method, url)
        assert b"Secret Cup" not in response.content, url
    assert Race.objects.filter(pk=private_world["race"].pk, closed_early_at__isnull=True).exists()
    assert b"Secret Cup" not in client.get("/races/community/").content
    assert "secret-cup" not in client.get("/api/races/").content.decode()


def test_anonymous_visitors_get_exactly_what_a_nonexistent_race_gives(private_world, client):
    """No hint that the race exists: the same answer as for a slug and submission that do not exist."""
    ghost = {"race": Race(slug="no-such-race"), "submission": type("S", (), {"pk": 999999})}
    for (method, url), (_, ghost_url) in zip(private_routes(private_world), private_routes(ghost), strict=True):
        real, fake = getattr(client, method)(url), getattr(client, method)(ghost_url)
        assert real.status_code == fake.status_code, (method, url)
        assert b"Secret Cup" not in real.content


def test_members_see_the_private_race_and_its_runs(private_world, client):
    client.force_login(private_world["member"])
    for url in (f"/races/{private_world['race'].slug}/", f"/submissions/{private_world['submission'].pk}/",
                f"/api/races/{private_world['race'].slug}/leaderboard/"):
        response = client.get(url)
        assert response.status_code == 200, url
    rows = client.get(f"/races/{private_world['race'].slug}/leaderboard.json").json()["rows"]
    assert rows[0]["racer"] == "Member" and rows[0]["time"] == "00:09.500"
    png = client.get(f"/submissions/{private_world['submission'].pk}/trajectory.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")


def test_pages_render_for_a_signed_in_racer(make_racer, make_race, client):
    race = make_race(name="Open Cup")
    client.force_login(make_racer())
    for url in ("/races/", "/races/community/", "/races/community/new/", "/models/", f"/races/{race.slug}/",
                "/races/join/"):
        assert client.get(url).status_code == 200, url
    assert b"Open Cup" in client.get("/races/").content


def test_the_api_uploads_a_model_and_submits_it(make_racer, make_race, archive_bytes):
    race = make_race(max_submissions_per_racer=1)
    api = APIClient()
    api.force_authenticate(make_racer())
    archive = SimpleUploadedFile("model.tar.gz", archive_bytes)
    upload = api.post("/api/models/", {"name": "api-model", "archive": archive}, format="multipart")
    assert upload.status_code == 201, upload.content
    model_id = upload.json()["id"]
    created = api.post("/api/submissions/", {"race": race.slug, "model": model_id}, format="json")
    assert created.status_code == 201 and created.json()["status"] == "queued" and created.json()["queue_position"] == 1
    again = api.post("/api/submissions/", {"race": race.slug, "model": model_id}, format="json")
    assert again.status_code == 400 and again.json()["detail"] == "You have used all 1 submissions to this race."


@pytest.mark.parametrize(
    ("method", "url", "payload", "expected_status", "expected_text"),
    [
        ("post", "/api/models/", {"name": "x", "archive": io.BytesIO(b"not an archive")}, 400,
         "This archive was refused"),
        ("post", "/api/models/", {"name": "x"}, 400, "archive"),
        ("post", "/api/submissions/", {"race": "no-such-race", "model": 1}, 404, ""),
        ("post", "/api/submissions/", {"race": "x", "model": "one"}, 400, "model"),
        ("post", "/api/races/join/", {"code": "wrong"}, 400, "This invite code is not valid"),
        ("post", "/api/races/", {"name": "Bad", "track": "pitlane_oval", "total_laps": 3, "minimum_laps": 5,
                                 "opens_at": "2026-01-01T00:00:00Z", "closes_at": "2026-02-01T00:00:00Z"}, 400,
         "Minimum laps must be between 1 and the total laps"),
        ("post", "/api/races/", {"name": "Bad", "track": "nowhere"}, 400, "track"),
        ("get", "/api/races/?phase=someday", None, 400, "phase must be open, upcoming or closed"),
    ],
)
def test_bad_api_input_gets_a_clear_json_error(make_racer, technical_track, method, url, payload, expected_status,
                                               expected_text):
    api = APIClient()
    api.force_authenticate(make_racer())
    fmt = "multipart" if url == "/api/models/" else "json"
    response = getattr(api, method)(url, payload, format=fmt) if payload is not None else getattr(api, method)(url)
    assert response.status_code == expected_status, response.content
    assert response["Content-Type"].startswith("application/json")
    assert expected_text in response.content.decode()


def test_garbage_bodies_never_cause_a_server_error(make_racer):
    api = APIClient()
    api.force_authenticate(make_racer())
    for url in ("/api/submissions/", "/api/races/", "/api/races/join/"):
        response = api.post(url, data="{not json", content_type="application/json")
        assert response.status_code == 400 and "detail" in response.json(), url
    assert APIClient().post("/api/submissions/", {}, format="json").status_code in (401, 403)
