"""Lidar specification: 64 rays over 300° centred backwards, objects only, simapp clipping (SPEC §4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.sensors import Bodies, make_sensor, validate_sensor_combination
from sim.sensors.lidar import HEIGHT_M, MAX_RANGE, MOUNT_FORWARD, RAY_ANGLES
from sim.world.objects import StaticBoxes

ORIGIN = (np.zeros(1), np.zeros(1), np.zeros(1))


def box_at(x: float, y: float, yaw: float = 0.0, height: float = 0.3, owner: int = -1) -> Bodies:
    return Bodies([[x, y]], [yaw], lengths=0.5, widths=0.4, heights=height, owners=[owner])


def test_shapes_dtypes_and_spaces() -> None:
    x, y, yaw = np.zeros(5), np.arange(5.0), np.zeros(5)
    for name, shape in (("LIDAR", (64,)), ("SECTOR_LIDAR", (8,))):
        sensor = make_sensor(name)
        obs = sensor.observe(None, x, y, yaw, box_at(-1.0, 0.0))
        assert obs.shape == (5, *shape) and obs.dtype == np.float32
        assert sensor.observation_space.shape == shape and sensor.observation_space.dtype == np.float32
        assert all(sensor.observation_space.contains(o) for o in obs)


def test_rays_cover_300_degrees_centred_on_the_backward_direction() -> None:
    assert len(RAY_ANGLES) == 64
    assert RAY_ANGLES[-1] - RAY_ANGLES[0] == pytest.approx(math.radians(300), abs=1e-4)
    assert (RAY_ANGLES[0] + RAY_ANGLES[-1]) / 2 == pytest.approx(math.pi)


def test_an_empty_track_reads_the_maximum_everywhere() -> None:
    lidar = make_sensor("LIDAR")
    assert np.all(lidar.ranges(*ORIGIN) == MAX_RANGE)
    assert np.all(lidar.observe(None, *ORIGIN) == 1.0), "observations are clipped to [0.15, 1.0]"


def test_distance_to_a_box_behind_the_car_equals_geometry() -> None:
    # Box centred 1.2 m behind the origin: its front face is at x = -0.95; the laser sits at +0.02913.
    ranges = make_sensor("LIDAR").ranges(*ORIGIN, box_at(-1.2, 0.0))[0]
    for ray in (31, 32):  # the two rays either side of straight back
        angle = RAY_ANGLES[ray]
        expected = (0.95 + MOUNT_FORWARD) / abs(math.cos(angle))
        assert ranges[ray] == pytest.approx(expected, abs=0.01)
    assert np.all(ranges[:20] == MAX_RANGE) and np.all(ranges[44:] == MAX_RANGE), "side rays miss it"


def test_the_scan_turns_with_the_car() -> None:
    lidar = make_sensor("LIDAR")
    box = box_at(0.0, 1.2, yaw=math.pi / 2)
    turned = lidar.ranges(np.zeros(1), np.zeros(1), np.array([-math.pi / 2]), box)  # the box is now behind
    moved = lidar.ranges(np.zeros(1), np.zeros(1), np.zeros(1), box_at(-1.2, 0.0))
    np.testing.assert_allclose(turned, moved, atol=1e-9)


def test_the_blind_sector_ahead_sees_nothing() -> None:
    lidar = make_sensor("LIDAR")
    ahead = Bodies([[0.6, 0.0]], [0.0], lengths=0.2, widths=0.3, heights=0.3)  # within ±30° of ahead
    assert np.all(lidar.ranges(*ORIGIN, ahead) == MAX_RANGE)
    assert np.all(make_sensor("SECTOR_LIDAR").observe(None, *ORIGIN, ahead) == 0.0)


def test_objects_below_the_scan_plane_and_the_cars_own_body_are_invisible() -> None:
    lidar = make_sensor("LIDAR")
    assert np.all(lidar.ranges(*ORIGIN, box_at(-1.0, 0.0, height=HEIGHT_M - 0.01)) == MAX_RANGE)
    own = Bodies([[0.0, 0.0]], [0.0], lengths=0.32352, widths=0.1961, heights=0.25, owners=[0])
    other = Bodies([[0.0, 0.0]], [0.0], lengths=0.32352, widths=0.1961, heights=0.25, owners=[1])
    assert np.all(lidar.ranges(*ORIGIN, own) == MAX_RANGE)
    assert np.all(lidar.ranges(*ORIGIN, other) < 0.22), "from inside another car, its walls are close"


def test_sector_bits_mark_sectors_with_something_closer_than_half_a_metre() -> None:
    sector_lidar = make_sensor("SECTOR_LIDAR")
    behind_near = sector_lidar.observe(None, *ORIGIN, box_at(-0.5, 0.0))[0]
    np.testing.assert_array_equal(behind_near, [0, 0, 0, 1, 1, 0, 0, 0])  # rays 24..39 look backwards
    behind_far = sector_lidar.observe(None, *ORIGIN, box_at(-1.0, 0.0))[0]
    assert np.all(behind_far == 0)
    left = sector_lidar.observe(None, *ORIGIN, box_at(0.0, 0.45, yaw=math.pi / 2))[0]
    assert left[1] == 1 and left[6] == 0, "a box on the left shows in a left sector only"


def test_static_boxes_of_the_environment_are_seen() -> None:
    boxes = StaticBoxes(centres=np.array([[-1.0, 0.0]]), yaws=np.array([0.0]))
    assert make_sensor("LIDAR").observe(None, *ORIGIN, boxes)[0].min() < 1.0


def test_noise_is_off_by_default_and_seeded_when_on() -> None:
    box = box_at(-0.8, 0.0)
    exact = make_sensor("LIDAR").ranges(*ORIGIN, box)
    np.testing.assert_array_equal(exact, make_sensor("LIDAR").ranges(*ORIGIN, box))
    noisy_a = make_sensor("LIDAR", noise_std=0.01, seed=7).ranges(*ORIGIN, box)
    noisy_b = make_sensor("LIDAR", noise_std=0.01, seed=7).ranges(*ORIGIN, box)
    np.testing.assert_array_equal(noisy_a, noisy_b)
    assert 0 < np.abs(noisy_a - exact).max() < 0.06


def test_sensor_combinations_follow_the_simapp() -> None:
    validate_sensor_combination(["FRONT_FACING_CAMERA"])
    validate_sensor_combination(["STEREO_CAMERAS", "LIDAR"])
    for names, message in (
        ([], "exactly one camera"),
        (["FRONT_FACING_CAMERA", "STEREO_CAMERAS"], "exactly one camera"),
        (["LIDAR"], "exactly one camera"),
        (["FRONT_FACING_CAMERA", "LIDAR", "SECTOR_LIDAR"], "at most one lidar"),
        (["FRONT_FACING_CAMERA", "FRONT_FACING_CAMERA"], "twice"),
        (["FRONT_FACING_CAMERA", "RADAR"], "unknown sensor 'RADAR'"),
    ):
        with pytest.raises(ValueError, match=message):
            validate_sensor_combination(names)
    with pytest.raises(ValueError, match="unknown sensor"):
        make_sensor("LEFT_CAMERA")
    with pytest.raises(ValueError, match="noise_std"):
        make_sensor("LIDAR", noise_std=-1.0)


def test_cars_in_a_batch_see_each_other_behind() -> None:
    x, y, yaw = np.array([0.0, -0.6]), np.zeros(2), np.zeros(2)
    cars = Bodies.cars(np.stack([x, y], axis=1), yaw, owners=np.arange(2))
    ranges = make_sensor("LIDAR").ranges(x, y, yaw, cars)
    expected = MOUNT_FORWARD + 0.6 - 0.3235 / 2  # to the rear car's front face
    assert ranges[0, 31] == pytest.approx(expected / abs(math.cos(RAY_ANGLES[31])), abs=0.01)
    assert np.all(ranges[1] == MAX_RANGE), "the car ahead is in the rear car's blind sector"


def test_lidar_sizes_match_the_networks_lidar_embedders() -> None:
    from sim.learn.networks import LIDAR_INPUT_SIZE

    for name, size in LIDAR_INPUT_SIZE.items():
        assert make_sensor(name).observation_space.shape == (size,)
