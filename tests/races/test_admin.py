"""The league admin: track import, race scheduling (validation, clone, open/close), re-run, disqualify, the queue."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from races.models import LeaderboardEntry, Race, Submission, Track
from races.services import submission_create
from sim.world.builtin_tracks import build_builtin_track
from tests.races.test_services import score

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(client, db):
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-12345!"))
    return client


def npy_bytes(rows: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, rows)
    return buffer.getvalue()


def act(client, url: str, action: str, objects) -> None:
    response = client.post(url, {"action": action, "_selected_action": [o.pk for o in objects]}, follow=True)
    assert response.status_code == 200


def test_every_admin_list_renders(admin_client, make_racer, make_race, make_model):
    racer = make_racer()
    race = make_race()
    submission = submission_create(racer, race, make_model(racer))
    for url in ("/admin/races/race/", "/admin/races/submission/", "/admin/evaluator/evaluationqueue/",
                "/admin/races/track/", "/admin/races/racermodel/", "/admin/races/leaderboardentry/",
                "/admin/races/race/add/", "/admin/races/track/add/", f"/admin/races/race/{race.pk}/change/",
                f"/admin/races/submission/{submission.pk}/change/"):
        assert admin_client.get(url).status_code == 200, url
    queue = admin_client.get("/admin/evaluator/evaluationqueue/").content.decode()
    assert "#1 pending" in queue and race.name in queue


def test_the_race_list_shows_times_with_their_zone(admin_client, make_race):
    """Stored times are UTC; the admin's list names the zone, so "14:00" cannot be read as local time."""
    race = make_race(opens_at=datetime(2027, 5, 4, 14, tzinfo=UTC), closes_at=datetime(2027, 5, 11, 14, tzinfo=UTC))
    page = admin_client.get("/admin/races/race/").content.decode()
    assert race.name in page
    assert "2027-05-04</span> <span class=\"list-time\">14:00 UTC" in page
    assert "2027-05-11</span> <span class=\"list-time\">14:00 UTC" in page


def test_a_route_file_is_imported_with_its_preview(admin_client, technical_track):
    rows = build_builtin_track("pitlane_oval").waypoints
    response = admin_client.post("/admin/races/track/add/", {
        "title": "Club Oval", "slug": "club-oval", "description": "Our club's track", "directions": "both",
        "route_upload": SimpleUploadedFile("club.npy", npy_bytes(rows)),
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    track = Track.objects.get(slug="club-oval")
    assert track.source == "imported" and track.length_m > 5 and track.preview.name
    assert track.route_file.storage.exists(track.route_file.name)


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (None, "Upload a .npy route file"),
        (b"not numpy at all", "Not a valid DeepRacer route file"),
        (npy_bytes(np.zeros((10, 4))), "shape (N, 6)"),
        (npy_bytes(np.arange(60, dtype=float).reshape(10, 6)), "only closed tracks are supported"),
    ],
)
def test_a_bad_route_file_is_refused_with_the_reason(admin_client, upload, message):
    data = {"title": "Broken", "slug": "broken", "description": "", "directions": "both"}
    if upload is not None:
        data["route_upload"] = SimpleUploadedFile("broken.npy", upload)
    response = admin_client.post("/admin/races/track/add/", data)
    assert response.status_code == 200 and message in response.content.decode()
    assert not Track.objects.filter(slug="broken").exists()


def test_race_settings_are_validated_in_the_admin_form(admin_client, technical_track):
    now = timezone.now()
    response = admin_client.post("/admin/races/race/add/", {
        "name": "Admin Cup", "slug": "admin-cup", "kind": "virtual_circuit", "race_type": "TIME_TRIAL",
        "track": technical_track.pk, "direction": "counterclockwise", "ranking_method": "TOTAL_TIME",
        "total_laps": 3, "minimum_laps": 1, "off_track_penalty_s": 2, "collision_penalty_s": 5, "time_cap_s": 180,
        "opens_at_0": now.strftime("%Y-%m-%d"), "opens_at_1": "00:00:00",
        "closes_at_0": (now + timedelta(days=5)).strftime("%Y-%m-%d"), "closes_at_1": "00:00:00",
        "max_submissions_per_racer": 10, "submission_cooldown_s": 0,
        "participants-TOTAL_FORMS": 0, "participants-INITIAL_FORMS": 0,
    })
    assert response.status_code == 200
    assert "minimum laps must equal total laps" in response.content.decode()
    assert not Race.objects.filter(slug="admin-cup").exists()


def test_clone_open_and_close_actions(admin_client, make_race):
    now = timezone.now()
    race = make_race(name="Weekly", opens_at=now - timedelta(days=1), closes_at=now + timedelta(days=6))
    act(admin_client, "/admin/races/race/", "clone_as_next_round", [race])
    clone = Race.objects.get(name="Weekly (next round)")
    assert clone.opens_at == race.closes_at and clone.closes_at - clone.opens_at == timedelta(days=7)
    assert clone.ranking_method == race.ranking_method and clone.track_id == race.track_id
    act(admin_client, "/admin/races/race/", "open_now", [clone])
    clone.refresh_from_db()
    assert clone.phase() == "open"
    act(admin_client, "/admin/races/race/", "close_now", [clone])
    clone.refresh_from_db()
    assert clone.phase() == "closed"


def test_rerun_and_disqualify_from_the_admin(admin_client, make_racer, make_race, make_model):
    race = make_race()
    racer = make_racer()
    model = make_model(racer)
    good, best = submission_create(racer, race, model), submission_create(racer, race, model)
    score(good, 11.0)
    score(best, 10.0)
    act(admin_client, "/admin/races/submission/", "disqualify", [best])
    assert Submission.objects.get(pk=best.pk).status == "disqualified"
    assert LeaderboardEntry.objects.get(race=race).submission_id == good.pk
    act(admin_client, "/admin/races/submission/", "rerun", [best])
    best.refresh_from_db()
    assert best.status == "queued" and best.attempts.filter(status="pending").count() == 1
    refused = admin_client.post("/admin/races/submission/", {"action": "rerun", "_selected_action": [best.pk]},
                                follow=True)
    assert "queued already" in refused.content.decode()
