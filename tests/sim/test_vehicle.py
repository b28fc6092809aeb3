"""The garage: action spaces as the console builds them, model_metadata.json mapping, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sim.world.vehicle import (
    DEEP_CONVOLUTIONAL_NETWORK,
    DEEP_CONVOLUTIONAL_NETWORK_SHALLOW,
    FRONT_FACING_CAMERA,
    LIDAR,
    SECTOR_LIDAR,
    STEREO_CAMERAS,
    Action,
    ContinuousActionSpace,
    DiscreteActionSpace,
    Vehicle,
    VehicleError,
    get_vehicle,
    list_vehicles,
    load_vehicle,
    save_vehicle,
)

# DRfC's defaults/model_metadata.json and model_metadata_cont.json (research/deepracer-platform.md §2.3).
DRFC_DISCRETE = {
    "action_space": [
        {"steering_angle": -30, "speed": 0.6},
        {"steering_angle": -15, "speed": 0.6},
        {"steering_angle": 0, "speed": 0.6},
        {"steering_angle": 15, "speed": 0.6},
        {"steering_angle": 30, "speed": 0.6},
    ],
    "sensor": ["FRONT_FACING_CAMERA"],
    "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
    "training_algorithm": "clipped_ppo",
    "action_space_type": "discrete",
    "version": "5",
}
DRFC_CONTINUOUS = {
    "action_space": {"speed": {"high": 2, "low": 1}, "steering_angle": {"high": 30, "low": -30}},
    "sensor": ["FRONT_FACING_CAMERA"],
    "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
    "training_algorithm": "clipped_ppo",
    "action_space_type": "continuous",
    "version": "5",
}


def test_the_labs_action_space_has_15_actions_in_console_order() -> None:
    space = DiscreteActionSpace.from_granularity(
        max_steering_angle=30, steering_granularity=5, max_speed=1, speed_granularity=3
    )
    assert space.n == 15
    # Steering from hardest right to hardest left, speeds ascending within each angle (AWS console order).
    assert [(a.steering_angle, a.speed) for a in space.actions] == [
        (angle, speed) for angle in (-30, -15, 0, 15, 30) for speed in (0.33, 0.67, 1.0)
    ]


def test_granularity_examples_from_the_lab() -> None:
    speeds = DiscreteActionSpace.from_granularity(30, 3, 3, 3)
    assert sorted({a.speed for a in speeds.actions}) == [1.0, 2.0, 3.0]
    seven = DiscreteActionSpace.from_granularity(30, 7, 2, 2)
    assert sorted({a.steering_angle for a in seven.actions}) == [-30, -20, -10, 0, 10, 20, 30]
    assert not any(np.signbit(a.steering_angle) and a.steering_angle == 0 for a in seven.actions)  # no -0.0


@pytest.mark.parametrize(
    ("arguments", "field", "message"),
    [
        ((30, 4, 1, 3), "steering_granularity", "odd number >= 3"),
        ((30, 1, 1, 3), "steering_granularity", "odd number >= 3"),
        ((31, 5, 1, 3), "max_steering_angle", "outside [1, 30]"),
        ((30, 5, 4.5, 3), "max_speed", "outside [0.1, 4]"),
        ((30, 5, 0.2, 3), "speed_granularity", "below 0.1 m/s"),
        ((30, 5, 1, 0), "speed_granularity", "between 1 and 10"),
        ((30, 7, 4, 5), "action_space", "35 actions, more than the maximum of 30"),
        ((30, 5.0, 1, 3), "steering_granularity", "must be an integer"),
    ],
)
def test_invalid_granularity_names_the_field(arguments: tuple, field: str, message: str) -> None:
    with pytest.raises(VehicleError, match=message.replace("[", r"\[")) as caught:
        DiscreteActionSpace.from_granularity(*arguments)
    assert caught.value.field == field


def test_actions_are_checked_one_by_one() -> None:
    with pytest.raises(VehicleError, match=r"steering_angle: 31° is outside \[-30, 30\]"):
        Action(31, 1)
    with pytest.raises(VehicleError, match=r"speed: 0.05 m/s is outside \[0.1, 4\]"):
        Action(0, 0.05)
    with pytest.raises(VehicleError, match="must be a number, got bool"):
        Action(0, True)
    with pytest.raises(VehicleError, match="finite"):
        Action(float("nan"), 1)
    with pytest.raises(VehicleError, match="2 to 30 actions, got 1"):
        DiscreteActionSpace((Action(0, 1),))
    with pytest.raises(VehicleError, match="2 to 30 actions, got 31"):
        DiscreteActionSpace(tuple(Action(0, 1) for _ in range(31)))


def test_continuous_ranges_must_be_ordered_and_in_limits() -> None:
    with pytest.raises(VehicleError, match=r"action_space.steering_angle: low \(10\) must be less than high \(10\)"):
        ContinuousActionSpace(10, 10, 1, 2)
    with pytest.raises(VehicleError, match=r"action_space.speed: low \(2\) must be less than high \(1\)"):
        ContinuousActionSpace(-30, 30, 2, 1)
    with pytest.raises(VehicleError, match=r"action_space.speed.high: 5 m/s is outside"):
        ContinuousActionSpace(-30, 30, 1, 5)


@pytest.mark.parametrize(
    ("sensors", "message"),
    [
        ([LIDAR], "exactly one camera"),
        ([FRONT_FACING_CAMERA, STEREO_CAMERAS], "exactly one camera"),
        ([FRONT_FACING_CAMERA, LIDAR, SECTOR_LIDAR], "at most one lidar"),
        (["LEFT_CAMERA"], "unknown sensor 'LEFT_CAMERA'"),
        ([FRONT_FACING_CAMERA, FRONT_FACING_CAMERA], "listed twice"),
        ("FRONT_FACING_CAMERA", "must be a list"),
    ],
)
def test_sensor_combinations(sensors: list, message: str) -> None:
    with pytest.raises(VehicleError, match=message) as caught:
        Vehicle(sensors, DEEP_CONVOLUTIONAL_NETWORK_SHALLOW, DiscreteActionSpace.from_granularity())
    assert caught.value.field == "sensor"


def test_sensors_are_stored_camera_first() -> None:
    vehicle = Vehicle([LIDAR, STEREO_CAMERAS], DEEP_CONVOLUTIONAL_NETWORK, ContinuousActionSpace())
    assert vehicle.sensors == (STEREO_CAMERAS, LIDAR)
    assert (vehicle.camera, vehicle.lidar) == (STEREO_CAMERAS, LIDAR)


@pytest.mark.parametrize("document", [DRFC_DISCRETE, DRFC_CONTINUOUS], ids=["discrete", "continuous"])
def test_model_metadata_round_trip(document: dict) -> None:
    vehicle = Vehicle.from_model_metadata(document)
    metadata = vehicle.to_model_metadata()
    assert json.loads(json.dumps(metadata)) == json.loads(json.dumps(document))  # -30 == -30.0
    assert Vehicle.from_model_metadata(metadata) == vehicle


def test_aws_console_metadata_with_index_and_lidar_config_is_read() -> None:
    document = dict(DRFC_DISCRETE, version="4.0", lidar_config={"num_sectors": 8})
    document["action_space"] = [dict(action, index=i) for i, action in enumerate(DRFC_DISCRETE["action_space"])]
    assert Vehicle.from_model_metadata(document).action_space.n == 5
    document["action_space"][2]["index"] = 7
    with pytest.raises(VehicleError, match=r"action_space\[2\]: 'index' is 7 but the action is at position 2"):
        Vehicle.from_model_metadata(document)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"training_algorithm": "sac"}, "training_algorithm", "'sac' is not supported"),
        ({"training_algorithm": "dqn"}, "training_algorithm", "unknown training algorithm 'dqn'"),
        ({"neural_network": "RESNET"}, "neural_network", "unknown neural network 'RESNET'"),
        ({"action_space_type": "hybrid"}, "action_space_type", "'discrete' or 'continuous'"),
        ({"version": "five"}, "version", "version number"),
        ({"action_space": {"steering_angle": {"low": -30, "high": 30}}}, "action_space", "is a list"),
        ({"extra": 1}, "model_metadata", "unknown key(s): extra"),
    ],
)
def test_metadata_errors_name_the_field(change: dict, field: str, message: str) -> None:
    with pytest.raises(VehicleError) as caught:
        Vehicle.from_model_metadata(dict(DRFC_DISCRETE, **change))
    assert caught.value.field == field
    assert message in str(caught.value)


def test_missing_metadata_keys_and_bad_actions_are_named() -> None:
    incomplete = {key: value for key, value in DRFC_DISCRETE.items() if key != "sensor"}
    with pytest.raises(VehicleError, match="missing key"):
        Vehicle.from_model_metadata(incomplete)
    bad = dict(DRFC_DISCRETE, action_space=[{"steering_angle": -30, "speed": 0.6}, {"steering_angle": 45, "speed": 1}])
    with pytest.raises(VehicleError) as caught:
        Vehicle.from_model_metadata(bad)
    assert caught.value.field == "action_space[1].steering_angle"
    with pytest.raises(VehicleError, match=r"action_space\[0\]: unknown key\(s\): throttle"):
        Vehicle.from_model_metadata(
            dict(DRFC_DISCRETE, action_space=[{"steering_angle": 0, "speed": 1, "throttle": 1}])
        )


def test_discrete_actions_to_commands_batched() -> None:
    vehicle = get_vehicle("original_deepracer")
    steering, speed = vehicle.action_to_command(np.array([0, 7, 14]))
    assert steering.tolist() == [-30.0, 0.0, 30.0]
    assert speed.tolist() == [0.33, 0.67, 1.0]
    with pytest.raises(ValueError, match=r"out of range 0\.\.14"):
        vehicle.action_to_command(np.array([15]))
    with pytest.raises(ValueError, match="integer indices"):
        vehicle.action_to_command(np.array([0.5]))


def test_continuous_outputs_are_clipped_and_scaled_linearly() -> None:
    vehicle = get_vehicle("continuous_camera")  # steering -30..30, speed 1..2
    steering, speed = vehicle.action_to_command(np.array([[-1.0, -1.0], [0.0, 0.0], [0.5, 1.0], [3.0, -7.0]]))
    assert steering.tolist() == [-30.0, 0.0, 15.0, 30.0]
    assert speed.tolist() == [1.0, 1.5, 2.0, 1.0]
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        vehicle.action_to_command(np.zeros((3, 3)))


def test_the_original_deepracer_file_is_the_labs_car() -> None:
    vehicle = get_vehicle("original_deepracer")
    assert vehicle.name == "The Original DeepRacer"
    assert vehicle.sensors == (FRONT_FACING_CAMERA,)
    assert vehicle.neural_network == DEEP_CONVOLUTIONAL_NETWORK_SHALLOW
    assert vehicle.action_space == DiscreteActionSpace.from_granularity(30, 5, 1, 3)


def test_every_example_vehicle_loads() -> None:
    assert {"original_deepracer", "continuous_camera", "stereo_lidar"} <= set(list_vehicles())
    for path in list_vehicles().values():
        load_vehicle(path)


def test_vehicle_files_round_trip(tmp_path: Path) -> None:
    for vehicle in (get_vehicle("original_deepracer"), get_vehicle("stereo_lidar"), get_vehicle("continuous_camera")):
        save_vehicle(vehicle, tmp_path / "car.json")
        again = load_vehicle(tmp_path / "car.json")
        assert again == vehicle and again.name == vehicle.name
    explicit = Vehicle.from_model_metadata(DRFC_DISCRETE, name="five")
    save_vehicle(explicit, tmp_path / "five.json")
    assert isinstance(json.loads((tmp_path / "five.json").read_text())["action_space"], list)
    assert load_vehicle(tmp_path / "five.json") == explicit


def test_vehicle_file_errors_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{ nope")
    with pytest.raises(VehicleError, match=r"broken\.json is not valid JSON"):
        load_vehicle(tmp_path / "broken.json")
    document = {
        "sensor": ["FRONT_FACING_CAMERA"],
        "neural_network": "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
        "action_space_type": "discrete",
        "action_space": {"max_steering_angle": 30, "steering_granularity": 4, "max_speed": 1, "speed_granularity": 3},
    }
    (tmp_path / "even.json").write_text(json.dumps(document))
    with pytest.raises(VehicleError, match=r"even\.json: must be an odd number") as caught:
        load_vehicle(tmp_path / "even.json")
    assert caught.value.field == "steering_granularity"
    with pytest.raises(VehicleError, match="no vehicle file 'nope'"):
        get_vehicle("nope")


def test_the_top_speed_is_the_fastest_action_or_the_top_of_the_continuous_range() -> None:
    """The speed a racing line's profile and the warm start's driver are built for."""
    assert get_vehicle("original_deepracer").top_speed == 1.0
    assert get_vehicle("pitlane_racer").top_speed == 3.0
    continuous = get_vehicle("continuous_camera")
    assert continuous.top_speed == continuous.action_space.speed_high
