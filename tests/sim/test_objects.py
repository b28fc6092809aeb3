"""Objects on the track: boxes end episodes by collision, bot cars drive their lane, params describe both."""

import io

import numpy as np
import pytest

from sim.race.env import VectorRaceEnv
from sim.world.builtin_tracks import build_builtin_track
from sim.world.objects import BotCars, StaticBoxes
from sim.world.reward_function import RewardFunction
from sim.world.rules import RaceRules
from sim.world.vehicle import ContinuousActionSpace, Vehicle

CAR = Vehicle(("FRONT_FACING_CAMERA",), "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", ContinuousActionSpace(-30, 30, 0.5, 1.0))
STRAIGHT = np.array([[0.0, 1.0]], dtype=np.float32)


@pytest.fixture(scope="module")
def oval():
    return build_builtin_track("pitlane_oval")


def params_seen(env):
    seen = []
    reward = RewardFunction.from_source("def reward_function(params):\n    return 1.0\n")
    env.reward_function = lambda params: seen.append(params) or reward(params)
    return seen


def test_a_box_on_the_racing_line_crashes_the_car_and_fills_the_object_keys(oval):
    box_at = 1.2 / oval.length  # a box 1.2 m ahead on the centre line
    xy, yaw = oval.pose_at(np.array([box_at]))
    boxes = StaticBoxes(xy, yaw, np.array([0.5]), np.array([0.4]))
    env = VectorRaceEnv(oval, 1, CAR, mode="training", start_ndist=0.0, objects=boxes)
    seen = params_seen(env)
    env.reset(seed=0)
    for _ in range(80):
        _, _, terminated, _, info = env.step(STRAIGHT)
        if terminated[0]:
            break
    assert info["episodes"][0]["status"] == "crashed"
    first = seen[0]
    assert first["closest_objects"] == [0, 0] and first["object_in_camera"] is True
    assert first["objects_location"] == [[pytest.approx(xy[0, 0]), pytest.approx(xy[0, 1])]]
    assert first["objects_distance"][0] == pytest.approx(1.2, abs=0.01)
    assert first["objects_distance_from_center"][0] == pytest.approx(0.0, abs=1e-6)
    assert first["objects_speed"] == [0.0] and seen[-1]["is_crashed"] is True


def test_a_crash_in_a_race_costs_the_collision_penalty(oval):
    xy, yaw = oval.pose_at(np.array([1.2 / oval.length]))
    box = StaticBoxes(xy, yaw, np.array([0.5]), np.array([0.4]))
    env = VectorRaceEnv(oval, 1, CAR, mode="race", objects=box,
                        rules=RaceRules(total_laps=1, collision_penalty_s=5.0, time_cap_s=40))
    env.reset(seed=0)
    paused = 0
    while env.running[0] and env.lap_counters.crash[0] == 0 and env.steps[0] < 400:
        env.step(STRAIGHT)
    while env.running[0] and env.held[0]:
        env.step(STRAIGHT)
        paused += 1
    assert env.lap_counters.crash[0] == 1 and paused == pytest.approx(5.0 * 15, abs=1)


def test_bot_cars_drive_their_lane_and_change_lanes(oval):
    bots = BotCars(oval, [0.5, 0.7], ["inner", "outer"], speed=1.0, lane_change_every_s=2.0)
    start = bots.ndist.copy()
    env = VectorRaceEnv(oval, 1, CAR, mode="training", objects=bots)
    seen = params_seen(env)
    env.reset(seed=0)
    for _ in range(16):
        env.step(STRAIGHT)
    travelled = (bots.ndist - start) % 1.0 * oval.length
    assert travelled == pytest.approx([16 / 15, 16 / 15], rel=1e-6)
    assert seen[-1]["objects_speed"] == [1.0, 1.0]
    assert seen[-1]["objects_heading"][0] == pytest.approx(float(bots.yaws[0]), abs=0.2)
    for _ in range(20):
        env.step(STRAIGHT)
    assert bots.lanes == ["outer", "inner"]


def test_a_car_reset_after_hitting_a_box_restarts_a_metre_behind_it_and_can_steer_round(oval):
    box_at = 1.2 / oval.length
    xy, yaw = oval.pose_at(np.array([box_at]))
    box = StaticBoxes(xy, yaw, np.array([0.5]), np.array([0.4]))
    env = VectorRaceEnv(oval, 1, CAR, mode="race", objects=box,
                        rules=RaceRules(total_laps=1, collision_penalty_s=0.0, time_cap_s=40))
    env.reset(seed=0)
    while env.running[0] and env.lap_counters.crash[0] == 0 and env.steps[0] < 400:
        env.step(STRAIGHT)
    assert env.lap_counters.crash[0] == 1
    reset_at = oval.project(np.array([[env.car.x[0], env.car.y[0]]])).s[0]
    assert reset_at == pytest.approx(1.2 - 1.0, abs=0.02)  # RESET_BEHIND_DISTANCE_M behind the box's centre
    assert 0.0 <= env.progress[0] == pytest.approx(100.0 * 0.2 / oval.length, abs=0.1)
    assert not box.collisions(env.car).any()


def test_a_race_trace_records_where_the_bot_cars_were_at_every_step(oval):
    bots = BotCars(oval, [0.5, 0.7], ["inner", "outer"], speed=1.0)
    env = VectorRaceEnv(oval, 1, CAR, mode="race", objects=bots, record_trace=True,
                        rules=RaceRules(total_laps=1, time_cap_s=40))
    env.reset(seed=0)
    for _ in range(30):
        env.step(STRAIGHT)
    trace = env.record(0).trace
    assert len(trace["bots"]) == len(trace["x"]) == 30
    last = np.asarray(trace["bots"][-1]).reshape(2, 3)  # x, y, yaw (degrees) of each bot
    assert last[:, :2] == pytest.approx(bots.centres)
    assert last[:, 2] == pytest.approx(np.degrees(bots.yaws))
    first = np.asarray(trace["bots"][0]).reshape(2, 3)
    assert np.hypot(*(last[0, :2] - first[0, :2])) == pytest.approx(29 / 15, rel=0.05)  # 1 m/s for 29 steps


def test_a_time_trial_trace_has_no_bot_column(oval):
    env = VectorRaceEnv(oval, 1, CAR, mode="race", record_trace=True, rules=RaceRules(total_laps=1))
    env.reset(seed=0)
    env.step(STRAIGHT)
    assert "bots" not in env.record(0).trace


def test_the_scripted_driver_races_into_a_box_on_its_centre_line(oval):
    """run_driver_race takes the race's objects: the centre-line driver does not avoid them, so it crashes."""
    from sim.race.drivers import PurePursuitDriver
    from sim.race.evaluation import run_driver_race
    from sim.world.vehicle import get_vehicle

    xy, yaw = oval.pose_at(np.array([3.0 / oval.length]))
    box = StaticBoxes(xy, yaw, np.array([0.5]), np.array([0.4]))
    rules = RaceRules(total_laps=1, time_cap_s=60)
    driver, vehicle = PurePursuitDriver(oval, max_speed=1.0), get_vehicle("original_deepracer")
    clear = run_driver_race(driver, vehicle, rules)
    blocked = run_driver_race(driver, vehicle, rules, objects=box)
    assert sum(lap.crash_count for lap in clear.laps) == 0
    assert sum(lap.crash_count for lap in blocked.laps) >= 1


def test_a_box_on_the_racing_line_costs_one_collision_and_one_reset_then_the_car_completes_the_lap(oval):
    """SPEC §3: after a collision the car is reset 1 m behind the box, so a model that steers round it after the
    reset drives on (reset next to the box, it hit it again and again). The centre-line driver stands for a model
    that meets the box, then keeps to the outer lane."""
    from deepracer.logs import AnalysisUtils, SimulationLogsIO

    from sim.io.simtrace import write_sim_trace_log
    from sim.race.drivers import PurePursuitDriver
    from sim.world.vehicle import get_vehicle

    xy, yaw = oval.pose_at(np.array([3.0 / oval.length]))
    box = StaticBoxes(xy, yaw, np.array([0.5]), np.array([0.4]))
    vehicle = get_vehicle("original_deepracer")
    env = VectorRaceEnv(oval, 1, vehicle, mode="race", objects=box, record_simtrace=True,
                        rules=RaceRules(total_laps=1, collision_penalty_s=5.0, time_cap_s=120))
    driver = PurePursuitDriver(oval, max_speed=1.0)
    env.reset(seed=0)
    while env.running[0]:
        if env.lap_counters.crash[0]:
            driver.lane = "outer"
        env.step(driver.actions(env.car, vehicle))
    record = env.take_record(0)

    [lap] = record.laps
    assert (lap.episode_status, lap.completion_percentage) == ("Lap complete", 100.0)
    assert (lap.crash_count, lap.reset_count, lap.off_track_count) == (1, 1, 0)
    statuses = [row.episode_status for row in record.simtrace]
    assert statuses.count("crashed") == 1 and statuses[-1] == "lap_complete"
    assert statuses.count("pause") == pytest.approx(5.0 * 15, abs=1)
    log = io.StringIO()
    write_sim_trace_log(log, record.simtrace)
    log.seek(0)
    frame = SimulationLogsIO.convert_to_pandas(SimulationLogsIO.load_buffer(log), stream="local")
    [aggregate] = AnalysisUtils.simulation_agg(frame, "stream", "episode", is_eval=True).to_dict("records")
    assert (aggregate["crashed"], aggregate["complete"], aggregate["progress"]) == (1, 1, 100.0)
