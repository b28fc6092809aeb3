"""Head-to-head matches: two cars on one track, each seeing the other as a bot car; the outcome rules."""

import numpy as np
import pytest

from sim.race.drivers import PurePursuitDriver, commands_to_actions
from sim.race.env import VectorRaceEnv
from sim.race.head_to_head import RivalCar, run_driver_match, run_match, start_lanes
from sim.race.scoring import LapMetrics, ScoringError, match_outcome
from sim.sensors.bodies import as_bodies
from sim.world.builtin_tracks import build_builtin_track
from sim.world.car import CarState
from sim.world.params import ObjectView
from sim.world.rules import RaceRules
from sim.world.vehicle import ContinuousActionSpace, Vehicle

CAR = Vehicle(("FRONT_FACING_CAMERA",), "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", ContinuousActionSpace(-30, 30, 0.5, 2.0))
TWO_LAPS = RaceRules(total_laps=2, time_cap_s=60)


@pytest.fixture(scope="module")
def oval():
    return build_builtin_track("pitlane_oval")


def lane_drivers(track, seed, speeds):
    """Each driver keeps the lane it starts on."""
    lanes = start_lanes(seed)
    return [PurePursuitDriver(track, max_speed=speed, lane=lane) for speed, lane in zip(speeds, lanes, strict=True)]


def lap(trial, ms, completion=100.0, **counts):
    status = "Lap complete" if completion == 100.0 else "Time up"
    return LapMetrics(trial, ms, completion, episode_status=status, **counts)


class StoppingDriver(PurePursuitDriver):
    """Drives its lane, then crawls (the slowest action, 0.5 m/s) once past ``stop_at`` of the lap (a stalled car)."""

    def __init__(self, track, stop_at, **kwargs):
        super().__init__(track, **kwargs)
        self.stop_at = stop_at

    def actions(self, car, vehicle):
        steering, speed = self.commands(car)
        if self.track.project(np.column_stack([car.x, car.y])).ndist[0] > self.stop_at:
            speed = np.full_like(speed, 0.1)
        return commands_to_actions(vehicle, steering, speed)


# ------------------------------------------------------------------------------------------------- the match
def test_the_faster_car_wins_whichever_lane_it_starts_on(oval):
    for seed in (0, 2):  # seed 0 puts car A outside, seed 2 inside
        match = run_driver_match(lane_drivers(oval, seed, (1.2, 2.0)), [CAR, CAR], TWO_LAPS, seed=seed)
        a, b = match.cars
        assert match.lanes == start_lanes(seed) and set(match.lanes) == {"inner", "outer"}
        assert [lap.completed for lap in a.laps] == [True, True] == [lap.completed for lap in b.laps]
        assert match.outcome.winner == 1 and match.outcome.reason == "faster"
        assert match.outcome.standings[1].race_time_ms < match.outcome.standings[0].race_time_ms
        assert sum(lap.crash_count for lap in a.laps + b.laps) == 0  # two lanes: no contact


def test_the_cars_start_side_by_side_on_the_start_line(oval):
    match = run_driver_match(lane_drivers(oval, 0, (1.0, 1.0)), [CAR, CAR], RaceRules(total_laps=1), seed=0)
    (xa, ya), (xb, yb) = [(run.trace["x"][0], run.trace["y"][0]) for run in match.cars]
    gap = np.hypot(xa - xb, ya - yb)
    assert 0.3 < gap < float(np.mean(oval.widths))  # apart by about half the road's width
    projection = oval.project(np.array([[xa, ya], [xb, yb]]))
    assert np.allclose(projection.ndist, 0.0, atol=0.01) or np.allclose(projection.ndist % 1.0, 0.0, atol=0.01)


def test_a_car_that_stalls_is_passed_and_the_finisher_wins(oval):
    lanes = start_lanes(0)
    drivers = [StoppingDriver(oval, stop_at=0.3, max_speed=2.0, lane=lanes[0]),
               PurePursuitDriver(oval, max_speed=1.0, lane=lanes[1])]
    match = run_driver_match(drivers, [CAR, CAR], RaceRules(total_laps=1, time_cap_s=20), seed=0,
                             record_simtrace=True)
    a, b = match.cars
    progress_a = {row.steps: row.progress for row in a.simtrace}
    progress_b = {row.steps: row.progress for row in b.simtrace}
    common = sorted(set(progress_a) & set(progress_b))
    lead = [progress_a[step] - progress_b[step] for step in common]
    assert max(lead) > 5 and min(lead) < -5  # A led, then B went by
    assert b.laps[-1].completed and not a.laps[-1].completed
    assert match.outcome.winner == 1 and match.outcome.reason == "only finisher"
    assert sum(lap.crash_count for lap in b.laps) == 0


def test_a_collision_is_a_crash_for_the_car_behind_counted_once_per_contact(oval):
    # Both drivers aim for the centre line from their lanes: they meet within the first metres; B is slower.
    drivers = [PurePursuitDriver(oval, max_speed=1.5), PurePursuitDriver(oval, max_speed=1.2)]
    match = run_driver_match(drivers, [CAR, CAR], RaceRules(total_laps=1, time_cap_s=60, collision_penalty_s=2.0),
                             seed=0, record_simtrace=True)
    a, b = match.cars
    first_crash = min(row.steps for row in b.simtrace if row.episode_status == "crashed")
    assert first_crash < 45  # within 3 s of the start
    assert sum(lap.crash_count for lap in a.laps) == 0  # the car ahead is not charged
    # Counted when the footprints first touch, not on every step they overlap.
    assert 1 <= sum(lap.crash_count for lap in b.laps) <= 3
    assert a.laps[-1].completed and b.laps[-1].completed
    assert match.outcome.winner == 0


def test_the_same_model_twice_does_not_lock_up_in_endless_contacts(oval):
    for seed in (0, 2):  # identical drivers: at each contact only the car behind (or B, when level) is charged
        drivers = [PurePursuitDriver(oval, max_speed=1.5), PurePursuitDriver(oval, max_speed=1.5)]
        match = run_driver_match(drivers, [CAR, CAR], RaceRules(total_laps=1, time_cap_s=60), seed=seed)
        crashes = sorted(sum(lap.crash_count for lap in run.laps) for run in match.cars)
        assert crashes[0] == 0 and 1 <= crashes[1] <= 3
        assert all(run.laps[-1].completed for run in match.cars)
        assert match.outcome.reason == "faster"


def test_matches_are_deterministic(oval):
    def play():
        return run_driver_match([PurePursuitDriver(oval, max_speed=1.5), PurePursuitDriver(oval, max_speed=1.4)],
                                [CAR, CAR], RaceRules(total_laps=1), seed=3)

    first, second = play(), play()
    assert first.outcome == second.outcome and first.lanes == second.lanes
    for one, other in zip(first.cars, second.cars, strict=True):
        assert one.laps == other.laps and one.trace == other.trace


def test_run_match_drives_policies_from_their_own_camera_images(oval):
    seen = []

    def straight(observation):
        seen.append(np.asarray(observation).shape)
        return np.array([[0.0, -1.0]], dtype=np.float32)  # straight on, slowest

    match = run_match([straight, straight], oval, [CAR, CAR], RaceRules(total_laps=1, time_cap_s=30, max_resets=2),
                      seed=1)
    assert seen and all(shape[0] == 1 for shape in seen)
    assert all(run.laps and not run.laps[-1].completed for run in match.cars)  # off the road, out of resets
    assert match.outcome.winner in (0, 1)


# ------------------------------------------------------------------------------------------- the rival car
def test_the_rival_is_a_car_sized_bot_car_for_params_sensors_and_collisions(oval):
    xy, yaw = oval.lane_pose(np.array([0.2]), "inner")
    rival = RivalCar()
    rival.sync(xy[0, 0], xy[0, 1], yaw[0], 1.5, on_track=True)
    assert rival.is_bot_car and len(rival) == 1 and list(rival.speeds) == [1.5]
    assert len(as_bodies(rival)) == 1
    view = ObjectView.of(oval, rival)
    assert view.headings[0] == pytest.approx(yaw[0]) and view.speeds[0] == 1.5
    on_it = CarState(xy[:, 0].copy(), xy[:, 1].copy(), yaw.copy(), np.zeros(1), np.zeros(1))
    assert rival.touches(on_it)[0]
    assert not rival.collisions(on_it)[0]  # a crash only when the match flags a new contact
    rival.sync(0.0, 0.0, 0.0, 0.0, on_track=False)  # its run ended: it leaves the track
    assert len(rival) == 0 and not rival.touches(on_it)[0] and len(as_bodies(rival)) == 0


def test_start_lane_places_the_car_on_that_lane_and_defaults_to_the_centre(oval):
    for lane in ("inner", "outer"):
        env = VectorRaceEnv(oval, 1, CAR, mode="race", start_ndist=0.0, start_lane=lane)
        env.reset(seed=0)
        assert np.allclose([env.car.x[0], env.car.y[0]], oval.lane_point(np.array([0.0]), lane)[0])
    env = VectorRaceEnv(oval, 1, CAR, mode="race", start_ndist=0.0)
    env.reset(seed=0)
    assert np.allclose([env.car.x[0], env.car.y[0]], oval.pose_at(np.array([0.0]))[0][0])
    with pytest.raises(ValueError):
        VectorRaceEnv(oval, 1, CAR, start_lane="middle")


# ---------------------------------------------------------------------------------------------- the outcome
def test_both_finished_less_race_time_wins_penalties_included():
    fast_but_penalised = [lap(1, 9000, crash_count=1), lap(2, 9000)]  # 18 s including the penalty
    clean = [lap(1, 8900), lap(2, 8950)]  # 17.85 s
    outcome = match_outcome(fast_but_penalised, clean, 2)
    assert outcome.winner == 1 and outcome.reason == "faster"
    assert [s.race_time_ms for s in outcome.standings] == [18000, 17850]


def test_the_only_finisher_wins_however_slow():
    assert match_outcome([lap(1, 60000)], [lap(1, 9000, 99.9)], 1).winner == 0
    outcome = match_outcome([lap(1, 9000), lap(2, 9000, 50.0)], [lap(1, 30000), lap(2, 30000)], 2)
    assert outcome.winner == 1 and outcome.reason == "only finisher"


def test_neither_finished_more_laps_then_more_progress_wins():
    outcome = match_outcome([lap(1, 9000, 80.0)], [lap(1, 9000), lap(2, 5000, 10.0)], 3)
    assert outcome.winner == 1 and outcome.reason == "more laps"
    outcome = match_outcome([lap(1, 9000), lap(2, 5000, 60.0)], [lap(1, 9000), lap(2, 5000, 10.0)], 3)
    assert outcome.winner == 0 and outcome.reason == "more progress"
    assert outcome.standings[0].last_lap_progress == 60.0 and outcome.standings[0].race_time_ms is None


def test_an_exact_tie_goes_to_the_higher_seed():
    laps = [lap(1, 9000), lap(2, 9000)]
    outcome = match_outcome(laps, list(laps), 2)
    assert outcome.winner == 0 and outcome.reason == "tie: higher seed"
    assert match_outcome([lap(1, 9000, 40.0)], [lap(1, 9000, 40.0)], 2).winner == 0


def test_outcome_accepts_stored_lap_dicts_and_refuses_bad_input():
    stored = [lap(1, 9000).to_dict()]
    assert match_outcome(stored, [lap(1, 9500).to_dict()], 1).to_dict()["winner"] == 0
    with pytest.raises(ScoringError):
        match_outcome(stored, stored, 0)
    with pytest.raises(ScoringError):
        match_outcome([{"trial": 1}], stored, 1)
