"""The ideal lap: a racing line inside the road and the fastest speed profile the car limits allow."""

import numpy as np
import pytest

from sim.race.ideal_lap import ideal_lap_time, speed_profile
from sim.world.track import Track
from sim.world.track_catalog import get_track


def circle_track(radius: float, width: float, n: int = 400) -> Track:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    u = np.stack([np.cos(a), np.sin(a)], axis=1)
    rows = np.hstack([u * radius, u * (radius - width / 2), u * (radius + width / 2)]) + 5.0
    return Track.from_array(np.vstack([rows, rows[:1]]), "circle")


def test_on_a_circle_the_line_hugs_the_inside_at_the_grip_limited_speed():
    track = circle_track(radius=1.5, width=1.0)
    lap = ideal_lap_time(track, max_speed=4.0, max_lateral_accel=5.0, car_half_width=0.1)
    r_line = 1.5 - (0.5 - 0.12)  # inner edge + car half width + 2 cm safety margin
    v = np.sqrt(5.0 * r_line)
    assert lap.lap_time == pytest.approx(2 * np.pi * r_line / v, rel=0.02)
    np.testing.assert_allclose(np.linalg.norm(lap.line - 5.0, axis=1), r_line, atol=0.01)


def test_racing_line_stays_inside_with_the_car_footprint_and_respects_every_limit():
    track = get_track("pitlane_technical")
    lap = ideal_lap_time(track, max_speed=4.0, max_lateral_accel=5.0, max_accel=3.0, max_brake=4.0)
    half = track.widths.min() / 2
    assert track.project(lap.line).distance.max() <= half - 0.1 + 1e-3
    assert lap.speed.max() <= 4.0 + 1e-12
    assert np.all(lap.speed**2 * np.abs(lap.curvature) <= 5.0 + 1e-9)
    ds = np.diff(np.append(lap.s, lap.line_length))
    dv2 = np.roll(lap.speed, -1) ** 2 - lap.speed**2
    assert np.all(dv2 <= 2 * 3.0 * ds + 1e-9) and np.all(-dv2 <= 2 * 4.0 * ds + 1e-9)
    assert lap.line_length < track.length  # cutting corners is the point of a racing line
    assert lap.lap_time > lap.line_length / 4.0


def test_limits_move_the_lap_time_the_right_way():
    track = get_track("pitlane_oval")
    base = ideal_lap_time(track).lap_time
    assert ideal_lap_time(track, max_lateral_accel=8.0).lap_time < base
    assert ideal_lap_time(track, max_speed=2.0).lap_time > base
    assert ideal_lap_time(track, max_speed=2.0).lap_time >= ideal_lap_time(track).line_length / 2.0


def test_speed_profile_brakes_before_a_slow_corner():
    curvature = np.zeros(100)
    curvature[50] = 5.0  # one tight corner: v <= 1 m/s there with a_lat 5
    v = speed_profile(np.full(100, 0.1), curvature, 4.0, 5.0, 2.0, 2.0)
    assert v[50] == pytest.approx(1.0)
    assert v[49] == pytest.approx(np.sqrt(1.0 + 2 * 2.0 * 0.1))
    assert v.max() <= 4.0


@pytest.mark.parametrize("kwargs", [{"max_speed": 0.0}, {"max_lateral_accel": -1.0}, {"car_half_width": -0.1}])
def test_bad_limits_are_rejected(kwargs):
    with pytest.raises(ValueError):
        ideal_lap_time(get_track("pitlane_oval"), **kwargs)


def test_a_car_wider_than_the_road_is_rejected():
    with pytest.raises(ValueError, match="too narrow"):
        ideal_lap_time(get_track("pitlane_narrow"), car_half_width=0.5)
