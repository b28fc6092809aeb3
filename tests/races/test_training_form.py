"""The create-model page: every field checked with its error beside it, and a valid form made into exactly the
``TrainingRequest`` that ``races.services.training.training_start`` takes."""

from __future__ import annotations

import pytest
from django.test import Client

from races.forms import TrainingForm
from races.models import Race, Track
from races.services.garage import vehicle_create
from races.services.training import TrainingRequest
from sim.learn.hyperparameters import RANGES, Hyperparameters
from sim.world.reward_examples import EXAMPLES
from sim.world.vehicle import get_vehicle

pytestmark = pytest.mark.django_db
URL = "/models/new/training/"


@pytest.fixture
def tracks(technical_track):
    return {track.slug: track for track in Track.objects.all()}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form_data(tracks, **changes) -> dict:
    data = {"name": "oval-ppo", "description": " first try ", "track": tracks["pitlane_oval"].slug,
            "direction": "counterclockwise", "vehicle": "example:original_deepracer", "race_type": "TIME_TRIAL",
            "reward_function": EXAMPLES["example_3_penalize_slow"], "max_minutes": "30", "best_by": "progress",
            "loss_type": "huber", "clone_of": "", "submit_to": ""}
    defaults = Hyperparameters().to_dict()
    data |= {name: "" if defaults[name] is None else defaults[name] for name in RANGES}
    return data | changes


def test_a_valid_form_builds_exactly_the_training_request(make_racer, make_race, make_model, tracks):
    racer = make_racer()
    vehicle = vehicle_create(racer, "seven", {"sensor": ["FRONT_FACING_CAMERA"],
                                              "neural_network": "DEEP_CONVOLUTIONAL_NETWORK",
                                              "action_space_type": "discrete",
                                              "action_space": {"max_steering_angle": 30, "steering_granularity": 7,
                                                               "max_speed": 3, "speed_granularity": 3}})
    race = make_race(name="Open Cup")
    model = make_model(racer, "old")
    form = TrainingForm(form_data(
        tracks, vehicle=f"garage:{vehicle.pk}",
        extra_tracks=[tracks["pitlane_technical"].slug, tracks["pitlane_oval"].slug],
        race_type="OBJECT_AVOIDANCE", best_by="reward", clone_of=model.pk, submit_to=race.pk, learning_rate="0.0001",
        batch_size="128", max_iteration_steps="3000"), user=racer)
    assert form.is_valid(), form.errors
    request = form.training_request()
    assert request == TrainingRequest(
        name="oval-ppo", description="first try", tracks=(tracks["pitlane_oval"], tracks["pitlane_technical"]),
        direction="counterclockwise", vehicle=vehicle.config, race_type="OBJECT_AVOIDANCE",
        reward_function_source=EXAMPLES["example_3_penalize_slow"],
        hyperparameters=Hyperparameters(learning_rate=1e-4, batch_size=128, max_iteration_steps=3000).to_dict(),
        max_minutes=30.0,
        best_by="reward", clone_of=model, submit_to=race)
    vehicle.config = {}  # the request holds a snapshot: later garage edits change nothing
    assert request.vehicle["action_space"]["steering_granularity"] == 7


def test_an_example_vehicle_is_its_document(make_racer, tracks):
    form = TrainingForm(form_data(tracks), user=make_racer())
    assert form.is_valid(), form.errors
    assert form.training_request().vehicle == get_vehicle("original_deepracer").to_file_dict()
    assert form.training_request().clone_of is None and form.training_request().submit_to is None
    assert form.training_request().hyperparameters["max_iteration_steps"] is None  # episodes only, as the console


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"name": ""}, "name", "required"),
    ({"name": "x" * 65}, "name", "at most 64"),
    ({"description": "d" * 2001}, "description", "at most 2000"),
    ({"track": "nowhere"}, "track", "valid choice"),
    ({"extra_tracks": ["nowhere"]}, "extra_tracks", "valid choice"),
    ({"direction": "sideways"}, "direction", "valid choice"),
    ({"vehicle": "example:spaceship"}, "vehicle", "valid choice"),
    ({"race_type": "HEAD_TO_HEAD"}, "race_type", "valid choice"),
    ({"reward_function": ""}, "reward_function", "required"),
    ({"reward_function": "def reward_function(params)\n    return 1.0\n"}, "reward_function", "line 1"),
    ({"reward_function": "import os\ndef reward_function(params):\n    return 1.0\n"}, "reward_function",
     "import of 'os' is not allowed"),
    ({"reward_function": "#" * 70_000}, "reward_function", "limit is 64 kB"),
    ({"batch_size": "100"}, "batch_size", "valid choice"),
    ({"num_epochs": "11"}, "num_epochs", "less than or equal to 10"),
    ({"learning_rate": "0.01"}, "learning_rate", "between 1e-08 and 0.001"),
    ({"entropy": "-1"}, "entropy", "between 0 and 1"),
    ({"discount_factor": "1.5"}, "discount_factor", "between 0 and 1"),
    ({"loss_type": "hinge"}, "loss_type", "valid choice"),
    ({"episodes_between_training": "4"}, "episodes_between_training", "greater than or equal to 5"),
    ({"clip_epsilon": "0.9"}, "clip_epsilon", "between 0.01 and 0.5"),
    ({"gae_lambda": "nan"}, "gae_lambda", ""),
    ({"max_iteration_steps": "99"}, "max_iteration_steps", "greater than or equal to 100"),
    ({"max_iteration_steps": "2.5"}, "max_iteration_steps", "whole number"),
    ({"max_minutes": "0"}, "max_minutes", "greater than or equal to 1"),
    ({"max_minutes": "100000"}, "max_minutes", "less than or equal to 1440"),
    ({"best_by": "luck"}, "best_by", "valid choice"),
    ({"clone_of": "999999"}, "clone_of", "valid choice"),
    ({"submit_to": "999999"}, "submit_to", "valid choice"),
])
def test_every_field_shows_its_error_on_the_page(make_racer, tracks, changes, field, words):
    response = client_for(make_racer()).post(URL, form_data(tracks, **changes))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and words in " ".join(errors[field]), errors
    assert 'class="field has-error' in response.content.decode() or field == "reward_function"


def test_directions_are_those_each_track_is_raced_in(make_racer, tracks):
    racer = make_racer()
    oval, technical = tracks["pitlane_oval"], tracks["pitlane_technical"]
    technical.directions = Track.Directions.CLOCKWISE
    technical.save()
    form = TrainingForm(form_data(tracks, track=technical.slug), user=racer)
    assert not form.is_valid() and "clockwise only" in form.errors["direction"][0]
    form = TrainingForm(form_data(tracks, extra_tracks=[technical.slug]), user=racer)
    assert not form.is_valid() and form.errors["extra_tracks"] == [f"Not raced counterclockwise: {technical.title}."]
    assert oval.supports("counterclockwise")


def test_another_racers_vehicle_model_and_a_race_they_cannot_enter_are_refused(make_racer, make_race, make_model,
                                                                               tracks):
    racer, other = make_racer(), make_racer()
    theirs = vehicle_create(other, "theirs", get_vehicle("pitlane_racer").to_file_dict())
    their_model = make_model(other, "their-model")
    private = make_race(kind=Race.Kind.COMMUNITY, organiser=other, name="Private Cup")
    form = TrainingForm(form_data(tracks, vehicle=f"garage:{theirs.pk}", clone_of=their_model.pk,
                                  submit_to=private.pk), user=racer)
    assert not form.is_valid()
    assert set(form.errors) == {"vehicle", "clone_of", "submit_to"}


def test_the_page_offers_my_vehicles_the_examples_and_the_lab_examples(make_racer, tracks):
    racer = make_racer()
    vehicle = vehicle_create(racer, "My seven", get_vehicle("pitlane_racer").to_file_dict())
    page = client_for(racer).get(URL, {"vehicle": f"garage:{vehicle.pk}"})
    text = page.content.decode()
    assert page.status_code == 200 and "My seven" in text and "The Original DeepRacer (example)" in text
    assert page.context["form"]["vehicle"].value() == f"garage:{vehicle.pk}"
    assert "Example 2: follow the centre line, penalise zig-zag steering" in text
    assert "vendor/codemirror/codemirror.js" in text and 'data-validate-url="/api/reward-functions/validate/"' in text
    assert Client().get(URL).status_code == 302


def test_a_valid_post_starts_a_training_job_and_opens_its_live_page(make_racer, tracks):
    from races.models import TrainingJob

    racer = make_racer()
    response = client_for(racer).post(URL, form_data(tracks))
    job = TrainingJob.objects.get(owner=racer)
    assert response.status_code == 302 and response["Location"] == f"/training/{job.pk}/"
    assert job.status == "queued" and job.reward_function_source.startswith("def reward_function")


def test_a_warm_start_is_ticked_on_the_form_and_refused_with_a_clone_or_a_continuous_car(make_racer, make_model,
                                                                                        tracks):
    from races.models import TrainingJob

    racer = make_racer()
    client = client_for(racer)
    html = client.get(URL).content.decode()
    assert 'type="checkbox" name="warm_start"' in html and "Warm start" in html
    both = client.post(URL, form_data(tracks, warm_start="on", clone_of=make_model(racer, "old").pk))
    assert both.status_code == 400 and "not both" in " ".join(both.context["form"].errors["warm_start"])
    smooth = client.post(URL, form_data(tracks, warm_start="on", vehicle="example:continuous_camera"))
    assert smooth.status_code == 400 and "discrete" in " ".join(smooth.context["form"].errors["warm_start"])
    assert client.post(URL, form_data(tracks, warm_start="on")).status_code == 302
    job = TrainingJob.objects.get(owner=racer)
    assert job.warm_start is True
    assert "warm start from the racing-line driver" in client.get(f"/training/{job.pk}/").content.decode()


def test_a_refusal_of_the_training_service_shows_on_its_form_field(make_racer, tracks):
    from races.services.training import training_quota_update

    training_quota_update(max_concurrent_per_racer=1, minutes_per_racer_per_day=5, max_concurrent_total=1)
    response = client_for(make_racer()).post(URL, form_data(tracks) | {"max_minutes": "30"})
    assert response.status_code == 400
    assert "come back" in " ".join(response.context["form"].errors["max_minutes"])


# --- the model page: what training packed ---------------------------------------------------------------------
def test_the_model_page_highlights_the_reward_function_and_redraws_the_reward_graph(make_racer, tmp_path):
    import io
    import json

    from races.services import model_upload
    from sim.io.archive import write_model_archive
    from sim.learn.networks import build_actor_critic
    from sim.world.vehicle import DiscreteActionSpace, Vehicle
    from tests.races.conftest import TEST_NETWORK

    vehicle = Vehicle(sensors=("FRONT_FACING_CAMERA",), neural_network=TEST_NETWORK,
                      action_space=DiscreteActionSpace.from_granularity(30, 3, 1, 2))
    iterations = [{"iteration": i, "mean_reward": 10.0 * i, "mean_progress": 5.0 * i, "elapsed_seconds": 60.0 * i,
                   "evaluation_mean_progress": 4.0 * i, "is_best": i == 2} for i in range(4)]
    iterations.append({"iteration": "bad", "mean_reward": "nan"})  # untrusted rows are skipped, never drawn
    episodes = [{"iteration": i, "reward": 9.0 * i, "progress": 5.0, "phase": "training"} for i in range(4)]
    archive = write_model_archive(
        tmp_path / "model.tar.gz", vehicle, build_actor_critic(vehicle, seed=2).state_dict(),
        reward_function_source=EXAMPLES["example_2_prevent_zig_zag"],
        training_metrics={"iterations.json": json.dumps({"iterations": iterations}),
                          "episodes.json": json.dumps({"episodes": episodes}),
                          "reward_graph.png": b"\x89PNG not ours to serve"})
    racer = make_racer()
    model = model_upload(racer, "trained", io.BytesIO(archive.read_bytes()))
    client = client_for(racer)
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert 'class="code-editor readonly"' in page and "data-fallback" in page
    assert '<span class="tok-keyword">def</span>' in page  # the server's highlighting, shown before the editor loads
    assert f'src="/models/{model.pk}/reward-graph.png"' in page
    graph = client.get(f"/models/{model.pk}/reward-graph.png")
    assert graph.status_code == 200 and graph["Content-Type"] == "image/png"
    assert graph.content.startswith(b"\x89PNG\r\n") and b"not ours" not in graph.content  # redrawn, not the archive's
    other = client_for(make_racer())
    assert other.get(f"/models/{model.pk}/reward-graph.png").status_code == 404


def test_a_model_without_metrics_has_no_graph(make_racer, archive_bytes):
    import io

    from races.services import model_upload

    racer = make_racer()
    model = model_upload(racer, "bare", io.BytesIO(archive_bytes))
    client = client_for(racer)
    assert "The archive holds no training metrics." in client.get(f"/models/{model.pk}/").content.decode()
    assert client.get(f"/models/{model.pk}/reward-graph.png").status_code == 404


def test_the_track_offered_first_is_that_of_the_race_closing_soonest(make_racer, make_race, tracks):
    racer = make_racer()
    make_race(track=tracks["pitlane_technical"])
    assert client_for(racer).get(URL).context["form"]["track"].value() == "pitlane_technical"
