"""The wheel contact points behind ``all_wheels_on_track`` and ``is_offtrack`` are the DeepRacer car model's."""

import numpy as np
import pytest
import shapely

from sim.world.builtin_tracks import build_builtin_track
from sim.world.car import DEFAULT_CAR, CarState, body_points
from sim.world.params import step_geometry

# SPEC §2 (the simapp's URDF wheel links, from base_link): front-left, front-right, rear-left, rear-right.
DEEPRACER_WHEELS = np.array([[0.082311, 0.079601], [0.082311, -0.079601], [-0.081663, 0.08105], [-0.081663, -0.08105]])


def test_the_wheel_offsets_are_the_car_models():
    assert DEFAULT_CAR.wheel_offsets() == pytest.approx(DEEPRACER_WHEELS, abs=0.0)


@pytest.mark.parametrize("track_name", ["pitlane_oval", "pitlane_technical"])
def test_wheels_on_track_and_off_track_agree_with_the_car_model_on_random_poses_near_the_borders(track_name):
    # Poses across the road and 12 cm beyond each border, any heading: a wheel point a millimetre off flips the
    # answer on some of them (the earlier symmetric 0.164 x 0.16 rectangle did on about 1 in 1,000 here).
    track = build_builtin_track(track_name)
    rng = np.random.default_rng(8)
    n = 20_000
    ndist = rng.random(n)
    centre, yaw_along = track.pose_at(ndist)
    normal = np.column_stack([-np.sin(yaw_along), np.cos(yaw_along)])
    half_width = float(np.mean(track.widths)) / 2
    xy = centre + normal * rng.uniform(-half_width - 0.12, half_width + 0.12, n)[:, None]
    state = CarState(xy[:, 0].copy(), xy[:, 1].copy(), rng.uniform(-np.pi, np.pi, n), np.zeros(n), np.zeros(n))

    geometry = step_geometry(track, state)
    wheels = body_points(state, DEEPRACER_WHEELS)
    road = shapely.Polygon(track.outer, [track.inner])
    inside = shapely.contains_xy(road, wheels[..., 0], wheels[..., 1])
    assert 0 < geometry.all_wheels_on_track.sum() < n and 0 < geometry.off_track.sum() < n
    np.testing.assert_array_equal(geometry.all_wheels_on_track, inside.all(axis=1))
    np.testing.assert_array_equal(geometry.off_track, ~inside.any(axis=1))
