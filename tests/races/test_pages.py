"""The league website as a racer uses it: upload, submit, follow a run, organise a community race."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from evaluator.contract import RaceResult
from races.models import Race, RaceParticipant, RacerModel, Submission
from races.services import race_join, submission_create, submission_mark_running, submission_record_result

pytestmark = pytest.mark.django_db(transaction=True)

LAPS = [{"trial": i, "elapsed_time_in_milliseconds": ms, "completion_percentage": pct, "off_track_count": off,
         "crash_count": 0, "immobilized_count": 0, "reversed_count": 0, "reset_count": off,
         "episode_status": "Lap complete" if pct == 100 else "Off track"}
        for i, (ms, pct, off) in enumerate([(12_300, 100.0, 1), (10_250, 100.0, 0), (4_000, 35.0, 1)], start=1)]
TRACE = {"t": [0.0, 0.5, 1.0], "x": [0.0, 0.3, 0.6], "y": [0.0, 0.0, 0.1], "yaw": [0.0, 0.0, 5.0],
         "speed": [0.5, 1.0, 1.2], "status": ["in_progress", "in_progress", "off_track"]}


def record(submission):
    attempt = submission.attempts.get(status="pending")
    submission_mark_running(submission, attempt)
    submission_record_result(submission, attempt, RaceResult(laps=LAPS, trace=TRACE,
                                                             simtrace_csv="episode,steps\n0,1\n", duration_s=4.2))
    attempt.status = "succeeded"
    attempt.save(update_fields=["status"])


def test_a_racer_uploads_a_model_and_sees_clear_errors(make_racer, archive_bytes, client):
    client.force_login(make_racer())
    bad = client.post("/models/", {"name": "junk", "archive": SimpleUploadedFile("model.tar.gz", b"junk")})
    assert bad.status_code == 200 and "This archive was refused" in bad.content.decode()
    good = client.post("/models/", {"name": "first", "archive": SimpleUploadedFile("model.tar.gz", archive_bytes)})
    model = RacerModel.objects.get(name="first")
    assert good.status_code == 302 and good["Location"] == f"/models/{model.pk}/"
    page = client.get(good["Location"]).content.decode()
    assert "Front-facing camera" in page and "deep CNN" in page and "Steering" in page  # names in words
    again = client.post("/models/", {"name": "first", "archive": SimpleUploadedFile("model.tar.gz", archive_bytes)})
    assert "You already have a model named" in again.content.decode()
    download = client.get(f"/models/{model.pk}/model.tar.gz")
    assert download["Content-Disposition"] == 'attachment; filename="first.tar.gz"'
    assert b"".join(download.streaming_content) == archive_bytes
    client.force_login(make_racer())
    assert client.get(f"/models/{model.pk}/model.tar.gz").status_code == 404  # only its owner downloads it


def test_submitting_from_the_race_page_and_following_the_run(make_racer, make_race, make_model, client):
    race = make_race(max_submissions_per_racer=1, off_track_penalty_s=2.0)
    racer = make_racer("Speedy")
    model = make_model(racer, "quick")
    client.force_login(racer)
    page = client.get(f"/races/{race.slug}/").content.decode()
    assert "1</b><span>of 1 submissions left" in page and "quick" in page

    response = client.post(f"/races/{race.slug}/submit/", {"model": model.pk})
    submission = Submission.objects.get()
    assert response["Location"] == f"/submissions/{submission.pk}/"
    queued = client.get(response["Location"]).content.decode()
    assert "position 1 in the evaluation queue" in queued
    refused = client.post(f"/races/{race.slug}/submit/", {"model": model.pk}, follow=True).content.decode()
    assert "You have used all 1 submissions to this race." in refused

    record(submission)
    scored = client.get(f"/submissions/{submission.pk}/").content.decode()
    assert "00:10.250" in scored and "+2.0 s" in scored and "Download the simtrace CSV" in scored
    polled = client.get(f"/races/{race.slug}/leaderboard.json")
    assert client.get(f"/races/{race.slug}/leaderboard.json", HTTP_IF_NONE_MATCH=polled["ETag"]).status_code == 304
    live = polled.json()
    assert live["me"] == "Speedy" and live["rows"][0]["racer"] == "Speedy"
    assert live["rows"][0]["url"] == f"/submissions/{submission.pk}/"
    assert live["rows"][0]["racer_url"] == "/racers/Speedy/"  # each row leads to the racer's profile
    race_page = client.get(f"/races/{race.slug}/").content.decode()
    assert '<td class="alias"><a href="/racers/Speedy/">Speedy</a></td>' in race_page
    assert live["mine"][0]["status"] == "scored" and live["mine"][0]["score"] == "00:10.250"
    csv = client.get(f"/races/{race.slug}/leaderboard.csv")
    assert csv["Content-Type"].startswith("text/csv") and "1,Speedy,00:10.250" in csv.content.decode()
    simtrace = client.get(f"/submissions/{submission.pk}/simtrace.csv")
    assert simtrace.status_code == 200 and b"".join(simtrace.streaming_content).startswith(b"episode,steps")
    replay = client.get(f"/submissions/{submission.pk}/status.json").json()
    assert replay["run"]["trace"]["status"][-1] == "off_track"


def test_other_racers_watch_a_run_but_do_not_get_its_simtrace(make_racer, make_race, make_model, client):
    racer = make_racer()
    submission = submission_create(racer, make_race(), make_model(racer))
    record(submission)
    client.force_login(make_racer())
    page = client.get(f"/submissions/{submission.pk}/").content.decode()
    assert "00:10.250" in page and "simtrace" not in page.lower().replace("simtrace.csv", "")
    assert client.get(f"/submissions/{submission.pk}/simtrace.csv").status_code == 404
    assert client.get(f"/submissions/{submission.pk}/trajectory.png").content.startswith(b"\x89PNG")


def test_organising_a_community_race_from_the_website(make_racer, technical_track, client):
    organiser, friend = make_racer("Organiser"), make_racer("Friend")
    client.force_login(organiser)
    opens = timezone.localtime() + timedelta(days=1)
    form = {"name": "Club Night", "description": "Bring your best model", "race_type": "TIME_TRIAL",
            "track": technical_track.pk, "direction": "clockwise", "ranking_method": "AVG_LAP_TIME", "total_laps": 5,
            "minimum_laps": 3, "off_track_penalty_s": 3, "collision_penalty_s": 5, "max_resets": "",
            "time_cap_s": 300, "opens_at": opens.strftime("%Y-%m-%dT%H:%M"),
            "closes_at": (opens + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"), "max_submissions_per_racer": 10,
            "submission_cooldown_s": 60}
    bad = client.post("/races/community/new/", form | {"minimum_laps": 6})
    assert "Minimum laps must be between 1 and the total laps" in bad.content.decode()
    created = client.post("/races/community/new/", form)
    race = Race.objects.get(name="Club Night")
    assert created["Location"] == f"/races/{race.slug}/manage/"
    assert race.organiser == organiser and race.max_resets is None and race.direction == "clockwise"
    manage = client.get(created["Location"]).content.decode()
    assert f"/races/join/{race.invite_code}/" in manage

    saved = client.post(f"/races/{race.slug}/manage/", form | {"total_laps": 4})
    assert saved.status_code == 302 and Race.objects.get(pk=race.pk).total_laps == 4
    client.post(f"/races/{race.slug}/manage/reset-code/")
    old_code, race = race.invite_code, Race.objects.get(pk=race.pk)
    assert race.invite_code != old_code

    client.force_login(friend)
    assert client.get(f"/races/{race.slug}/").status_code == 404
    stale = client.post("/races/join/", {"code": old_code})
    assert "This invite code is not valid" in stale.content.decode()
    assert "Club Night" not in client.get(f"/races/join/{old_code}/").content.decode()  # a reset code shows nothing
    link = client.get(f"/races/join/{race.invite_code}/").content.decode()
    assert race.invite_code in link and "Club Night" in link and "Bring your best model" in link
    joined = client.post("/races/join/", {"code": race.invite_code})
    assert joined["Location"] == f"/races/{race.slug}/"
    assert client.get(f"/races/{race.slug}/manage/")["Location"] == f"/races/{race.slug}/"  # not the organiser
    assert "Club Night" in client.get("/races/community/").content.decode()

    client.force_login(organiser)
    client.post(f"/races/{race.slug}/manage/remove/", {"user": friend.pk})
    assert RaceParticipant.objects.get(race=race, user=friend).removed_at is not None
    client.post(f"/races/{race.slug}/manage/delete/")
    assert not Race.objects.filter(pk=race.pk).exists()


def test_settings_cannot_be_changed_once_the_race_is_open(make_racer, make_race, client):
    organiser = make_racer()
    race = make_race(kind=Race.Kind.COMMUNITY, organiser=organiser, name="Running Cup")
    client.force_login(organiser)
    later = timezone.localtime() + timedelta(days=3)
    response = client.post(f"/races/{race.slug}/manage/", {
        "name": "Running Cup", "race_type": "TIME_TRIAL", "track": race.track_id, "direction": "counterclockwise",
        "ranking_method": "BEST_LAP_TIME", "total_laps": 1, "minimum_laps": 1, "off_track_penalty_s": 0,
        "collision_penalty_s": 0, "time_cap_s": 60, "opens_at": later.strftime("%Y-%m-%dT%H:%M"),
        "closes_at": (later + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"), "max_submissions_per_racer": 1,
        "submission_cooldown_s": 0})
    assert "only be edited before it opens" in response.content.decode()
    race.refresh_from_db()
    assert race.total_laps == 3 and race.phase() == "open"


def test_lists_show_open_races_and_your_community_races(make_racer, make_race, client):
    racer = make_racer()
    make_race(name="Public Sprint")
    club = make_race(kind=Race.Kind.COMMUNITY, organiser=make_racer(), name="Club Sprint")
    race_join(club.invite_code, racer)
    client.force_login(racer)
    page = client.get("/races/").content.decode()
    assert "Public Sprint" in page and "Your open community races" in page and "Club Sprint" in page
    tracks = client.get("/tracks/").content.decode()
    assert "Pitlane Technical" in tracks and "/tracks/pitlane_technical/preview.png" in tracks
    outline = client.get("/tracks/pitlane_technical/outline.json?direction=clockwise").json()
    assert set(outline) == {"center", "inner", "outer"} and len(outline["center"]) > 10
    assert client.get("/tracks/pitlane_technical/outline.json?direction=up").status_code == 400


def test_visitors_see_public_races_and_are_invited_to_sign_up(make_race, client):
    race = make_race(name="Open Sprint")
    page = client.get(f"/races/{race.slug}/").content.decode()
    assert "Open Sprint" in page and "Create an account" in page and "Submit to this race" not in page
    assert client.get(f"/races/{race.slug}/submit/").status_code in (302, 405)
    assert client.get("/models/")["Location"].startswith("/accounts/login/")


def test_odd_form_input_on_the_website_never_causes_a_server_error(make_racer, make_race, make_model, client):
    organiser = make_racer()
    race = make_race(kind=Race.Kind.COMMUNITY, organiser=organiser, name="Odd Cup")
    client.force_login(organiser)
    for url, data in [
        (f"/races/{race.slug}/manage/remove/", {"user": "abc"}),
        (f"/races/{race.slug}/manage/remove/", {}),
        (f"/races/{race.slug}/manage/remove/", {"user": str(organiser.pk)}),
        (f"/races/{race.slug}/manage/explode/", {}),
        (f"/races/{race.slug}/submit/", {"model": "x"}),
        (f"/races/{race.slug}/submit/", {"model": "999999"}),
        ("/races/join/", {"code": "a\u0000b"}),
        ("/races/join/", {"code": "x" * 500}),
        ("/races/community/new/", {"name": "x", "opens_at": "tomorrow", "track": "nope", "total_laps": "-3"}),
        ("/models/", {"name": "x" * 100}),
    ]:
        response = client.post(url, data)
        assert response.status_code in (200, 302, 404), (url, data, response.status_code)
    assert client.get("/races/join/%00/").status_code in (200, 404)
    assert client.get("/submissions/99999999999999999999/").status_code == 404
