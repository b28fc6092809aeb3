"""Simulator throughput on one core: car-steps per second for 1 and 64 cars.

(a) physics + race rules + params (no reward function, no sensor rendering beyond the camera-free path),
(b) + the lab's Example 1 reward function (Python, called once per car per step),
(c) + FRONT_FACING_CAMERA frames, (d) + LIDAR.
Targets (2-core machine, one core): (a) >= 100,000 car-steps/s with 64 cars; (c) >= 5,000 frames/s batched.
The DeepRacer Gazebo simulation runs 15 steps/s per worker in real time.

Run: .venv/bin/python benchmarks/sim_throughput.py [--seconds 3]
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[variable] = "1"  # one core, before numpy loads

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from sim.race.drivers import PurePursuitDriver  # noqa: E402
from sim.race.env import VectorRaceEnv  # noqa: E402
from sim.world.builtin_tracks import build_builtin_track  # noqa: E402
from sim.world.reward_examples import EXAMPLES  # noqa: E402
from sim.world.reward_function import RewardFunction  # noqa: E402
from sim.world.vehicle import ContinuousActionSpace, Vehicle  # noqa: E402

GAZEBO_STEPS_PER_SECOND = 15


class _NoSensor:
    """Stands in for the camera in configurations (a) and (b): observations are not rendered."""

    name = "NONE"

    def observe(self, track, x, y, yaw, objects=None):
        return np.zeros((len(x), 0), dtype=np.uint8)


def measure(cars: int, sensors: tuple[str, ...], reward: bool, seconds: float) -> float:
    track = build_builtin_track("pitlane_technical")
    vehicle = Vehicle(sensors or ("FRONT_FACING_CAMERA",), "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW",
                      ContinuousActionSpace(-30.0, 30.0, 0.5, 2.0))
    reward_function = RewardFunction.from_source(EXAMPLES["example_1_follow_center_line"]) if reward else None
    env = VectorRaceEnv(track, cars, vehicle, reward_function=reward_function, mode="training", seed=0)
    if not sensors:
        env.sensors = [_NoSensor()]
    env.reset(seed=0)
    driver = PurePursuitDriver(track, max_speed=2.0)
    actions = driver.actions(env.car, vehicle)
    steps = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        if steps % 10 == 0:  # the driver's own cost is not the simulator's: refresh its actions now and then
            actions = driver.actions(env.car, vehicle)
        env.step(actions)
        steps += 1
    return steps * cars / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per configuration")
    args = parser.parse_args()
    configurations = {
        "a_physics_rules_params": ((), False),
        "b_plus_python_reward": ((), True),
        "c_plus_camera": (("FRONT_FACING_CAMERA",), True),
        "d_plus_lidar": (("FRONT_FACING_CAMERA", "LIDAR"), True),
    }
    figures: dict[str, dict[str, float]] = {}
    print(f"{'configuration':<26}{'1 car':>14}{'64 cars':>14}   car-steps/s (x Gazebo real time at 64)")
    for name, (sensors, reward) in configurations.items():
        figures[name] = {str(cars): round(measure(cars, sensors, reward, args.seconds)) for cars in (1, 64)}
        speedup = figures[name]["64"] / GAZEBO_STEPS_PER_SECOND
        print(f"{name:<26}{figures[name]['1']:>14,}{figures[name]['64']:>14,}   x{speedup:,.0f}")
    targets = {"a_64_cars_at_least": 100_000, "c_64_cars_frames_at_least": 5_000}
    met = {"a": figures["a_physics_rules_params"]["64"] >= 100_000, "c": figures["c_plus_camera"]["64"] >= 5_000}
    print(f"targets: (a) >= 100,000 with 64 cars: {'met' if met['a'] else 'MISSED'}; "
          f"(c) >= 5,000 frames/s: {'met' if met['c'] else 'MISSED'}")
    print(json.dumps({"benchmark": "sim_throughput", "car_steps_per_second": figures, "targets": targets,
                      "targets_met": met}))


if __name__ == "__main__":
    main()
