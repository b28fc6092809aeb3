"""The garage: vehicles validated by the simulator, stored as vehicle documents, edited row by row; pages and API."""

from __future__ import annotations

import pytest
from django.test import Client
from rest_framework.test import APIClient

from races.models import Vehicle
from races.services import RuleViolation
from races.services.garage import (
    vehicle_build,
    vehicle_choice,
    vehicle_choices,
    vehicle_copy_example,
    vehicle_create,
    vehicle_delete,
    vehicle_examples,
    vehicle_update,
    vehicles_of,
)
from sim.world.vehicle import DiscreteActionSpace, get_vehicle
from sim.world.vehicle import Vehicle as SimVehicle

pytestmark = pytest.mark.django_db

LAB = {"max_steering_angle": 30, "steering_granularity": 5, "max_speed": 1, "speed_granularity": 3}
CAMERA = {"sensor": ["FRONT_FACING_CAMERA"], "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW"}


def discrete(space=None, **extra) -> dict:
    return {**CAMERA, "action_space_type": "discrete", "action_space": space or dict(LAB), **extra}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- the simulator owns the rules ------------------------------------------------------------------------------
def test_an_unedited_table_keeps_its_console_inputs_and_an_edited_one_stands_alone():
    generated = DiscreteActionSpace.from_granularity(**LAB).to_metadata()
    same = DiscreteActionSpace.from_table(generated, LAB)
    assert same.granularity is not None and same.granularity.to_dict() == LAB
    edited = [dict(row) for row in generated]
    edited[14]["speed"] = 1.5
    alone = DiscreteActionSpace.from_table(edited, LAB)
    assert alone.granularity is None and alone.actions[14].speed == 1.5 and alone.n == 15


def test_a_vehicle_is_stored_as_the_simulators_vehicle_document(make_racer):
    racer = make_racer()
    vehicle = vehicle_create(racer, "  lab car ", discrete())
    assert vehicle.name == "lab car"
    assert vehicle.config == SimVehicle.from_file_dict(discrete(name="lab car")).to_file_dict()
    assert vehicle.config["action_space"] == LAB  # the console's four inputs, as the vehicle files show them
    assert SimVehicle.from_file_dict(vehicle.config).action_space.n == 15


def test_an_edited_table_is_stored_action_by_action(make_racer):
    table = DiscreteActionSpace.from_granularity(**LAB).to_metadata()
    table[0] = {"steering_angle": -25.0, "speed": 0.5}
    vehicle = vehicle_create(make_racer(), "tuned", discrete(table), granularity=LAB)
    assert vehicle.config["action_space"][0] == {"steering_angle": -25.0, "speed": 0.5}
    assert len(vehicle.config["action_space"]) == 15


@pytest.mark.parametrize(("document", "field", "words"), [
    (discrete(sensor=["LIDAR"]), "sensor", "exactly one camera"),
    (discrete(sensor=["FRONT_FACING_CAMERA", "STEREO_CAMERAS"]), "sensor", "exactly one camera"),
    (discrete(neural_network="RESNET"), "neural_network", "unknown neural network"),
    (discrete({**LAB, "steering_granularity": 4}), "steering_granularity", "odd number"),
    (discrete({**LAB, "max_speed": 5}), "max_speed", "outside [0.1, 4]"),
    (discrete({**LAB, "max_steering_angle": 45}), "max_steering_angle", "outside"),
    (discrete({**LAB, "steering_granularity": 7, "speed_granularity": 5}), "action_space", "more than the maximum"),
    (discrete([{"steering_angle": 0, "speed": 1}, {"steering_angle": 40, "speed": 1}]), "actions", "action_space[1]"),
    (discrete([{"steering_angle": 0, "speed": 1}]), "action_space", "2 to 30 actions"),
    ({**CAMERA, "action_space_type": "continuous",
      "action_space": {"steering_angle": {"low": 10, "high": -10}, "speed": {"low": 1, "high": 2}}},
     "steering_high", "must be less than high"),
    ({**CAMERA, "action_space_type": "continuous",
      "action_space": {"steering_angle": {"low": -30, "high": 30}, "speed": {"low": 0, "high": 2}}},
     "speed_low", "outside"),
])
def test_every_refusal_names_the_garage_field(make_racer, document, field, words):
    with pytest.raises(RuleViolation) as refused:
        vehicle_create(make_racer(), "bad", document)
    assert refused.value.field == field and words in refused.value.message
    assert not Vehicle.objects.exists()


def test_names_are_unique_per_racer_and_updates_rebuild_the_document(make_racer):
    racer, other = make_racer(), make_racer()
    first = vehicle_create(racer, "car", discrete())
    with pytest.raises(RuleViolation, match="already have a vehicle named 'car'") as refused:
        vehicle_create(racer, "car", discrete())
    assert refused.value.field == "name"
    vehicle_create(other, "car", discrete())  # another racer's garage is theirs
    stereo = discrete(sensor=["STEREO_CAMERAS", "LIDAR"])
    vehicle_update(first, "stereo car", stereo)
    first.refresh_from_db()
    assert first.name == "stereo car" and first.config["sensor"] == ["STEREO_CAMERAS", "LIDAR"]
    vehicle_delete(first)
    assert list(vehicles_of(racer)) == []


def test_examples_are_the_simulators_and_copy_with_a_fresh_name(make_racer):
    racer = make_racer()
    examples = {example.slug: example for example in vehicle_examples()}
    assert set(examples) == {"continuous_camera", "original_deepracer", "pitlane_racer", "stereo_lidar"}
    assert examples["original_deepracer"].config == get_vehicle("original_deepracer").to_file_dict()
    first = vehicle_copy_example(racer, "stereo_lidar")
    second = vehicle_copy_example(racer, "stereo_lidar")
    assert first.name == examples["stereo_lidar"].name and second.name == f"{first.name} (2)"
    assert second.config == examples["stereo_lidar"].config | {"name": second.name}
    with pytest.raises(RuleViolation):
        vehicle_copy_example(racer, "no_such_car")


def test_a_training_choice_is_a_snapshot_of_the_racers_own_vehicles_or_an_example(make_racer):
    racer, other = make_racer(), make_racer()
    mine = vehicle_create(racer, "mine", discrete())
    theirs = vehicle_create(other, "theirs", discrete())
    keys = [key for key, _, _ in vehicle_choices(racer)]
    assert keys[0] == f"garage:{mine.pk}" and "example:original_deepracer" in keys and f"garage:{theirs.pk}" not in keys
    assert vehicle_choice(racer, f"garage:{mine.pk}") == mine.config
    assert vehicle_choice(racer, "example:pitlane_racer")["name"] == "Pitlane racer"
    for key in (f"garage:{theirs.pk}", "garage:x", "example:nope", ""):
        with pytest.raises(RuleViolation) as refused:
            vehicle_choice(racer, key)
        assert refused.value.field == "vehicle"


def test_vehicle_build_refuses_what_is_not_a_document():
    with pytest.raises(RuleViolation):
        vehicle_build(["not", "a", "dict"])


# --- pages ------------------------------------------------------------------------------------------------------
def form_data(**changes) -> dict:
    table = DiscreteActionSpace.from_granularity(**LAB).to_metadata()
    data = {"name": "web car", "camera": "FRONT_FACING_CAMERA", "lidar": "",
            "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", "action_space_type": "discrete", **LAB,
            "steering_low": -30, "steering_high": 30, "speed_low": 0.5, "speed_high": 1,
            "action_steering": [row["steering_angle"] for row in table],
            "action_speed": [row["speed"] for row in table]}
    return data | changes


def test_the_garage_page_lists_my_vehicles_and_the_examples(make_racer):
    racer = make_racer()
    vehicle_create(racer, "My Speedster", discrete())
    page = client_for(racer).get("/garage/")
    text = page.content.decode()
    assert page.status_code == 200 and "My Speedster" in text and "Head-to-head racer (stereo cameras + lidar)" in text
    assert text.count("data-fan=") == 5 and "Copy to my garage" in text
    assert Client().get("/garage/").status_code == 302  # sign-in first


def test_creating_a_vehicle_with_an_edited_table_on_the_page(make_racer):
    racer = make_racer()
    data = form_data()
    data["action_speed"][14] = "2.5"
    response = client_for(racer).post("/garage/new/", data)
    assert response.status_code == 302 and response["Location"] == "/garage/"
    vehicle = vehicles_of(racer).get()
    assert vehicle.config["action_space"][14] == {"steering_angle": 30.0, "speed": 2.5}


def test_the_unedited_table_is_saved_as_the_console_inputs(make_racer):
    racer = make_racer()
    assert client_for(racer).post("/garage/new/", form_data(lidar="SECTOR_LIDAR")).status_code == 302
    config = vehicles_of(racer).get().config
    assert config["action_space"] == LAB and config["sensor"] == ["FRONT_FACING_CAMERA", "SECTOR_LIDAR"]


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"name": ""}, "name", "required"),
    ({"camera": "LEFT_CAMERA"}, "camera", "valid choice"),
    ({"neural_network": "X"}, "neural_network", "valid choice"),
    ({"max_speed": "9"}, "max_speed", "outside [0.1, 4]"),
    ({"action_speed": ["0.33"] * 14 + ["7"]}, "actions", "action_space[14].speed"),
    ({"action_steering": ["x"] * 15}, "actions", "must be a number"),
    ({"action_space_type": "continuous", "speed_low": ""}, "speed_low", "Required for this action space"),
    ({"action_space_type": "continuous", "speed_low": "2", "speed_high": "1"}, "speed_high", "less than high"),
])
def test_the_vehicle_form_shows_each_error_on_its_field(make_racer, changes, field, words):
    racer = make_racer()
    response = client_for(racer).post("/garage/new/", form_data(**changes))
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors and words in " ".join(errors[field]), errors
    assert not vehicles_of(racer).exists()


def test_regenerate_rebuilds_the_table_from_the_four_inputs_without_saving(make_racer):
    racer = make_racer()
    data = form_data(steering_granularity="7", max_speed="3", regenerate="1")
    response = client_for(racer).post("/garage/new/", data)
    assert response.status_code == 200 and not vehicles_of(racer).exists()
    table = response.context["form"].table
    assert len(table) == 21 and table[-1] == {"steering_angle": 30.0, "speed": 3.0}


def test_editing_a_vehicle_and_another_racers_vehicle_is_a_404(make_racer):
    racer, other = make_racer(), make_racer()
    vehicle = vehicle_create(racer, "car", discrete())
    theirs = vehicle_create(other, "theirs", discrete())
    client = client_for(racer)
    page = client.get(f"/garage/{vehicle.pk}/")
    assert page.status_code == 200 and page.context["form"].initial["steering_granularity"] == 5
    assert client.post(f"/garage/{vehicle.pk}/", form_data(name="renamed", camera="STEREO_CAMERAS")).status_code == 302
    vehicle.refresh_from_db()
    assert vehicle.name == "renamed" and vehicle.config["sensor"] == ["STEREO_CAMERAS"]
    assert client.get(f"/garage/{theirs.pk}/").status_code == 404
    assert client.post(f"/garage/{theirs.pk}/delete/").status_code == 404
    assert client.post(f"/garage/{vehicle.pk}/delete/").status_code == 302 and not vehicles_of(racer).exists()


def test_copying_an_example_from_the_page_opens_the_copy(make_racer):
    racer = make_racer()
    response = client_for(racer).post("/garage/examples/pitlane_racer/copy/")
    vehicle = vehicles_of(racer).get()
    assert response["Location"] == f"/garage/{vehicle.pk}/" and vehicle.name == "Pitlane racer"


def test_the_live_action_table_endpoint(make_racer):
    client = client_for(make_racer())
    table = client.get("/garage/action-table.json", LAB).json()["actions"]
    assert len(table) == 15 and table[0] == {"steering_angle": -30.0, "speed": 0.33}
    refused = client.get("/garage/action-table.json", {**LAB, "steering_granularity": 4})
    assert refused.status_code == 400 and refused.json()["field"] == "steering_granularity"
    assert client.get("/garage/action-table.json", {**LAB, "max_speed": "fast"}).status_code == 400


# --- API --------------------------------------------------------------------------------------------------------
def api_for(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_the_vehicles_api_lists_creates_replaces_and_deletes_only_my_vehicles(make_racer):
    racer, other = make_racer(), make_racer()
    api = api_for(racer)
    created = api.post("/api/vehicles/", {"name": "api car", **discrete()}, format="json")
    assert created.status_code == 201 and created.json()["config"]["action_space"] == LAB
    pk = created.json()["id"]
    refused = api.post("/api/vehicles/", {"name": "bad", **discrete({**LAB, "max_speed": 9})}, format="json")
    assert refused.status_code == 400 and "Maximum speed" in refused.json()["detail"]
    assert api.post("/api/vehicles/", {"name": "x", **discrete(sensor=["RADAR"])}, format="json").status_code == 400
    replaced = api.put(f"/api/vehicles/{pk}/", {"name": "api car 2", **discrete(action_space_type="continuous",
                       action_space={"steering_angle": {"low": -20, "high": 20}, "speed": {"low": 1, "high": 3}})},
                       format="json")
    assert replaced.status_code == 200 and replaced.json()["config"]["action_space_type"] == "continuous"
    assert [v["name"] for v in api.get("/api/vehicles/").json()["results"]] == ["api car 2"]
    theirs = vehicle_create(other, "theirs", discrete())
    assert api.get(f"/api/vehicles/{theirs.pk}/").status_code == 404
    assert api.delete(f"/api/vehicles/{theirs.pk}/").status_code == 404
    assert api.delete(f"/api/vehicles/{pk}/").status_code == 204
    assert APIClient().get("/api/vehicles/").status_code == 401
    examples = APIClient().get("/api/vehicles/examples/").json()
    assert [e["slug"] for e in examples] == [e.slug for e in vehicle_examples()]
