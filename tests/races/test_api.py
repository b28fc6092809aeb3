"""The REST API end to end: paginated lists, filters, community-race management, runs, schema, odd input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from evaluator.contract import RaceResult
from evaluator.services import attempt_claim_next, attempt_succeed
from races.models import Race, Submission
from races.services import race_join, submission_create
from tests.races.test_services import score

pytestmark = pytest.mark.django_db(transaction=True)


def api_for(user=None) -> APIClient:
    api = APIClient()
    if user is not None:
        api.force_authenticate(user)
    return api


def test_lists_are_paginated(make_racer, make_race):
    for i in range(27):
        make_race(name=f"Cup {i:02d}")
    first = api_for().get("/api/races/").json()
    assert first["count"] == 27 and len(first["results"]) == 25 and first["next"].endswith("page=2")
    second = api_for().get("/api/races/?page=2").json()
    assert len(second["results"]) == 2
    missing = api_for().get("/api/races/?page=9")
    assert missing.status_code == 404 and "Invalid page" in missing.json()["detail"]


def test_races_filter_by_phase_and_kind(make_racer, make_race):
    now = timezone.now()
    make_race(name="Open Cup")
    make_race(name="Next Cup", opens_at=now + timedelta(days=1), closes_at=now + timedelta(days=2))
    make_race(name="Old Cup", opens_at=now - timedelta(days=5), closes_at=now - timedelta(days=1))
    organiser = make_racer()
    make_race(kind=Race.Kind.COMMUNITY, organiser=organiser, name="Mine")

    def names(url, user=None):
        return [race["name"] for race in api_for(user).get(url).json()["results"]]

    assert names("/api/races/?phase=open") == ["Open Cup"]
    assert names("/api/races/?phase=upcoming") == ["Next Cup"]
    assert names("/api/races/?phase=closed") == ["Old Cup"]
    assert names("/api/races/?kind=community", organiser) == ["Mine"]
    assert names("/api/races/?kind=community") == []
    bad = api_for().get("/api/races/?kind=secret")
    assert bad.status_code == 400 and "kind must be one of" in bad.json()["detail"]


def test_a_community_race_is_created_managed_and_joined_through_the_api(make_racer, technical_track):
    organiser, friend = make_racer("Boss"), make_racer("Friend")
    now = timezone.now()
    created = api_for(organiser).post("/api/races/", {
        "name": "Friday Night", "track": "pitlane_technical", "direction": "clockwise", "total_laps": 3,
        "minimum_laps": 3, "ranking_method": "TOTAL_TIME", "opens_at": now.isoformat(),
        "closes_at": (now + timedelta(days=3)).isoformat(), "max_submissions_per_racer": 5,
    }, format="json")
    assert created.status_code == 201, created.content
    race = created.json()
    assert race["kind"] == "community" and race["organiser"] == "Boss" and race["phase"] == "open"
    assert race["invite_url"].endswith(f"/races/join/{race['invite_code']}/")

    joined = api_for(friend).post("/api/races/join/", {"code": race["invite_code"]}, format="json")
    assert joined.status_code == 200 and joined.json()["slug"] == race["slug"]
    seen_by_friend = api_for(friend).get(f"/api/races/{race['slug']}/").json()
    assert "invite_code" not in seen_by_friend and seen_by_friend["my_allowance"]["remaining"] == 5
    assert api_for(friend).get(f"/api/races/{race['slug']}/participants/").status_code == 403

    members = api_for(organiser).get(f"/api/races/{race['slug']}/participants/").json()["results"]
    assert [m["racer"] for m in members] == ["Friend"]
    reset = api_for(organiser).post(f"/api/races/{race['slug']}/reset-code/").json()
    assert reset["invite_code"] != race["invite_code"] and reset["invite_code_version"] == 2
    stale = api_for(make_racer()).post("/api/races/join/", {"code": race["invite_code"]}, format="json")
    assert stale.status_code == 400 and stale.json()["code"] == "bad_code"

    removed = api_for(organiser).delete(f"/api/races/{race['slug']}/participants/{friend.pk}/")
    assert removed.status_code == 204
    assert api_for(friend).get(f"/api/races/{race['slug']}/").status_code == 404
    closed = api_for(organiser).post(f"/api/races/{race['slug']}/close/")
    assert closed.status_code == 200 and closed.json()["phase"] == "closed"
    assert api_for(organiser).delete(f"/api/races/{race['slug']}/").status_code == 204
    assert not Race.objects.exists()


def test_only_the_organiser_manages_a_race(make_racer, make_race):
    organiser, member = make_racer(), make_racer()
    race = make_race(kind=Race.Kind.COMMUNITY, organiser=organiser)
    race_join(race.invite_code, member)
    for method, url in (("post", f"/api/races/{race.slug}/reset-code/"), ("post", f"/api/races/{race.slug}/close/"),
                        ("delete", f"/api/races/{race.slug}/")):
        response = getattr(api_for(member), method)(url)
        assert response.status_code == 403 and response.json()["detail"] == "Only the organiser can manage this race."
    public = make_race(name="Public")
    response = api_for(organiser).post(f"/api/races/{public.slug}/close/")
    assert response.status_code == 403 and "managed by the league admins" in response.json()["detail"]


def test_submissions_show_status_queue_position_then_laps_and_score(make_racer, make_race, make_model):
    race = make_race(off_track_penalty_s=2.0)
    first, second = make_racer("First"), make_racer("Second")
    waiting = submission_create(first, race, make_model(first))
    mine = submission_create(second, race, make_model(second))
    detail = api_for(second).get(f"/api/submissions/{mine.pk}/").json()
    assert detail["status"] == "queued" and detail["queue_position"] == 2 and detail["run"] is None
    score(waiting, 10.0)
    assert api_for(second).get(f"/api/submissions/{mine.pk}/").json()["queue_position"] == 1

    claim = attempt_claim_next("test-worker")  # the evaluator's real claim, as its worker does
    assert (claim.target_kind, claim.target_id) == (Submission.EVALUATION_KIND, mine.pk)
    assert api_for(second).get(f"/api/submissions/{mine.pk}/").json()["status"] == "running"
    lap = {"trial": 1, "elapsed_time_in_milliseconds": 12_000, "completion_percentage": 100.0, "off_track_count": 1,
           "crash_count": 0, "immobilized_count": 0, "reversed_count": 0, "reset_count": 1,
           "episode_status": "Lap complete"}
    assert attempt_succeed(claim, RaceResult(laps=[lap], trace={"t": [0.0], "x": [0.0], "y": [0.0]},
                                             simtrace_csv="", duration_s=2.0))
    done = api_for().get(f"/api/submissions/{mine.pk}/").json()
    assert done["status"] == "scored" and done["queue_position"] is None
    assert done["run"]["ranking_score"] == "00:12.000" and done["run"]["qualified"]
    assert done["run"]["laps"][0]["penalty_s"] == 2.0 and done["run"]["trace"]["t"] == [0.0]

    listed = api_for(second).get("/api/submissions/").json()
    assert listed["count"] == 1 and listed["results"][0]["id"] == mine.pk and "trace" not in listed["results"][0]["run"]
    assert api_for(second).get("/api/submissions/?race=elsewhere").json()["count"] == 0
    board = api_for().get(f"/api/races/{race.slug}/leaderboard/").json()["results"]
    assert [(row["racer"], row["gap"]) for row in board] == [("First", ""), ("Second", "+2.000")]


def test_models_are_listed_shown_and_deleted_by_their_owner_only(make_racer, make_model):
    owner, other = make_racer(), make_racer()
    model = make_model(owner, "mine")
    assert [m["name"] for m in api_for(owner).get("/api/models/").json()["results"]] == ["mine"]
    assert api_for(other).get(f"/api/models/{model.pk}/").status_code == 404
    assert api_for(owner).get(f"/api/models/{model.pk}/").json()["sha256"] == "0" * 64
    assert api_for(other).delete(f"/api/models/{model.pk}/").status_code == 404
    assert api_for(owner).delete(f"/api/models/{model.pk}/").status_code == 204
    assert api_for(owner).get("/api/models/").json()["count"] == 0
    assert api_for().get("/api/models/").status_code in (401, 403)


def test_tracks_are_public_with_a_preview(technical_track, client):
    tracks = api_for().get("/api/tracks/").json()["results"]
    assert "pitlane_technical" in [t["slug"] for t in tracks]
    detail = api_for().get("/api/tracks/pitlane_technical/").json()
    assert detail["length_m"] > 10 and detail["preview_url"] == "/tracks/pitlane_technical/preview.png"
    png = client.get(detail["preview_url"])
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    technical_track.refresh_from_db()
    assert technical_track.preview.name  # rendered once, kept in storage
    assert api_for().get("/api/tracks/nowhere/").status_code == 404


def test_the_schema_documents_every_endpoint(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    for path in ("/api/tracks/", "/api/models/", "/api/races/", "/api/races/join/", "/api/races/{slug}/leaderboard/",
                 "/api/races/{slug}/participants/{user_id}/", "/api/submissions/", "/api/submissions/{id}/"):
        assert path in paths, path
    assert "multipart/form-data" in paths["/api/models/"]["post"]["requestBody"]["content"]


ODD_INPUTS = [
    ("post", "/api/races/", {"name": "x" * 500, "track": "pitlane_oval"}),
    ("post", "/api/races/", {"name": "Odd", "track": "pitlane_oval", "opens_at": "yesterday"}),
    ("post", "/api/races/", {"name": "Odd", "track": "pitlane_oval", "total_laps": 10**12,
                             "opens_at": "2030-01-01T00:00:00Z", "closes_at": "2030-01-02T00:00:00Z"}),
    ("post", "/api/races/", {"name": "Odd", "track": "pitlane_oval", "race_type": "HEAD_TO_HEAD", "bracket_size": 3,
                             "opens_at": "2030-01-01T00:00:00Z", "closes_at": "2030-01-02T00:00:00Z"}),
    ("post", "/api/races/", {"name": "Odd", "track": "pitlane_oval", "race_type": "HEAD_TO_HEAD",
                             "bracket_size": "eight", "opens_at": "2030-01-01T00:00:00Z",
                             "closes_at": "2030-01-02T00:00:00Z"}),
    ("post", "/api/races/", {"name": "!!!", "track": "pitlane_oval", "max_resets": -1,
                             "opens_at": "2030-01-01T00:00:00Z", "closes_at": "2030-01-02T00:00:00Z"}),
    ("post", "/api/races/", ["a", "list"]),
    ("post", "/api/races/join/", {"code": ""}),
    ("post", "/api/races/join/", {"code": "x" * 1000}),
    ("post", "/api/races/join/", {"code": None}),
    ("post", "/api/submissions/", {"race": "", "model": -1}),
    ("post", "/api/submissions/", {"race": {"nested": 1}, "model": 10**30}),
    ("get", "/api/races/?page=abc", None),
    ("get", "/api/submissions/?race=%00", None),
    ("get", "/api/races/%E2%80%A6/leaderboard/", None),
    ("delete", "/api/models/999999/", None),
    ("delete", "/api/races/nope/participants/1/", None),
]


@pytest.mark.parametrize(("method", "url", "payload"), ODD_INPUTS)
def test_odd_input_gets_a_json_answer_never_a_server_error(make_racer, technical_track, method, url, payload):
    api = api_for(make_racer())
    response = getattr(api, method)(url, payload, format="json") if payload is not None else getattr(api, method)(url)
    assert 400 <= response.status_code < 500, (url, response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, dict) and body, url  # a message (or per-field messages), never empty
