"""Driving a policy through a race under race rules: laps, trace for the replay, simtrace rows.

The one implementation used by the local evaluation command, the evaluator's sandboxed runner and tests.
Deterministic: the policy is expected to act greedily (argmax / mean) and the simulator has no noise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.io.simtrace import SimTraceRow
from sim.race.drivers import PurePursuitDriver
from sim.race.env import VectorRaceEnv
from sim.race.scoring import LapMetrics
from sim.world.rules import RaceRules
from sim.world.track import Track
from sim.world.vehicle import Vehicle

Policy = Callable[[Any], np.ndarray]


@dataclass(frozen=True)
class RaceRun:
    laps: list[LapMetrics]
    trace: dict[str, list]
    simtrace: list[SimTraceRow]
    steps: int
    # Seconds spent choosing actions (the model's network, for a model's race); the rest of the race is the
    # simulator. Both are reported apart because the network's cost is the racer's choice of architecture.
    policy_s: float = 0.0


def run_race(policy: Policy, track: Track, vehicle: Vehicle, rules: RaceRules, seed: int = 0,
             objects: Any = None, start_ndist: float = 0.0, record_simtrace: bool = True) -> RaceRun:
    """Race one car from the start line until its laps, reset budget or time cap end the run."""
    env = _race_env(track, vehicle, rules, seed, objects, start_ndist, record_simtrace)
    return _drive(env, policy, seed)


def run_driver_race(driver: PurePursuitDriver, vehicle: Vehicle, rules: RaceRules, seed: int = 0,
                    objects: Any = None, start_ndist: float = 0.0, record_simtrace: bool = False) -> RaceRun:
    """The same race driven by the scripted driver (it reads the car's state instead of the camera, and follows
    the centre line: it does not steer round objects)."""
    env = _race_env(driver.track, vehicle, rules, seed, objects, start_ndist, record_simtrace)
    return _drive(env, lambda _observation: driver.actions(env.car, vehicle), seed)


def _race_env(track, vehicle, rules, seed, objects, start_ndist, record_simtrace) -> VectorRaceEnv:
    return VectorRaceEnv(track, 1, vehicle, mode="race", rules=rules, seed=seed, start_ndist=start_ndist,
                         record_simtrace=record_simtrace, record_trace=True, objects=objects)


def _drive(env: VectorRaceEnv, choose: Policy, seed: int) -> RaceRun:
    observation, _ = env.reset(seed=seed)
    steps, policy_s = 0, 0.0
    while env.running[0]:
        choosing = time.perf_counter()
        action = np.asarray(choose(observation))
        policy_s += time.perf_counter() - choosing
        observation, *_ = env.step(action)
        steps += 1
    record = env.take_record(0)
    return RaceRun(laps=record.laps, trace=record.trace, simtrace=record.simtrace, steps=steps, policy_s=policy_s)
