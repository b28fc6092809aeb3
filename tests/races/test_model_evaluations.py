"""A racer evaluates their own model on any track (the console's "Evaluate"): the rules of the request, the real
sandboxed evaluation with its lap table, trajectory, replay and simtrace, privacy, and its place in the queue."""

from __future__ import annotations

import io

import pytest

from evaluator import sandbox
from evaluator.engine import pending_in_fair_order
from races.models import ModelEvaluation, Race, Track
from races.services import RuleViolation, model_upload, submission_create, track_install_builtins
from races.services.model_evaluations import MAX_UNFINISHED_PER_RACER, model_evaluation_create
from tests.evaluator.processes import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tracks(db) -> dict[str, Track]:
    return {track.slug: track for track in track_install_builtins()}


def test_a_racer_evaluates_only_their_own_models_on_tracks_and_settings_that_exist(make_racer, make_model, tracks):
    racer, other = make_racer("Ada"), make_racer("Bob")
    model = make_model(racer)
    oval = tracks["pitlane_oval"]
    with pytest.raises(RuleViolation, match="your own models") as refused:
        model_evaluation_create(other, model, oval, "counterclockwise")
    assert refused.value.field == "model"
    with pytest.raises(RuleViolation, match="alone") as refused:
        model_evaluation_create(racer, model, oval, "counterclockwise", race_type=Race.RaceType.HEAD_TO_HEAD)
    assert refused.value.field == "race_type"
    with pytest.raises(RuleViolation, match="1 to 10 laps"):
        model_evaluation_create(racer, model, oval, "counterclockwise", total_laps=11)
    oval.directions = Track.Directions.COUNTERCLOCKWISE
    oval.save()
    with pytest.raises(RuleViolation, match="counterclockwise only") as refused:
        model_evaluation_create(racer, model, oval, "clockwise")
    assert refused.value.field == "direction"
    assert not ModelEvaluation.objects.exists()


def test_a_racer_has_a_few_evaluations_waiting_at_most(make_racer, make_model, tracks):
    racer = make_racer()
    model = make_model(racer)
    for _ in range(MAX_UNFINISHED_PER_RACER):
        model_evaluation_create(racer, model, tracks["pitlane_oval"], "counterclockwise")
    with pytest.raises(RuleViolation, match=f"You have {MAX_UNFINISHED_PER_RACER} evaluations waiting"):
        model_evaluation_create(racer, model, tracks["pitlane_oval"], "counterclockwise")
    ModelEvaluation.objects.filter(pk=ModelEvaluation.objects.first().pk).update(status="scored")
    model_evaluation_create(racer, model, tracks["pitlane_oval"], "counterclockwise")  # one finished: room again


def test_race_submissions_go_before_a_racers_own_evaluations(make_racer, make_model, make_race, tracks):
    racer, rival = make_racer(), make_racer()
    evaluation = model_evaluation_create(racer, make_model(racer), tracks["pitlane_oval"], "counterclockwise")
    submission = submission_create(rival, make_race(), make_model(rival))
    assert [(a.target_kind, a.target_id) for a in pending_in_fair_order()] == [
        ("submission", submission.pk), ("model_evaluation", evaluation.pk)]


@pytest.mark.slow
@pytest.mark.skipif(not sandbox.bubblewrap_works(), reason="bubblewrap cannot run on this machine")
def test_an_evaluation_races_the_model_in_the_sandbox_and_only_its_owner_sees_it(
        worker, make_racer, lapping_archive, tracks, client):
    racer, other = make_racer("Ada"), make_racer("Bob")
    model = model_upload(racer, "clone", io.BytesIO(lapping_archive))
    client.force_login(racer)
    response = client.post(f"/models/{model.pk}/evaluate/", {
        "track": tracks["pitlane_oval"].pk, "direction": "counterclockwise", "race_type": "TIME_TRIAL",
        "total_laps": 2})
    evaluation = ModelEvaluation.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/evaluations/{evaluation.pk}/"
    wait_for(lambda: ModelEvaluation.objects.get(pk=evaluation.pk).status in ("scored", "failed"), 180, "the result")
    evaluation.refresh_from_db()
    assert evaluation.status == "scored", evaluation.failure_reason
    assert [lap["episode_status"] for lap in evaluation.laps] == ["Lap complete", "Lap complete"]
    assert 7_000 < evaluation.score["best_lap_ms"] < 25_000

    page = client.get(f"/evaluations/{evaluation.pk}/").content.decode()
    assert "Pitlane Oval" in page and "Lap complete" in page and "Download the simtrace CSV" in page
    live = client.get(f"/evaluations/{evaluation.pk}/status.json").json()
    assert live["status"] == "scored" and len(live["run"]["trace"]["x"]) > 100
    assert client.get(f"/evaluations/{evaluation.pk}/trajectory.png").content[:4] == b"\x89PNG"
    simtrace = client.get(f"/evaluations/{evaluation.pk}/simtrace.csv")
    assert b"".join(simtrace.streaming_content).startswith(b"episode,steps,X,Y")
    model_page = client.get(f"/models/{model.pk}/").content.decode()
    assert f'href="/evaluations/{evaluation.pk}/"' in model_page and "Evaluate on a track" in model_page
    assert client.get(f"/api/evaluations/{evaluation.pk}/").json()["run"]["best_lap"] == live["run"]["best_lap"]

    client.force_login(other)  # nobody else sees it, not even that it exists
    for url in ("", "status.json", "trajectory.png", "simtrace.csv"):
        assert client.get(f"/evaluations/{evaluation.pk}/{url}").status_code == 404
    assert client.get(f"/api/evaluations/{evaluation.pk}/").status_code == 404
    assert client.post(f"/models/{model.pk}/evaluate/", {"track": tracks["pitlane_oval"].pk}).status_code == 404


def test_the_api_starts_and_lists_evaluations_and_explains_refusals(make_racer, make_model, tracks, client):
    racer = make_racer()
    model = make_model(racer)
    client.force_login(racer)
    url = f"/api/models/{model.pk}/evaluations/"
    created = client.post(url, {"track": "pitlane_speedway", "direction": "clockwise", "total_laps": 5},
                          content_type="application/json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["track"], body["direction"], body["total_laps"], body["status"]) == (
        "pitlane_speedway", "clockwise", 5, "queued")
    assert body["queue_position"] == 1
    assert [e["id"] for e in client.get(url).json()["results"]] == [body["id"]]
    too_many = client.post(url, {"track": "pitlane_oval", "total_laps": 50}, content_type="application/json")
    assert too_many.status_code == 400 and "total_laps" in too_many.json()
    assert client.post(url, {"track": "no-such-track"}, content_type="application/json").status_code == 404
    head_to_head = client.post(url, {"track": "pitlane_oval", "race_type": "HEAD_TO_HEAD"},
                               content_type="application/json")
    assert head_to_head.status_code == 400 and "race_type" in head_to_head.json()
    client.force_login(make_racer())
    assert client.post(url, {"track": "pitlane_oval"}, content_type="application/json").status_code == 404
