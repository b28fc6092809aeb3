"""Camera specification: DeepRacer's pinhole camera over the track floor (SPEC §4)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sim.sensors import Bodies, make_sensor
from sim.sensors.camera import FOCAL, HEIGHT, PITCH, WIDTH, horizon_row
from sim.sensors.floor import (
    BORDER,
    CACHE_KEY,
    LAYOUT_FILE,
    PIXELS_FILE,
    ROAD,
    SKY_HORIZON,
    SKY_TOP,
    TURF,
    floor_raster,
    load_floor_raster,
    save_floor_raster,
)
from sim.world.objects import StaticBoxes
from sim.world.track import Track

TRACKS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "tracks"
HALF_WIDTH = 0.5


def stadium(straight: float = 10.0, radius: float = 3.0, spacing: float = 0.1) -> Track:
    """A counter-clockwise stadium: straight along +x from (0, 0), left turn, straight back, left turn."""
    n_straight = round(straight / spacing)
    n_arc = round(math.pi * radius / spacing)
    points = [(i * spacing, 0.0) for i in range(n_straight)]
    points += [(straight + radius * math.sin(a), radius - radius * math.cos(a))
               for a in np.linspace(0, math.pi, n_arc, endpoint=False)]
    points += [(straight - i * spacing, 2 * radius) for i in range(n_straight)]
    points += [(-radius * math.sin(a), radius + radius * math.cos(a))
               for a in np.linspace(0, math.pi, n_arc, endpoint=False)]
    centre = np.array(points + points[:1])
    heading = np.gradient(centre, axis=0)
    heading[0] = heading[-1] = centre[1] - centre[0]
    left = np.stack([-heading[:, 1], heading[:, 0]], axis=1) / np.linalg.norm(heading, axis=1)[:, None]
    rows = np.hstack([centre, centre + HALF_WIDTH * left, centre - HALF_WIDTH * left])
    rows[-1] = rows[0]
    return Track.from_array(rows, name="test_stadium")


@pytest.fixture(scope="module")
def track() -> Track:
    return stadium()


@pytest.fixture(scope="module")
def camera():
    return make_sensor("FRONT_FACING_CAMERA")


def frame(camera, track, x: float, y: float, yaw: float, objects=None) -> np.ndarray:
    return camera.observe(track, np.array([x]), np.array([y]), np.array([yaw]), objects)[0, :, :, 0]


def road_centre_column(image: np.ndarray, row: int) -> float:
    """Mean column of the road-coloured pixels of one image row."""
    columns = np.nonzero(np.abs(image[row].astype(int) - ROAD) < 20)[0]
    assert len(columns) > 10, "the road should be visible on this row"
    return float(columns.mean())


def test_observation_shapes_and_dtypes(track) -> None:
    x, y, yaw = np.array([2.0, 4.0, 6.0]), np.zeros(3), np.zeros(3)
    for name, channels in (("FRONT_FACING_CAMERA", 1), ("STEREO_CAMERAS", 2)):
        sensor = make_sensor(name)
        obs = sensor.observe(track, x, y, yaw)
        assert obs.shape == (3, 120, 160, channels) and obs.dtype == np.uint8
        assert sensor.observation_space.shape == (120, 160, channels)
        assert sensor.observation_space.dtype == np.uint8
        assert all(sensor.observation_space.contains(o) for o in obs)


def test_each_car_of_a_batch_sees_what_it_would_see_alone(camera, track) -> None:
    x, y, yaw = np.array([2.0, 11.0, 5.0]), np.array([0.1, 1.0, 6.0]), np.array([0.0, 1.2, math.pi])
    batch = camera.observe(track, x, y, yaw)
    for i in range(3):
        np.testing.assert_array_equal(batch[i, :, :, 0], frame(camera, track, x[i], y[i], yaw[i]))


def test_on_a_straight_the_road_is_centred_between_two_borders(camera, track) -> None:
    image = frame(camera, track, 3.0, 0.0, 0.0)
    row = 40  # about 1.3 m ahead, where the view is wider than the road
    assert road_centre_column(image, row) == pytest.approx((WIDTH - 1) / 2, abs=1.5)
    borders = np.nonzero(image[row] > BORDER - 40)[0]
    assert borders.min() < 40 and borders.max() > 120, "both white borders are seen on each side"
    assert int(image[HEIGHT - 1, 40]) == pytest.approx(ROAD, abs=12), "the floor just ahead is road"


def test_turning_the_car_left_moves_the_road_right_in_the_image(camera, track) -> None:
    # Row 35 (about 2.5 m ahead) sees the whole road width, so its centre is not clipped by the image edges.
    straight = road_centre_column(frame(camera, track, 3.0, 0.0, 0.0), 35)
    turned_left = road_centre_column(frame(camera, track, 3.0, 0.0, 0.15), 35)
    turned_right = road_centre_column(frame(camera, track, 3.0, 0.0, -0.15), 35)
    assert turned_left > straight + 10
    assert turned_right < straight - 10


def test_in_a_left_curve_the_road_ahead_bends_left(camera, track) -> None:
    image = frame(camera, track, 10.0, 0.0, 0.0)  # entering the left-hand curve
    near, far = road_centre_column(image, 90), road_centre_column(image, 35)
    assert far < near - 10


def test_off_track_frames_are_mostly_ground(camera, track) -> None:
    image = frame(camera, track, 5.0, -4.0, -math.pi / 2)  # 4 m outside, looking away from the track
    floor = image[horizon_row() + 4 :]
    assert np.mean(np.abs(floor.astype(int) - TURF) < 20) > 0.95
    assert np.mean(np.abs(floor.astype(int) - ROAD) < 10) < 0.01


def test_the_horizon_row_matches_the_15_degree_pitch(camera, track) -> None:
    # The horizontal ray leaves the lens FOCAL * tan(15°) pixels above the image centre.
    expected = math.ceil(HEIGHT / 2 - FOCAL * math.tan(PITCH) - 0.5)
    assert horizon_row() == expected == 26
    image = frame(camera, track, 3.0, 0.0, 0.0)
    sky, ground = image[:expected], image[expected:]
    assert sky.min() >= min(SKY_TOP, SKY_HORIZON) and np.all(sky == sky[:, :1]), "sky rows are uniform"
    assert np.all(np.abs(ground[1:].astype(int).mean(axis=1) - SKY_HORIZON) > 30), "floor rows are not sky"


def test_a_box_ahead_is_visible_and_hides_the_floor_behind_it(camera, track) -> None:
    box = Bodies(centres=[[4.5, 0.0]], yaws=[0.0], lengths=0.5, widths=0.4, heights=0.3)
    empty, with_box = frame(camera, track, 3.0, 0.0, 0.0), frame(camera, track, 3.0, 0.0, 0.0, box)
    changed = with_box != empty
    rows, cols = np.nonzero(changed)
    assert changed.sum() > 300
    assert cols.mean() == pytest.approx((WIDTH - 1) / 2, abs=2), "the box is straight ahead"
    assert rows.min() < horizon_row(), "a box taller than the camera rises above the horizon"
    beside = frame(camera, track, 3.0, 0.0, 0.0, Bodies([[4.5, 0.35]], [0.0], 0.5, 0.4, 0.3))
    assert np.nonzero(beside != empty)[1].mean() < cols.mean() - 10, "a box on the left appears on the left"


def test_boxes_behind_the_camera_or_own_body_are_not_drawn(camera, track) -> None:
    empty = frame(camera, track, 3.0, 0.0, 0.0)
    behind = Bodies([[2.0, 0.0]], [0.0], 0.5, 0.4, 0.3)
    np.testing.assert_array_equal(frame(camera, track, 3.0, 0.0, 0.0, behind), empty)
    own = Bodies([[3.0, 0.0]], [0.0], 0.32, 0.2, 0.2, owners=[0])
    np.testing.assert_array_equal(frame(camera, track, 3.0, 0.0, 0.0, own), empty)


def test_static_boxes_of_the_environment_are_accepted(camera, track) -> None:
    boxes = StaticBoxes(centres=np.array([[4.5, 0.0]]), yaws=np.array([0.0]))
    assert np.any(frame(camera, track, 3.0, 0.0, 0.0, boxes) != frame(camera, track, 3.0, 0.0, 0.0))


def test_stereo_channels_are_the_front_camera_at_plus_and_minus_3_cm(camera, track) -> None:
    stereo = make_sensor("STEREO_CAMERAS").observe(track, np.array([3.0]), np.array([0.0]), np.array([0.0]))[0]
    np.testing.assert_array_equal(stereo[..., 0], frame(camera, track, 3.0, 0.03, 0.0))
    np.testing.assert_array_equal(stereo[..., 1], frame(camera, track, 3.0, -0.03, 0.0))
    assert np.any(stereo[..., 0] != stereo[..., 1])


def test_a_car_far_outside_the_raster_still_gets_a_frame(camera, track) -> None:
    image = frame(camera, track, 500.0, -300.0, 1.0)
    assert image.shape == (HEIGHT, WIDTH)


def test_the_floor_raster_is_built_once_per_track(track) -> None:
    assert floor_raster(track) is floor_raster(track)


def test_a_raster_saved_by_one_process_is_mapped_by_another_and_gives_the_same_frames(camera, tmp_path) -> None:
    # The worker draws a race's floor once and saves it beside the model; the sandboxed runner maps it.
    drawn, mapped = stadium(), stadium()
    save_floor_raster(drawn, tmp_path / "track")
    loaded = load_floor_raster(mapped, tmp_path / "track")
    assert loaded is not None and loaded is floor_raster(mapped)  # memoised on the track the race then uses
    original = floor_raster(drawn)
    assert loaded.levels == original.levels and loaded.stride == original.stride and loaded.bounds == original.bounds
    np.testing.assert_array_equal(loaded.pixels, original.pixels)
    x, y, yaw = np.array([2.0, 11.0, 5.0]), np.array([0.1, 1.0, 6.0]), np.array([0.0, 1.2, math.pi])
    np.testing.assert_array_equal(camera.observe(mapped, x, y, yaw), camera.observe(drawn, x, y, yaw))


def test_a_saved_raster_serves_only_the_track_and_direction_it_was_drawn_for(tmp_path) -> None:
    save_floor_raster(stadium(), tmp_path / "track")
    assert load_floor_raster(stadium(straight=9.0), tmp_path / "track") is None
    reverse = stadium().with_direction("clockwise")  # the centre line's dashes start from the other end
    assert load_floor_raster(reverse, tmp_path / "track") is None and CACHE_KEY not in reverse.cache
    assert load_floor_raster(stadium(), tmp_path / "nothing") is None


@pytest.mark.parametrize("damage", ["layout", "pixels", "shape"])
def test_a_damaged_saved_raster_is_ignored_and_the_floor_drawn_again(tmp_path, damage) -> None:
    folder = tmp_path / "track"
    save_floor_raster(stadium(), folder)
    if damage == "layout":
        (folder / LAYOUT_FILE).write_text("{not json", encoding="utf-8")
    elif damage == "pixels":
        (folder / PIXELS_FILE).write_bytes(b"\x93NUMPY broken")
    else:
        np.save(folder / PIXELS_FILE, np.zeros((3, 3), dtype=np.uint8))
    track = stadium()
    assert load_floor_raster(track, folder) is None
    assert floor_raster(track).pixels.shape == floor_raster(stadium()).pixels.shape


def test_bad_poses_are_refused_clearly(camera, track) -> None:
    with pytest.raises(ValueError, match="same length"):
        camera.observe(track, np.zeros(2), np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="finite"):
        camera.observe(track, np.array([np.nan]), np.zeros(1), np.zeros(1))
    with pytest.raises(TypeError, match="objects"):
        camera.observe(track, np.zeros(1), np.zeros(1), np.zeros(1), objects=[1, 2])


@pytest.mark.skipif(not (TRACKS_DIR / "reInvent2019_track.npy").is_file(), reason="shared tracks absent")
def test_on_a_real_track_the_start_line_view_is_road_ahead(camera) -> None:
    track = Track.from_npy(TRACKS_DIR / "reInvent2019_track.npy")
    xy, yaw = track.pose_at(np.array([0.0]))
    image = frame(camera, track, xy[0, 0], xy[0, 1], yaw[0])
    assert np.mean(np.abs(image[horizon_row() + 20 :].astype(int) - ROAD) < 20) > 0.6


def test_example_frames_are_written_for_each_situation(track, tmp_path) -> None:
    from sim.sensors.examples import write_examples

    paths = write_examples(track, tmp_path, scale=1)
    assert sorted(p.name for p in paths) == sorted(
        f"camera_{s}.png" for s in ("straight", "left_curve", "right_curve", "off_track", "box_ahead")
    )
    assert all(p.stat().st_size > 0 for p in paths)


def test_cars_see_each_other_but_not_themselves(camera, track) -> None:
    x, y, yaw = np.array([3.0, 4.0]), np.array([0.0, 0.0]), np.array([0.0, 0.0])
    cars = Bodies.cars(np.stack([x, y], axis=1), yaw, owners=np.arange(2))
    frames = camera.observe(track, x, y, yaw, cars)[..., 0]
    assert np.any(frames[0] != frame(camera, track, 3.0, 0.0, 0.0)), "the car behind sees the one ahead"
    np.testing.assert_array_equal(frames[1], frame(camera, track, 4.0, 0.0, 0.0))
    boxes_and_cars = Bodies([[6.0, 0.0]], [0.0], 0.5, 0.4, 0.3).concatenated(cars)
    assert len(boxes_and_cars) == 3 and list(boxes_and_cars.owners) == [-1, 0, 1]
