"""Simulator throughput on one core: car-steps per second for 1 and 64 cars.

(a) physics + race rules + params (no reward function, no sensor rendering beyond the camera-free path),
(b) + the lab's Example 1 reward function (Python, called once per car per step),
(c) + FRONT_FACING_CAMERA frames, (d) + LIDAR;
(e) one evaluation of the demo race (races.setup: 3 laps of the technical loop, its rules) by its baseline model (the
    garage's pitlane_racer cloned from the racing-line driver, cached under benchmarks/out/ like
    evaluation_throughput's), batch 1 as the sandboxed runner races it: CPU time per step in the network (the fp32
    network, torch's batch-1 plan ``sim.learn.inference``, and the ONNX race plan the league's sandbox races,
    ``sim.learn.onnx_plan``; the target is read on the last) and in the simulator (``env.step``: physics,
    rules, camera, records), and simulated seconds per CPU second. Races alternate between the two networks and
    figures are medians over races of per-race means (CPU time of this thread, so other load counts less).
Targets (2-core machine, one core): (a) >= 100,000 car-steps/s with 64 cars; (c) >= 5,000 frames/s batched;
(e) >= 100x real time per core (<= 0.67 ms per step in all).
The DeepRacer Gazebo simulation runs 15 steps/s per worker in real time.

Run: .venv/bin/python benchmarks/sim_throughput.py [--seconds 3] [--races 6]
The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

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
DEMO_MODEL = Path(__file__).resolve().parent / "out" / "demo-baseline.tar.gz"  # evaluation_throughput's cache


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


def demo_baseline(path: Path):
    """(vehicle, network, track) of the demo race's baseline entry (races.setup's recipe), trained once (~1 min)."""
    from sim.io.archive import load_actor_critic, write_model_archive
    from sim.learn.imitation import clone_racing_line_driver
    from sim.world.vehicle import get_vehicle

    track = build_builtin_track("pitlane_technical").with_direction("counterclockwise")
    if not path.exists():
        vehicle = get_vehicle("pitlane_racer")
        network = clone_racing_line_driver(track, vehicle).network
        path.parent.mkdir(parents=True, exist_ok=True)
        write_model_archive(path, vehicle, network.state_dict())
    vehicle, network = load_actor_critic(path)
    return vehicle, network, track


def measure_demo_race(races: int) -> dict:
    """(e): per-step CPU split of the demo race's evaluation: the fp32 network, torch's plan, the league's ONNX plan."""
    import torch

    from sim.learn.agent import race_policy
    from sim.learn.inference import resolve_precision
    from sim.learn.onnx_plan import race_plan_bytes
    from sim.race.evaluation import _race_env
    from sim.race.onnx_policy import OnnxRacePolicy
    from sim.sensors.floor import floor_raster
    from sim.world.rules import RaceRules

    torch.set_num_threads(1)
    vehicle, network, track = demo_baseline(DEMO_MODEL)
    rules = RaceRules(total_laps=3, off_track_penalty_s=2.0, collision_penalty_s=5.0, max_resets=None,
                      time_cap_s=180)
    floor_raster(track)  # the runner prepares these before the model arrives: not racing time
    track.contains(np.zeros((1, 2)))
    clock = time.thread_time
    plan = resolve_precision("auto")
    policies = {"fp32": race_policy(network, "fp32"), plan: race_policy(network, "auto"),
                "onnx": OnnxRacePolicy(race_plan_bytes(network), vehicle)}
    samples: dict[str, dict[str, list[float]]] = {name: {"network": [], "sim": [], "x": []} for name in policies}
    laps: dict[str, list[int]] = {}
    for _ in range(races):
        for name, policy in policies.items():
            env = _race_env(track, vehicle, rules, 0, None, 0.0, True)  # as run_race, with the clock per part
            observation, _ = env.reset(seed=0)
            network_s = sim_s = 0.0
            steps = 0
            while env.running[0]:
                started = clock()
                action = policy(observation)
                between = clock()
                observation, *_ = env.step(action)
                sim_s += clock() - between
                network_s += between - started
                steps += 1
            record = env.take_record(0)
            laps[name] = [lap.elapsed_time_in_milliseconds for lap in record.laps]
            samples[name]["network"].append(network_s / steps * 1000)
            samples[name]["sim"].append(sim_s / steps * 1000)
            samples[name]["x"].append(sum(laps[name]) / 1000 / (network_s + sim_s))
    figures = {}
    for name, values in samples.items():
        network_ms, sim_ms = statistics.median(values["network"]), statistics.median(values["sim"])
        figures[name] = {"network_ms_per_step": round(network_ms, 3), "sim_ms_per_step": round(sim_ms, 3),
                         "total_ms_per_step": round(network_ms + sim_ms, 3),
                         "x_real_time_per_core": round(statistics.median(values["x"]), 1), "laps_ms": laps[name]}
    return {"plan": "onnx", "races": races, "by_network": figures,
            "same_laps": len({tuple(v) for v in laps.values()}) == 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per configuration")
    parser.add_argument("--races", type=int, default=6, help="(e): demo races per network (0: skip)")
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
    targets = {"a_64_cars_at_least": 100_000, "c_64_cars_frames_at_least": 5_000, "e_x_real_time_at_least": 100}
    met = {"a": figures["a_physics_rules_params"]["64"] >= 100_000, "c": figures["c_plus_camera"]["64"] >= 5_000}
    demo = measure_demo_race(args.races) if args.races else {}
    if demo:
        print(f"\n(e) demo race, batch 1, CPU ms per step (median of {demo['races']} races each; load average "
              f"{os.getloadavg()[0]:.2f})")
        print(f"{'network':<12}{'network':>10}{'simulator':>11}{'total':>9}{'x real time':>13}   laps (ms)")
        for name, row in demo["by_network"].items():
            print(f"{name:<12}{row['network_ms_per_step']:>10.3f}{row['sim_ms_per_step']:>11.3f}"
                  f"{row['total_ms_per_step']:>9.3f}{row['x_real_time_per_core']:>12.1f}x   {row['laps_ms']}")
        met["e"] = demo["by_network"][demo["plan"]]["x_real_time_per_core"] >= 100
        print(f"same laps with every network: {demo['same_laps']}")
    print(f"targets: (a) >= 100,000 with 64 cars: {'met' if met['a'] else 'MISSED'}; "
          f"(c) >= 5,000 frames/s: {'met' if met['c'] else 'MISSED'}"
          + (f"; (e) >= 100x real time: {'met' if met['e'] else 'MISSED'}" if demo else ""))
    print(json.dumps({"benchmark": "sim_throughput", "car_steps_per_second": figures, "demo_race": demo,
                      "targets": targets, "targets_met": met, "load_average": os.getloadavg()}))


if __name__ == "__main__":
    main()
