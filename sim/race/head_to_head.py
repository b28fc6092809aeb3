"""Head-to-head matches (SPEC §8): two models race each other on one track, side by side from the start line.

Each car runs in its own single-car ``VectorRaceEnv`` (its own vehicle, sensors, race rules and records); the
two envs step in lockstep and each sees the other car as a ``RivalCar`` object, i.e. exactly like a bot car:
in its camera and lidar, in the reward params' object keys, and in collisions. Both rivals are synced from a
snapshot of both poses taken before either env steps, so neither car sees the other's future.

A contact between the two cars (either footprint has a corner inside the other) is a crash for the car
behind along the track, the one that ran into the other; when they are exactly level, for car B (the lower
seed, as in the outcome's tie rule). It is counted once, when the footprints first touch: cars that still
overlap do not crash again until they have separated. (Had both cars crashed, each would be reset behind the
other, and two cars converging on the same line, e.g. the same model twice, would meet again and again.)
A car whose run has ended leaves the track. The match ends when both runs have ended
(laps done, reset budget spent or time cap); ``sim.race.scoring.match_outcome`` decides the winner.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sim.race.drivers import PurePursuitDriver
from sim.race.env import VectorRaceEnv
from sim.race.evaluation import Policy, RaceRun
from sim.race.scoring import MatchOutcome, match_outcome
from sim.world.car import DEFAULT_CAR, CarSpec, CarState
from sim.world.objects import LANES, TrackObjects
from sim.world.rules import RaceRules
from sim.world.track import Track
from sim.world.vehicle import Vehicle

Chooser = Callable[[VectorRaceEnv, Any], np.ndarray]  # (the car's env, its observation) -> actions


class RivalCar(TrackObjects):
    """The other car of a match as seen from one env: its footprint, heading and speed, or nothing once gone."""

    def __init__(self, spec: CarSpec = DEFAULT_CAR) -> None:
        self.spec = spec
        self.contact = False  # set by the match: the two cars touched this step (a crash for the observer)
        super().__init__(np.zeros((1, 2)), np.zeros(1), np.full(1, spec.footprint_length),
                         np.full(1, spec.footprint_width), np.zeros(1), is_bot_car=True)

    def sync(self, x: float, y: float, yaw: float, speed: float, on_track: bool) -> None:
        """Show the rival at this pose (``on_track=False``: its run has ended and it has left the track)."""
        k = 1 if on_track else 0
        self.centres = np.array([[x, y]])[:k]
        self.yaws, self.speeds = np.array([yaw])[:k], np.array([speed])[:k]
        self.lengths = np.full(k, self.spec.footprint_length)
        self.widths = np.full(k, self.spec.footprint_width)

    def touches(self, state: CarState) -> np.ndarray:
        """(N,) whether a corner of the observing car lies inside the rival (the bot-car collision test)."""
        return super().collisions(state, self.spec)

    def collisions(self, state: CarState, spec: CarSpec = DEFAULT_CAR) -> np.ndarray:
        return np.full(len(state.x), self.contact)

    def step(self, dt: float) -> None:
        """The match moves the rival (``sync``), not the env."""


@dataclass(frozen=True)
class MatchRun:
    """Both cars' runs (index 0 is car A, the higher seed), their start lanes and the decided outcome."""

    cars: tuple[RaceRun, RaceRun]
    lanes: tuple[str, str]
    outcome: MatchOutcome
    steps: int


def start_lanes(seed: int) -> tuple[str, str]:
    """Lanes of car A and car B on the start line: drawn from the seed, so a re-run starts the same way."""
    inner_first = np.random.default_rng(seed).random() < 0.5
    return (LANES[0], LANES[1]) if inner_first else (LANES[1], LANES[0])


def run_match(policies: Sequence[Policy], track: Track, vehicles: Sequence[Vehicle], rules: RaceRules,
              seed: int = 0, record_simtrace: bool = True) -> MatchRun:
    """Race two policies (car A first) against each other; deterministic for the same policies and seed."""
    choosers = [_observing(policy) for policy in policies]
    return _match(choosers, track, vehicles, rules, seed, record_simtrace)


def run_driver_match(drivers: Sequence[PurePursuitDriver], vehicles: Sequence[Vehicle], rules: RaceRules,
                     seed: int = 0, record_simtrace: bool = False) -> MatchRun:
    """The same match between scripted drivers (they read their car's state instead of the camera)."""
    choosers = [_driving(driver, vehicle) for driver, vehicle in zip(drivers, vehicles, strict=True)]
    return _match(choosers, drivers[0].track, vehicles, rules, seed, record_simtrace)


def _observing(policy: Policy) -> Chooser:
    return lambda _env, observation: policy(observation)


def _driving(driver: PurePursuitDriver, vehicle: Vehicle) -> Chooser:
    return lambda env, _observation: driver.actions(env.car, vehicle)


def _match(choosers: Sequence[Chooser], track: Track, vehicles: Sequence[Vehicle], rules: RaceRules, seed: int,
           record_simtrace: bool) -> MatchRun:
    if len(choosers) != 2 or len(vehicles) != 2:
        raise ValueError("a match is between exactly two cars")
    lanes = start_lanes(seed)
    rivals = (RivalCar(), RivalCar())  # rivals[i] is what car i sees
    envs = [VectorRaceEnv(track, 1, vehicle, mode="race", rules=rules, seed=seed, start_ndist=0.0,
                          record_simtrace=record_simtrace, record_trace=True, objects=rival, start_lane=lane)
            for vehicle, rival, lane in zip(vehicles, rivals, lanes, strict=True)]
    observations = [env.reset(seed=seed)[0] for env in envs]
    touching, steps = False, 0
    policy_s = [0.0, 0.0]
    while any(env.running[0] for env in envs):
        touching = _sync(envs, rivals, touching)
        for i, env in enumerate(envs):
            if env.running[0]:
                choosing = time.perf_counter()
                action = np.asarray(choosers[i](env, observations[i]))
                policy_s[i] += time.perf_counter() - choosing
                observations[i] = env.step(action)[0]
        steps += 1
    records = [env.take_record(0) for env in envs]
    runs = tuple(RaceRun(laps=record.laps, trace=record.trace, simtrace=record.simtrace, steps=int(env.steps[0]),
                         policy_s=seconds)
                 for env, record, seconds in zip(envs, records, policy_s, strict=True))
    outcome = match_outcome(runs[0].laps, runs[1].laps, rules.total_laps)
    return MatchRun(cars=(runs[0], runs[1]), lanes=lanes, outcome=outcome, steps=steps)


def _sync(envs: list[VectorRaceEnv], rivals: tuple[RivalCar, RivalCar], touching_before: bool) -> bool:
    """Show each car the other's current pose (one snapshot for both) and flag a new contact to the car behind."""
    snapshot = [(float(env.car.x[0]), float(env.car.y[0]), float(env.car.yaw[0]), float(env.car.speed[0]),
                 bool(env.running[0])) for env in envs]
    rivals[0].sync(*snapshot[1])
    rivals[1].sync(*snapshot[0])
    # Symmetric: a corner of either car inside the other is a contact for both.
    touching = bool(rivals[0].touches(envs[0].car)[0] or rivals[1].touches(envs[1].car)[0])
    contact = touching and not touching_before
    behind = _behind(envs[0].track, snapshot) if contact else None
    rivals[0].contact, rivals[1].contact = behind == 0, behind == 1
    return touching


def _behind(track: Track, snapshot: list[tuple]) -> int:
    """Which car (0 or 1) is behind the other along the track; car 1 (B) when they are level."""
    s = track.project(np.array([[pose[0], pose[1]] for pose in snapshot])).s
    gap = (s[0] - s[1] + track.length / 2) % track.length - track.length / 2  # > 0: car 0 is ahead
    return 0 if gap < 0 else 1
