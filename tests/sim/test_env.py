"""The simulator's race rules and environments, against SPEC §3 and independent geometry (shapely)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import shapely
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from sim.race.drivers import PurePursuitDriver
from sim.race.env import RaceEnv, VectorRaceEnv
from sim.race.evaluation import run_driver_race, run_race
from sim.world.builtin_tracks import BUILTIN_TRACKS, build_builtin_track
from sim.world.car import CarSpec, CarState, advance, body_points, clip_commands
from sim.world.reward_examples import EXAMPLES
from sim.world.reward_function import RewardFunction
from sim.world.rules import EpisodeStatus, RaceRules, progress
from sim.world.track import Track
from sim.world.vehicle import ContinuousActionSpace, Vehicle, get_vehicle

SHARED_TRACKS = Path(__file__).resolve().parents[3] / "shared" / "tracks"
LAB_CAR = get_vehicle("original_deepracer")
FREE_CAR = Vehicle(("FRONT_FACING_CAMERA",), "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
                   ContinuousActionSpace(-30.0, 30.0, 0.5, 4.0))
STRAIGHT_AHEAD = np.array([[0.0, -1.0]], dtype=np.float32)  # continuous: no steering, slowest speed


@pytest.fixture(scope="module")
def oval() -> Track:
    return build_builtin_track("pitlane_oval")


def shared_track_files() -> list[Path]:
    return sorted(SHARED_TRACKS.glob("*.npy")) if SHARED_TRACKS.is_dir() else []


@pytest.mark.parametrize("name", list(BUILTIN_TRACKS))
@pytest.mark.parametrize("direction", ["counterclockwise", "clockwise"])
def test_the_scripted_driver_laps_every_builtin_track_both_ways(name, direction):
    track = build_builtin_track(name).with_direction(direction)
    run = run_driver_race(PurePursuitDriver(track, max_speed=1.5), LAB_CAR, RaceRules(total_laps=1))
    assert [lap.episode_status for lap in run.laps] == ["Lap complete"]
    assert run.laps[0].off_track_count == 0


def test_a_race_reports_the_time_its_policy_spent_choosing_actions(oval):
    """Racing time = the policy (a model's network) + the simulator: the evaluator reports them apart."""
    chosen: list[float] = []

    def straight_on(observation):
        started = time.perf_counter()
        assert np.asarray(observation).shape[0] == 1  # one car's camera image
        chosen.append(time.perf_counter() - started)
        return STRAIGHT_AHEAD

    started = time.perf_counter()
    run = run_race(straight_on, oval, FREE_CAR, RaceRules(total_laps=1, time_cap_s=20, max_resets=2),
                   record_simtrace=False)
    raced = time.perf_counter() - started
    assert len(chosen) == run.steps > 0
    assert sum(chosen) <= run.policy_s < raced


@pytest.mark.slow
@pytest.mark.skipif(not shared_track_files(), reason="../shared/tracks is not beside this checkout")
@pytest.mark.parametrize("direction", ["counterclockwise", "clockwise"])
def test_the_scripted_driver_laps_every_shared_deepracer_track_both_ways(direction):
    for path in shared_track_files():
        track = Track.from_npy(path).with_direction(direction)
        run = run_driver_race(PurePursuitDriver(track, max_speed=2.0), FREE_CAR, RaceRules(total_laps=1))
        assert run.laps[0].episode_status == "Lap complete" and run.laps[0].off_track_count == 0, path.name


def test_off_track_fires_at_the_step_shapely_says_all_wheels_left_the_road(oval):
    env = VectorRaceEnv(oval, 1, FREE_CAR, mode="training")
    env.reset(seed=0)
    hard_left = np.array([[1.0, 0.0]], dtype=np.float32)
    twin = CarState(env.car.x.copy(), env.car.y.copy(), env.car.yaw.copy(), env.car.speed.copy(),
                    env.car.steering.copy())
    road = shapely.Polygon(oval.outer, [oval.inner])
    steering, speed = clip_commands(*FREE_CAR.action_to_command(hard_left))
    expected = None
    for step in range(1, 200):
        wheels = body_points(twin, env.car_spec.wheel_offsets())[0]
        if step > 1 and not any(road.contains(shapely.Point(w)) for w in wheels):
            expected = step
            break
        advance(twin, steering, speed, np.array([step > 1]))  # step 1 is the prepare step: the car is held
    for step in range(1, 200):
        _, _, terminated, _, info = env.step(hard_left)
        if terminated[0]:
            assert info["episodes"][0]["status"] == "off_track"
            assert step == expected
            return
    pytest.fail("the car never left the track")


def _race_with_one_excursion(track: Track, penalty: float, max_resets=None, excursion_at: int = 60):
    """Drive the scripted line, but steer hard right for a while to leave the road once."""
    driver = PurePursuitDriver(track, max_speed=1.0)
    env = VectorRaceEnv(track, 1, FREE_CAR, mode="race",
                        rules=RaceRules(total_laps=1, off_track_penalty_s=penalty, max_resets=max_resets))
    env.reset(seed=0)
    step = 0
    while env.running[0]:
        step += 1
        action = driver.actions(env.car, FREE_CAR)
        if excursion_at <= step < excursion_at + 40 and env.lap_counters.off_track[0] == 0 and env.laps[0] == 0:
            action = np.array([[-1.0, 0.0]], dtype=np.float32)
        env.step(action)
    return env.record(0).laps


def test_race_penalties_add_exactly_the_configured_seconds(oval):
    two, five = _race_with_one_excursion(oval, 2.0), _race_with_one_excursion(oval, 5.0)
    assert two[0].off_track_count == five[0].off_track_count == 1
    assert two[0].reset_count == 1 and two[0].episode_status == "Lap complete"
    assert five[0].elapsed_time_in_milliseconds - two[0].elapsed_time_in_milliseconds == 3000


def test_a_spent_reset_budget_ends_the_run(oval):
    laps = _race_with_one_excursion(oval, 2.0, max_resets=0)
    assert len(laps) == 1 and laps[0].episode_status == "Off track" and laps[0].completion_percentage < 100


def test_a_car_that_cannot_move_is_immobilized_after_15_steps(oval):
    env = VectorRaceEnv(oval, 1, FREE_CAR, mode="training", spec=CarSpec(min_speed=0.0, max_speed=0.001))
    env.reset(seed=0)
    for _ in range(40):
        _, _, terminated, _, info = env.step(STRAIGHT_AHEAD)
        if terminated[0]:
            break
    episode = info["episodes"][0]
    assert episode["status"] == "immobilized" and episode["steps"] == 1 + 15  # prepare, then 15 still steps


def test_driving_against_the_track_direction_is_reversed_after_15_steps(oval):
    env = VectorRaceEnv(oval, 1, FREE_CAR, mode="training")
    env.reset(seed=0, options={"start_ndist": 0.5})
    env.car.yaw[:] += np.pi  # turn the car around on the start line
    statuses = []
    for _ in range(40):
        _, _, terminated, _, info = env.step(STRAIGHT_AHEAD)
        if terminated[0]:
            statuses.append(info["episodes"][0]["status"])
            break
    assert statuses == ["reversed"]


def test_the_prepare_step_holds_the_car_and_the_reward_function_first_sees_step_two(oval):
    seen = []
    reward = RewardFunction.from_source("def reward_function(params):\n    return params['steps']\n")
    original = reward.__call__
    env = VectorRaceEnv(oval, 1, LAB_CAR, reward_function=reward, mode="training")
    env.reward_function = lambda params: seen.append(params["steps"]) or original(params)
    env.reset(seed=0)
    start = (env.car.x[0], env.car.y[0])
    _, first_reward, *_ = env.step(np.array([7]))
    assert first_reward[0] == 0.0 and seen == [] and (env.car.x[0], env.car.y[0]) == start
    _, second_reward, *_ = env.step(np.array([7]))
    assert seen == [2.0] and second_reward[0] == 2.0


def test_params_have_every_spec_key_and_the_labs_examples_run(oval):
    keys = set()
    reward = RewardFunction.from_source(EXAMPLES["example_1_follow_center_line"])
    env = VectorRaceEnv(oval, 4, LAB_CAR, reward_function=reward, mode="training")
    env.reward_function = lambda params: keys.update(params) or reward(params)
    env.reset(seed=0)
    rewards = [env.step(np.array([7, 7, 7, 7]))[1] for _ in range(5)][-1]
    assert {"x", "y", "heading", "speed", "steering_angle", "steering", "steps", "progress",
            "distance_from_center", "is_left_of_center", "track_width", "track_length", "waypoints",
            "closest_waypoints", "all_wheels_on_track", "is_offtrack", "is_crashed", "is_reversed",
            "closest_objects", "objects_location", "objects_distance", "objects_heading", "objects_left_of_center",
            "objects_speed", "object_in_camera", "objects_distance_from_center", "projection_distance"} <= keys
    assert (rewards > 0).all()


def test_progress_wraps_over_the_start_line_and_caps_at_100():
    start = np.array([0.9, 0.9, 0.9])
    # Plain progress, a forward crossing of the start line (lap complete), the first step of a new lap.
    assert progress(np.array([0.95, 0.901, 0.901]), start, np.array([4.0, 99.9, 0.05])).tolist() == pytest.approx(
        [5.0, 100.0, 0.1])
    # Backwards over the line from just after the start: negative progress.
    assert progress(np.array([0.899]), np.array([0.9]), np.array([0.2]))[0] == pytest.approx(-0.1)


def test_training_starts_advance_round_robin_by_five_percent(oval):
    env = VectorRaceEnv(oval, 1, FREE_CAR, mode="training")
    env.reset(seed=0)
    starts = []
    for _ in range(400):
        _, _, terminated, _, info = env.step(np.array([[1.0, 1.0]], dtype=np.float32))  # hard left, fast: crash out
        if terminated[0]:
            starts.append(info["episodes"][0]["start_ndist"])
        if len(starts) == 3:
            break
    assert np.diff(starts) == pytest.approx([0.05, 0.05])


def test_the_same_seed_gives_identical_traces(oval):
    def trace() -> list:
        driver = PurePursuitDriver(oval, max_speed=2.0)
        env = VectorRaceEnv(oval, 3, FREE_CAR, mode="training", seed=7, record_simtrace=True)
        env.reset(seed=7)
        for _ in range(50):
            env.step(driver.actions(env.car, FREE_CAR))
        return [row for car in range(3) for row in env.record(car).simtrace]

    assert trace() == trace()


def test_a_fast_sharp_turn_slides_wider_than_a_slow_one():
    def turning_radius(speed: float) -> float:
        car = CarState.zeros(1)
        steering, command = clip_commands(np.array([30.0]), np.array([speed]))
        points = []
        for _ in range(120):
            advance(car, steering, command, np.array([True]))
            points.append((car.x[0], car.y[0]))
        x, y = np.array(points[20:]).T  # past the response lag: a steady circle
        # Algebraic circle fit: x² + y² + D x + E y + F = 0.
        (d, e, f), *_ = np.linalg.lstsq(np.column_stack([x, y, np.ones_like(x)]), -(x**2 + y**2), rcond=None)
        return float(np.sqrt(d * d / 4 + e * e / 4 - f))

    slow, fast = turning_radius(0.5), turning_radius(4.0)
    beta = np.arctan(0.5 * np.tan(np.radians(30)))  # slip angle of the mid-axle point
    assert slow == pytest.approx(0.082 / np.sin(beta), rel=0.05)  # kinematic radius: grip is not the limit
    assert fast > 2 * slow  # 5 m/s² of grip at 4 m/s allows a radius of 3.2 m, not 0.3 m


def test_the_single_car_env_passes_gymnasiums_checker(oval):
    check_env(RaceEnv(oval, LAB_CAR), skip_render_check=True)


def test_the_single_car_env_ends_an_episode_on_its_last_frame_and_reset_starts_the_next_further_on(oval):
    env = RaceEnv(oval, FREE_CAR)
    first, _ = env.reset(seed=0)
    hard_left = np.array([1.0, 1.0], dtype=np.float32)  # full steering at top speed: off the track soon
    for _ in range(200):
        observation, _, terminated, truncated, info = env.step(hard_left)
        if terminated or truncated:
            break
    assert terminated and info["status"] == "off_track" and info["episodes"][0]["episode"] == 0
    # The frame of the car where it left the road, not the next episode's start, which is the reset's.
    assert not np.array_equal(observation, first)
    restarted, info = env.reset()
    assert info["status"] == "prepare" and not np.array_equal(restarted, observation)
    assert not np.array_equal(restarted, first)  # 5 % of the lap further on
    for _ in range(200):
        *_, terminated, truncated, info = env.step(hard_left)
        if terminated or truncated:
            break
    assert info["episodes"][0]["episode"] == 1  # episodes are numbered one after another


def test_camera_frames_show_the_road_ahead(oval):
    env = VectorRaceEnv(oval, 1, LAB_CAR, mode="training")
    frame = env.reset(seed=0)[0][0, ..., 0]
    assert frame.shape == (120, 160) and frame.dtype == np.uint8
    bottom = frame[-20:]
    road = np.bincount(bottom.ravel()).argmax()
    assert road == bottom[:, 80].min() or road < 80  # dark road under the car, lines brighter
    left, right = frame[-1, :40].mean(), frame[-1, -40:].mean()
    env.car.yaw[:] += 0.4  # turn left: the road moves to the right of the picture
    turned = env._observe()[0, ..., 0]
    assert abs(turned[-1, -40:].mean() - right) + abs(turned[-1, :40].mean() - left) > 5


# ---------------------------------------------------------------------------------------- the vector env API
def test_the_vector_env_is_a_gymnasium_vector_env_with_batched_spaces(oval):
    for vehicle in (LAB_CAR, FREE_CAR, get_vehicle("stereo_lidar")):
        env = VectorRaceEnv(oval, 3, vehicle, mode="training")
        assert isinstance(env, VectorEnv) and env.num_envs == 3
        assert env.observation_space == batch_space(env.single_observation_space, 3)
        assert env.action_space == batch_space(env.single_action_space, 3)
        observation, info = env.reset(seed=0)
        assert env.observation_space.contains(observation)
        assert set(info) >= {"status", "progress", "laps", "episodes"}
        env.action_space.seed(0)
        for _ in range(3):
            observation, rewards, terminated, truncated, info = env.step(env.action_space.sample())
            assert env.observation_space.contains(observation)
            assert rewards.shape == terminated.shape == truncated.shape == info["status"].shape == (3,)
            assert terminated.dtype == truncated.dtype == np.bool_


def test_training_mode_autoresets_in_the_same_step_with_the_final_observation_in_info(oval):
    env = VectorRaceEnv(oval, 2, FREE_CAR, mode="training", start_ndist=np.array([0.0, 0.5]),
                        spec=CarSpec(min_speed=0.0, max_speed=0.001))
    assert env.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    previous, _ = env.reset(seed=0)
    for _ in range(40):
        observation, _, terminated, _, info = env.step(np.repeat(STRAIGHT_AHEAD, 2, axis=0))
        if terminated.any():
            break
        assert "final_obs" not in info
        previous = observation
    assert terminated.tolist() == [True, True]  # immobilized, both
    assert info["_final_obs"].tolist() == info["_final_info"].tolist() == [True, True]
    assert info["final_info"]["status"].tolist() == [EpisodeStatus.IMMOBILIZED] * 2
    assert info["status"].tolist() == [EpisodeStatus.PREPARE] * 2 and env.steps.tolist() == [0, 0]
    # The finished episodes' last frames are where the (still) cars were; the returned ones are the new starts.
    for car in range(2):
        assert np.abs(info["final_obs"][car].astype(int) - previous[car]).mean() < 1.0
    fresh = VectorRaceEnv(oval, 2, FREE_CAR, mode="training", start_ndist=np.array([0.1, 0.6]))
    assert np.array_equal(observation, fresh.reset(seed=0)[0])
    assert [e["start_ndist"] for e in info["episodes"]] == [0.0, 0.5]


def test_race_mode_parks_a_finished_car_until_it_is_reset(oval):
    env = VectorRaceEnv(oval, 1, FREE_CAR, mode="race", rules=RaceRules(total_laps=1, time_cap_s=0.5))
    assert env.metadata["autoreset_mode"] == AutoresetMode.DISABLED
    env.reset(seed=0)
    terminated = np.array([False])
    while not terminated[0]:
        _, _, terminated, _, info = env.step(STRAIGHT_AHEAD)
    assert "final_obs" not in info and info["status"][0] == EpisodeStatus.TIME_UP
    assert not env.running[0] and env.steps[0] == 8
    _, reward, terminated, _, _ = env.step(STRAIGHT_AHEAD)  # a parked car's action is ignored
    assert env.steps[0] == 8 and not terminated[0] and reward[0] == 0.0
    assert [lap.episode_status for lap in env.record(0).laps] == ["Time up"]
    env.reset(options={"reset_mask": np.array([True])})
    assert env.running[0] and env.steps[0] == 0 and env.record(0).laps == []


def test_reset_options_choose_the_cars_and_their_starts_and_park_stops_cars(oval):
    env = VectorRaceEnv(oval, 3, FREE_CAR, mode="training")
    assert not env.running.any()  # nothing drives before the first reset
    env.reset(seed=0, options={"start_ndist": [0.1, 0.2, 0.3]})
    for _ in range(3):
        env.step(np.repeat(STRAIGHT_AHEAD, 3, axis=0))
    env.park([2])
    env.step(np.repeat(STRAIGHT_AHEAD, 3, axis=0))
    assert env.steps.tolist() == [4, 4, 3] and env.running.tolist() == [True, True, False]
    env.reset(options={"reset_mask": np.array([False, True, True]), "start_ndist": 0.7})
    assert env.steps.tolist() == [4, 0, 0] and env.running.all()
    assert np.allclose([env.car.x[1:], env.car.y[1:]], oval.pose_at(np.array([0.7, 0.7]))[0].T)
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"cars": [0]})
    with pytest.raises(ValueError, match="reset_mask"):
        env.reset(options={"reset_mask": np.array([True])})


def test_the_read_views_are_copies_and_a_taken_record_is_handed_over(oval):
    env = VectorRaceEnv(oval, 1, FREE_CAR, mode="race", record_trace=True)
    env.reset(seed=0)
    env.step(STRAIGHT_AHEAD)
    for view in (env.running, env.steps, env.progress, env.laps, env.held, env.lap_counters.crash):
        view[...] = 0
    assert env.running[0] and env.steps[0] == 1
    record = env.take_record(0)
    assert len(record.trace["x"]) == 1 and env.record(0).trace["x"] == []
    env.step(STRAIGHT_AHEAD)
    assert len(record.trace["x"]) == 1 and len(env.record(0).trace["x"]) == 1


def test_gymnasiums_vector_wrappers_see_the_episodes_the_env_reports(oval):
    env = RecordEpisodeStatistics(VectorRaceEnv(oval, 2, LAB_CAR, mode="training"))
    env.reset(seed=0)
    for _ in range(100):
        _, _, terminated, truncated, info = env.step(np.array([0, 14]))  # hard right: reversed or off track
        if terminated.any() or truncated.any():
            break
    done = terminated | truncated
    assert info["_episode"].tolist() == done.tolist()
    assert [info["episode"]["l"][e["car"]] for e in info["episodes"]] == [e["steps"] for e in info["episodes"]]
