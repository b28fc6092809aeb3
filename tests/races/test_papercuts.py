"""What a new racer and a new admin tripped over (issue 16), each fixed and kept fixed."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from evaluator.engine import EvaluationAttempt
from races.models import Race, Submission
from races.services import (
    leaderboard_table,
    model_upload,
    participant_remove,
    race_close_early,
    race_reset_invite_code,
    submission_create,
    submission_mark_running,
)
from races.services.presenters import python_highlight, submission_with_history
from races.services.submissions import submission_queue_position
from races.services.tracks import track_ideal_lap_ms
from sim.race.ideal_lap import ideal_lap_time
from sim.world.builtin_tracks import build_builtin_track
from tests.races.test_services import score

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(client, db):
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-12345!"))
    return client


def text(response) -> str:
    return response.content.decode()


# --- the Django admin ------------------------------------------------------------------------------------------
def test_a_track_imports_without_typing_a_slug_and_the_page_fills_it_from_the_title(admin_client):
    page = text(admin_client.get("/admin/races/track/add/"))
    assert "prepopulated_fields.js" in page or "data-prepopulated-fields" in page  # filled while typing the title
    buffer = io.BytesIO()
    np.save(buffer, build_builtin_track("pitlane_oval").waypoints)
    response = admin_client.post("/admin/races/track/add/", {
        "title": "Club Oval", "slug": "", "description": "", "directions": "both",
        "route_upload": SimpleUploadedFile("club.npy", buffer.getvalue()),
    })
    assert response.status_code == 302, text(response)[:3000]
    assert Race.track.field.related_model.objects.filter(slug="club-oval").exists()


def test_a_text_file_as_a_track_says_what_a_track_file_must_be(admin_client):
    response = admin_client.post("/admin/races/track/add/", {
        "title": "Notes", "slug": "notes", "description": "", "directions": "both",
        "route_upload": SimpleUploadedFile("notes.txt", b"x,y\n1,2\n"),
    })
    page = text(response)
    assert "allow_pickle" not in page
    assert "this is not a .npy file" in page and "N rows by 6 numbers" in page


def test_the_race_form_of_the_admin_has_empty_box_positions_words_for_labels_and_sections_per_race_type(
        admin_client, make_race):
    page = text(admin_client.get("/admin/races/race/add/"))
    box_positions = re.search(r'<input[^>]*name="box_positions"[^>]*>', page).group(0)
    assert 'value="null"' not in box_positions and "null" not in box_positions
    assert "Off-track penalty (s)" in page and "Run time cap (s)" in page
    assert "Off track penalty s" not in page and "Time cap s" not in page
    for race_type in ("OBJECT_AVOIDANCE", "HEAD_TO_BOT", "HEAD_TO_HEAD"):
        assert f"race-type-{race_type}" in page
    assert "races/admin_race_form.js" in page

    race = make_race(race_type="OBJECT_AVOIDANCE", box_count=2, box_placement="custom",
                     box_positions=[{"progress": 30, "lane": "inner"}, {"progress": 70, "lane": "outer"}])
    page = text(admin_client.get(f"/admin/races/race/{race.pk}/change/"))
    assert 'value="30 inner, 70 outer"' in page


def test_the_admin_refuses_minimum_laps_beside_the_field(admin_client, technical_track):
    now = timezone.now()
    response = admin_client.post("/admin/races/race/add/", {
        "name": "Admin Cup", "slug": "admin-cup", "kind": "virtual_circuit", "race_type": "TIME_TRIAL",
        "track": technical_track.pk, "direction": "counterclockwise", "ranking_method": "BEST_LAP_TIME",
        "total_laps": 2, "minimum_laps": 3, "off_track_penalty_s": 2, "collision_penalty_s": 5, "time_cap_s": 180,
        "opens_at_0": now.strftime("%Y-%m-%d"), "opens_at_1": "00:00:00",
        "closes_at_0": (now + timedelta(days=5)).strftime("%Y-%m-%d"), "closes_at_1": "00:00:00",
        "max_submissions_per_racer": 10, "submission_cooldown_s": 0, "box_positions": "",
        "participants-TOTAL_FORMS": 0, "participants-INITIAL_FORMS": 0,
    })
    errors = response.context["adminform"].form.errors
    assert errors["minimum_laps"] == ["Minimum laps must be between 1 and the total laps."]


def test_the_queue_page_counts_a_running_evaluation_as_running(admin_client, make_racer, make_race, make_model):
    racer = make_racer()
    race = make_race()
    running = submission_create(racer, race, make_model(racer))
    submission_mark_running(running, running.attempts.get())
    EvaluationAttempt.objects.filter(pk=running.attempts.get().pk).update(status=EvaluationAttempt.Status.RUNNING)
    page = text(admin_client.get("/admin/evaluator/evaluationqueue/"))
    assert "1 evaluation: 0 waiting, 1 running" in page
    assert "queued submission" not in page and "1 queued evaluation" not in page


# --- community races: invites, removal, the form -------------------------------------------------------------
def test_a_reset_or_closed_invite_link_warns_and_leaves_the_code_empty(client, make_racer, make_race):
    organiser, guest = make_racer(), make_racer()
    race = make_race(kind=Race.Kind.COMMUNITY, organiser=organiser, name="Friday Club")
    old_code = race.invite_code
    race_reset_invite_code(race, organiser)
    client.force_login(guest)
    page = text(client.get(f"/races/join/{old_code}/"))
    assert "it may have been reset by the organiser" in page
    assert f'value="{old_code}"' not in page and "Join Friday Club" not in page

    race.refresh_from_db()
    race_close_early(race, organiser)
    page = text(client.get(f"/races/join/{race.invite_code}/"))
    assert "This race has closed, so its invite code has expired." in page
    assert f'value="{race.invite_code}"' not in page


def test_a_removed_racer_sees_why_and_the_organiser_can_take_them_back(client, make_racer, make_race, make_model):
    organiser, racer, other = make_racer("Org"), make_racer("Gone"), make_racer("Other")
    race = make_race(kind=Race.Kind.COMMUNITY, organiser=organiser, name="Garage League")
    for user in (racer, other):
        client.force_login(user)
        client.post("/races/join/", {"code": race.invite_code})
    run = submission_create(racer, race, make_model(racer))
    others_run = submission_create(other, race, make_model(other))
    participant_remove(race, organiser, racer)

    client.force_login(racer)
    for url in (f"/submissions/{run.pk}/", f"/races/{race.slug}/"):
        response = client.get(url)
        assert response.status_code == 403
        assert "You were removed from the community race “Garage League” by its organiser Org" in text(response)
    participant_remove(race, organiser, other)
    assert client.get(f"/submissions/{others_run.pk}/").status_code == 404  # someone else's run: no hint

    client.force_login(organiser)
    manage = text(client.get(f"/races/{race.slug}/manage/"))
    assert "Removed" in manage and "Gone" in manage and "Re-admit" in manage
    client.post(f"/races/{race.slug}/manage/readmit/", {"user": racer.pk})
    client.force_login(racer)
    assert client.get(f"/submissions/{run.pk}/").status_code == 200
    assert client.get(f"/races/{race.slug}/").status_code == 200


def test_the_minimum_laps_error_shows_at_its_field(client, make_racer, technical_track):
    client.force_login(make_racer())
    now = timezone.now()
    response = client.post("/races/community/new/", {
        "name": "Lap Test", "race_type": "TIME_TRIAL", "track": technical_track.pk, "direction": "counterclockwise",
        "ranking_method": "BEST_LAP_TIME", "total_laps": 2, "minimum_laps": 3, "off_track_penalty_s": 2,
        "collision_penalty_s": 5, "time_cap_s": 180, "max_submissions_per_racer": 5, "submission_cooldown_s": 0,
        "opens_at": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "closes_at": (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
    })
    form = response.context["form"]
    assert form.errors["minimum_laps"] == ["Minimum laps must be between 1 and the total laps."]
    assert not form.non_field_errors()


# --- runs and badges -------------------------------------------------------------------------------------------
def test_a_run_that_did_not_qualify_is_not_called_scored(client, make_racer, make_race, make_model):
    racer = make_racer()
    race = make_race(total_laps=3, minimum_laps=2)
    submission = submission_create(racer, race, make_model(racer))
    score(submission, 10.0, 11.0, incomplete=(1,))  # one completed lap, then off into the weeds
    client.force_login(racer)
    for url in (f"/submissions/{submission.pk}/", f"/races/{race.slug}/",
                f"/models/{submission.model_id}/"):
        page = text(client.get(url))
        assert '<span class="badge not-qualified"' in page and "Not qualified" in page, url
        assert '<span class="badge scored">' not in page, url
    mine = client.get(f"/races/{race.slug}/leaderboard.json").json()["mine"][0]
    assert mine["badge"] == {"css": "not-qualified", "label": "Not qualified"}


def test_the_status_badge_never_lags_the_history(make_racer, make_race, make_model):
    racer = make_racer()
    submission = submission_create(racer, make_race(), make_model(racer))
    stale = Submission.objects.get(pk=submission.pk)  # what a page loaded a moment before the worker took it
    submission_mark_running(submission, submission.attempts.get())
    summary, events = submission_with_history(stale, submission_queue_position)
    assert [event.status for event in events] == ["queued", "running"]
    assert summary["status"] == "running" and summary["badge"]["label"] == "Running"


# --- the model page -------------------------------------------------------------------------------------------
def test_the_model_page_shows_what_is_inside_the_archive_and_offers_the_open_races(
        client, make_racer, make_race, provenance_archive):
    racer = make_racer()
    open_race = make_race(name="Open Cup")
    now = timezone.now()
    make_race(name="Closed Cup", opens_at=now - timedelta(days=3), closes_at=now - timedelta(days=1))
    make_race(kind=Race.Kind.COMMUNITY, organiser=make_racer(), name="Someone Else's Club")
    model = model_upload(racer, "centre-hugger", io.BytesIO(provenance_archive))
    client.force_login(racer)
    page = text(client.get(f"/models/{model.pk}/"))
    assert "Front-facing camera" in page and "deep CNN" in page
    assert '<span class="tok-keyword">def</span> <span class="tok-def">reward_function</span>' in page
    assert "Stay near the centre &lt;line&gt;." in page  # escaped, never markup
    assert "Learning rate" in page and "0.0003" in page and "Gradient descent batch size" in page
    assert "25 min 0 s" in page  # 1500.2 s of training
    assert page.count("Submit to race</button>") == 1
    assert "Open Cup" in page and "Closed Cup" not in page and "Someone Else" not in page

    response = client.post(f"/races/{open_race.slug}/submit/", {"model": model.pk})
    assert response.status_code == 302
    assert Submission.objects.get(race=open_race, user=racer).model_id == model.pk


def test_a_model_without_provenance_says_so(client, make_racer, archive_bytes):
    racer = make_racer()
    model = model_upload(racer, "bare", io.BytesIO(archive_bytes))
    client.force_login(racer)
    page = text(client.get(f"/models/{model.pk}/"))
    assert "The archive holds no <code>reward_function.py</code>." in page
    assert "not recorded in the archive" in page


def test_the_highlighter_escapes_everything_and_survives_broken_source():
    assert python_highlight("x = '<b>'\n") == 'x = <span class="tok-string">&#x27;&lt;b&gt;&#x27;</span>\n'
    broken = "def f(:\n    '''never closed\n"
    assert python_highlight(broken) == "def f(:\n    &#x27;&#x27;&#x27;never closed\n"


def test_the_upload_help_shows_code_not_backticks(client, make_racer):
    client.force_login(make_racer())
    page = text(client.get("/models/"))
    assert "`" not in page.split("<main", 1)[1].split("</main>")[0]
    assert "<code>python -m sim train</code>" in page


# --- times ------------------------------------------------------------------------------------------------------
def test_every_shown_time_names_its_zone(client, make_racer, make_race, make_model):
    racer = make_racer()
    race = make_race(name="Zone Cup")
    tomorrow = timezone.now() + timedelta(days=1)
    make_race(name="Next Cup", opens_at=tomorrow, closes_at=tomorrow + timedelta(days=1))
    submission_create(racer, race, make_model(racer))
    client.force_login(racer)
    page = text(client.get(f"/races/{race.slug}/"))
    opens = timezone.localtime(race.opens_at)
    assert re.search(rf'<time datetime="{re.escape(race.opens_at.isoformat())}" data-local="both"[^>]*>'
                     rf'{opens:%a %b} {opens.day}, {opens:%Y %H:%M} UTC</time>', page)
    for url in (f"/races/{race.slug}/", "/races/", "/models/"):
        shown = re.findall(r"<time [^>]*>([^<]*)</time>", text(client.get(url)))
        assert shown and all(value.endswith(" UTC") for value in shown), url
    mine = client.get(f"/races/{race.slug}/leaderboard.json").json()
    assert mine["time_zone"] == "UTC" and mine["mine"][0]["submitted_at"].endswith(" UTC")


# --- tracks -----------------------------------------------------------------------------------------------------
def test_every_track_is_downloadable_as_a_route_file_the_simulator_reads(client, technical_track, tmp_path):
    from sim.world.track_catalog import get_track

    page = text(client.get("/tracks/"))
    assert f'href="/tracks/{technical_track.slug}.npy"' in page and "--track path/to/" in page
    response = client.get(f"/tracks/{technical_track.slug}.npy")
    assert response["Content-Disposition"] == f'attachment; filename="{technical_track.slug}.npy"'
    path = tmp_path / f"{technical_track.slug}.npy"
    path.write_bytes(response.content)
    downloaded = get_track(str(path))
    assert np.array_equal(downloaded.waypoints, build_builtin_track(technical_track.slug).waypoints)


def test_an_imported_track_downloads_as_the_file_it_was_imported_from(client, db):
    from races.services import track_import

    buffer = io.BytesIO()
    np.save(buffer, build_builtin_track("pitlane_oval").waypoints[::-1])
    track = track_import("Backwards Oval", buffer.getvalue())
    assert client.get(f"/tracks/{track.slug}.npy").content == buffer.getvalue()


# --- the leaderboard's reference line ------------------------------------------------------------------------
def test_the_leaderboard_shows_the_ideal_lap_and_each_gap_to_it(client, make_racer, make_race, make_model):
    race = make_race(name="Ideal Cup", direction="clockwise")
    racer = make_racer("Quick")
    score(submission_create(racer, race, make_model(racer)), 9.5)
    ideal_ms = round(ideal_lap_time(build_builtin_track(race.track.slug).with_direction("clockwise")).lap_time * 1000)
    assert track_ideal_lap_ms(race.track, "clockwise") == ideal_ms
    row = leaderboard_table(race)[0]
    assert row["ideal_gap_ms"] == 9500 - ideal_ms and row["ideal_gap"] == f"+{(9500 - ideal_ms) / 1000:.3f}"
    page = text(client.get(f"/races/{race.slug}/"))
    assert "Ideal lap" in page and f"00:0{ideal_ms // 1000}.{ideal_ms % 1000:03d}" in page
    assert f"+{(9500 - ideal_ms) / 1000:.3f}" in page


def test_the_ideal_lap_is_computed_once_per_track_and_direction(technical_track):
    from races.services import tracks

    tracks._ideal_lap_ms.cache_clear()
    cache.clear()
    first = track_ideal_lap_ms(technical_track, "counterclockwise")
    track_ideal_lap_ms(technical_track, "counterclockwise")
    assert tracks._ideal_lap_ms.cache_info().misses == 1
    tracks._ideal_lap_ms.cache_clear()  # another process: the shared cache answers, nothing is recomputed
    assert cache.get(f"track-ideal-lap:v1:{technical_track.slug}:builtin::counterclockwise") == first
    assert track_ideal_lap_ms(technical_track, "counterclockwise") == first


def test_a_total_time_board_is_measured_against_every_lap(make_racer, make_race, make_model):
    race = make_race(ranking_method="TOTAL_TIME", total_laps=2, minimum_laps=2)
    racer = make_racer()
    score(submission_create(racer, race, make_model(racer)), 9.0, 9.0)
    ideal = track_ideal_lap_ms(race.track, race.direction)
    assert leaderboard_table(race)[0]["ideal_gap_ms"] == 18000 - 2 * ideal
