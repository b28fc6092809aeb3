"""Racing environments: ``VectorRaceEnv`` steps N cars in one numpy call; ``RaceEnv`` is a Gymnasium Env.

One step is 1/15 s of simulated time (one camera frame). Semantics follow the simapp (SPEC §3):
- the first step of an episode is a *prepare* step: the car is held, the reward is 0 and the reward function
  is not called, so the first call sees ``steps == 2.0``;
- params, reward and the end-of-episode decision of a step describe the state in which the action was
  chosen, before its physics; the returned observation is the frame after the physics;
- ``mode="training"``: any of lap complete / crashed / off track / immobilized / reversed ends the episode,
  the car restarts at once (same-step auto-reset: the returned observation is the new episode's first frame,
  the finished episode is reported in ``info["episodes"]``) and the start advances 5 % of the lap;
- ``mode="race"``: a mistake resets the car onto the lane nearer its last pose at its last progress and holds
  it for the penalty while the clock runs; laps are counted continuously until ``rules.total_laps``, the
  reset budget or the time cap ends the run. Finished cars stay put.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sim.io.simtrace import SimTraceRow
from sim.race.scoring import LapMetrics
from sim.sensors import make_sensor
from sim.world import rules as R
from sim.world.car import DEFAULT_CAR, CarSpec, CarState, advance, body_points, clip_commands
from sim.world.objects import BotCars
from sim.world.params import StepGeometry, params_dicts, step_geometry
from sim.world.reward_function import RewardFunction
from sim.world.track import Track
from sim.world.vehicle import Vehicle

RUN, HELD = 0, 1  # phases besides the status codes: a held car is preparing or serving a penalty


@dataclass
class _LapCounters:
    off_track: np.ndarray
    crash: np.ndarray
    immobilized: np.ndarray
    reversed: np.ndarray
    resets: np.ndarray

    @classmethod
    def zeros(cls, n: int) -> _LapCounters:
        return cls(*(np.zeros(n, dtype=np.int64) for _ in range(5)))

    def clear(self, cars: np.ndarray) -> None:
        for counter in (self.off_track, self.crash, self.immobilized, self.reversed, self.resets):
            counter[cars] = 0


@dataclass
class RaceRecord:
    """What a race-mode run produced for one car."""

    laps: list[LapMetrics] = field(default_factory=list)
    # t, x, y, yaw (degrees), speed, status per step; with bot cars on the track also "bots": per step the flat
    # [x, y, yaw (degrees)] of every bot, so a replay can show them where they were.
    trace: dict[str, list] = field(default_factory=lambda: {k: [] for k in ("t", "x", "y", "yaw", "speed", "status")})
    simtrace: list[SimTraceRow] = field(default_factory=list)


class VectorRaceEnv:
    """N cars on one track, stepped together (Gymnasium vector-env style API)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        track: Track,
        num_envs: int,
        vehicle: Vehicle,
        reward_function: RewardFunction | None = None,
        mode: str = "training",
        rules: R.RaceRules | None = None,
        seed: int | None = None,
        start_ndist: np.ndarray | float | None = None,
        record_simtrace: bool = False,
        record_trace: bool = False,
        objects: Any = None,
        spec: CarSpec = DEFAULT_CAR,
        max_episode_steps: int = 3000,
        start_lane: str | None = None,
    ) -> None:
        if mode not in ("training", "race"):
            raise ValueError("mode must be 'training' or 'race'")
        if start_lane not in (None, "inner", "outer"):
            raise ValueError("start_lane must be None (the centre line), 'inner' or 'outer'")
        # Head-to-head races start two cars side by side, one per lane; everything else starts on the centre line.
        self.start_lane = start_lane
        self.track, self.num_envs, self.vehicle, self.mode = track, num_envs, vehicle, mode
        self.reward_function = reward_function
        self.rules = rules or R.RaceRules()
        self.spec, self.objects = spec, objects
        self.record_simtrace, self.record_trace = record_simtrace, record_trace
        self.max_episode_steps = max_episode_steps
        self.sensors = [make_sensor(name) for name in vehicle.sensors]
        self.single_observation_space = (
            self.sensors[0].observation_space if len(self.sensors) == 1
            else spaces.Dict({s.name: s.observation_space for s in self.sensors})
        )
        if vehicle.is_discrete:
            self.single_action_space: spaces.Space = spaces.Discrete(len(vehicle.action_space.actions))
        else:
            self.single_action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._waypoints = [(float(x), float(y)) for x, y in track.center]
        self._rng = np.random.default_rng(seed)
        n = num_envs
        self.car = CarState.zeros(n)
        if start_ndist is None:
            start_ndist = np.arange(n) * R.ROUND_ROBIN_ADVANCE % 1.0
        self.start_ndist = np.broadcast_to(np.asarray(start_ndist, dtype=np.float64), (n,)).copy()
        self.phase = np.full(n, HELD)
        self.hold_s = np.zeros(n)
        self.steps = np.zeros(n)
        self.clock = np.zeros(n)
        self.lap_start = np.zeros(n)
        self.prev_progress = np.zeros(n)
        self.progress = np.zeros(n)
        self.immobile = np.zeros(n, dtype=np.int64)
        self.falling = np.zeros(n, dtype=np.int64)
        self.resets_used = np.zeros(n, dtype=np.int64)
        self.laps_done = np.zeros(n, dtype=np.int64)
        self.active = np.ones(n, dtype=bool)
        self.episode_reward = np.zeros(n)
        self.episode_index = np.arange(n)
        self._next_episode = n
        self.status = np.full(n, R.PREPARE)
        self.counters = _LapCounters.zeros(n)
        self.records = [RaceRecord() for _ in range(n)]

    # ----------------------------------------------------------------------------------------- API
    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._start_episodes(np.arange(self.num_envs))
        self.records = [RaceRecord() for _ in range(self.num_envs)]
        return self._observe(), self._info([])

    def step(self, actions: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        n, dt = self.num_envs, self.spec.dt
        steering_deg, speed = self.vehicle.action_to_command(np.asarray(actions))
        live = self.active.copy()
        self.steps[live] += 1
        self.clock[live] += dt
        geometry = step_geometry(self.track, self.car, self.spec, self.objects)
        progress = R.progress(geometry.ndist, self.start_ndist, self.prev_progress)
        running = live & (self.phase == RUN)
        held = live & (self.phase == HELD)

        status = np.where(held, np.where(self.steps <= 1, R.PREPARE, R.PAUSE), R.IN_PROGRESS)
        moved = np.hypot(self.car.x - self._last_x, self.car.y - self._last_y)
        self.immobile = np.where(running & (moved <= R.IMMOBILIZED_DISTANCE), self.immobile + 1, 0)
        self.falling = np.where(running & (progress < self.prev_progress), self.falling + 1, 0)
        decided = R.first_true(
            progress >= 100.0, geometry.crashed, geometry.off_track,
            self.immobile >= R.IMMOBILIZED_STEPS, self.falling >= R.REVERSED_STEPS,
        )
        status = np.where(running, decided, status)

        rewards = np.zeros(n)
        if self.reward_function is not None and running.any():
            cars = np.flatnonzero(running)
            for car, params in zip(cars, params_dicts(self.track, self.car, geometry, steering_deg, speed,
                                                      self.steps, progress, cars, self._waypoints, self.objects),
                                   strict=True):
                rewards[car] = self.reward_function(params)
        self.episode_reward += rewards
        self.progress = np.where(live, progress, self.progress)
        self.prev_progress = np.where(live, progress, self.prev_progress)
        self._last_x, self._last_y = self.car.x.copy(), self.car.y.copy()

        ended = np.zeros(n, dtype=bool)
        finished_episodes: list[dict] = []
        if self.mode == "training":
            ended = running & (status != R.IN_PROGRESS)
            truncated = live & ~ended & (self.steps >= self.max_episode_steps)
        else:
            ended, truncated = self._apply_race_rules(running, status, geometry), np.zeros(n, dtype=bool)
        self.status = status

        # Held cars count down; the rest that go on drive their action.
        self.hold_s = np.where(held, self.hold_s - dt, self.hold_s)
        self.phase = np.where(held & (self.hold_s <= 1e-9), RUN, self.phase)
        steering_cmd, speed_cmd = clip_commands(steering_deg, speed, self.spec)
        drives = (status == R.IN_PROGRESS) | (status == R.LAP_COMPLETE)  # a continuous race drives on over the line
        advance(self.car, steering_cmd, speed_cmd, running & ~ended & drives, self.spec)
        if self.objects is not None:
            self.objects.step(dt)  # bot cars drive on; boxes stay

        if self.record_simtrace or self.record_trace:
            self._record(live, geometry, status, steering_deg, speed, actions, rewards, ended | truncated)

        done = ended | truncated
        if done.any():
            cars = np.flatnonzero(done)
            finished_episodes = [self._episode_summary(car, status[car], bool(truncated[car])) for car in cars]
            if self.mode == "training":
                self._advance_start(cars)
                self._start_episodes(cars)
            else:
                self.active[cars] = False
        return self._observe(), rewards, ended, truncated, self._info(finished_episodes)

    # ------------------------------------------------------------------------------------ internals
    def _start_episodes(self, cars: np.ndarray) -> None:
        if self.start_lane is None:
            xy, yaw = self.track.pose_at(self.start_ndist[cars])
        else:
            xy, yaw = self.track.lane_pose(self.start_ndist[cars], self.start_lane)
        self.car.place(cars, xy[:, 0], xy[:, 1], yaw)
        self.phase[cars] = HELD
        self.hold_s[cars] = self.spec.dt  # the prepare step
        for array in (self.steps, self.clock, self.lap_start, self.prev_progress, self.progress, self.episode_reward):
            array[cars] = 0.0
        for array in (self.immobile, self.falling, self.resets_used, self.laps_done):
            array[cars] = 0
        self.counters.clear(cars)
        self.status[cars] = R.PREPARE
        self.active[cars] = True
        if not hasattr(self, "_last_x"):
            self._last_x, self._last_y = self.car.x.copy(), self.car.y.copy()
        self._last_x[cars], self._last_y[cars] = self.car.x[cars], self.car.y[cars]
        self.episode_index[cars] = self._next_episode + np.arange(len(cars)) if self.mode == "training" else 0
        if self.mode == "training":
            self._next_episode += len(cars)

    def _advance_start(self, cars: np.ndarray) -> None:
        self.start_ndist[cars] = (self.start_ndist[cars] + R.ROUND_ROBIN_ADVANCE * self.num_envs) % 1.0

    def _apply_race_rules(self, running: np.ndarray, status: np.ndarray, geometry: StepGeometry) -> np.ndarray:
        ended = np.zeros(self.num_envs, dtype=bool)
        rules = self.rules
        for car in np.flatnonzero(running & (status != R.IN_PROGRESS)):
            code = int(status[car])
            if code == R.LAP_COMPLETE:
                self._close_lap(car, R.LAP_COMPLETE, 100.0)
                self.laps_done[car] += 1
                self.prev_progress[car] = 0.0
                self.lap_start[car] = self.clock[car]
                if self.laps_done[car] >= rules.total_laps or not rules.continuous:
                    ended[car] = True
                continue
            counter = {R.CRASHED: self.counters.crash, R.OFF_TRACK: self.counters.off_track,
                       R.IMMOBILIZED: self.counters.immobilized, R.REVERSED: self.counters.reversed}[code]
            counter[car] += 1
            if rules.max_resets is not None and self.resets_used[car] >= rules.max_resets:
                self._close_lap(car, code, float(self.progress[car]))
                ended[car] = True
                continue
            self.resets_used[car] += 1
            self.counters.resets[car] += 1
            self._reset_onto_lane(car)
            self.phase[car] = HELD
            self.hold_s[car] = float(rules.penalty_for(np.array([code]))[0])
            if self.hold_s[car] <= 0:
                self.phase[car] = RUN
            self.immobile[car] = self.falling[car] = 0
        over_time = self.active & ~ended & (self.clock >= rules.time_cap_s - 1e-9)
        for car in np.flatnonzero(over_time):
            status[car] = R.TIME_UP
            self._close_lap(car, R.TIME_UP, float(max(self.progress[car], 0.0)))
            ended[car] = True
        return ended

    def _reset_onto_lane(self, car: int) -> None:
        progress = max(self.prev_progress[car], 0.0)
        progress -= self._setback_from_objects(car, (self.start_ndist[car] + progress / 100.0) % 1.0) * 100.0
        self.prev_progress[car] = self.progress[car] = progress  # the progress of the reset pose
        ndist = np.array([(self.start_ndist[car] + progress / 100.0) % 1.0])
        candidates = [self.track.lane_pose(ndist, lane) for lane in ("inner", "outer")]
        here = np.array([self.car.x[car], self.car.y[car]])
        xy, yaw = min(candidates, key=lambda pose: float(np.hypot(*(pose[0][0] - here))))
        self.car.place(np.array([car]), xy[:, 0], xy[:, 1], yaw)
        self._last_x[car], self._last_y[car] = self.car.x[car], self.car.y[car]

    def _setback_from_objects(self, car: int, ndist: float) -> float:
        """How far (fraction of a lap) to move a reset back so it is not on or just before an object: the
        simapp resets a car ``RESET_BEHIND_DISTANCE_M`` behind an object it would land near, else a car reset
        after hitting a box lands next to it and hits it again."""
        if self.objects is None or not len(self.objects):
            return 0.0
        length = self.track.length
        object_ndist = self.track.project(np.asarray(self.objects.centres, dtype=np.float64)).ndist
        behind = R.RESET_BEHIND_DISTANCE_M / length
        past = (np.asarray(self.objects.lengths) / 2 + self.spec.footprint_length / 2) / length  # overlapping it
        setback = 0.0
        for _ in range(len(object_ndist)):  # each pass clears one more object (boxes may stand in a row)
            ahead = (object_ndist - (ndist - setback) + 0.5) % 1.0 - 0.5  # signed, in (-0.5, 0.5]
            near = (ahead > -past) & (ahead < behind)
            if not near.any():
                break
            setback += float(np.max(behind - ahead[near]))
        return min(setback, 0.5)

    def _close_lap(self, car: int, code: int, completion: float) -> None:
        counters = self.counters
        self.records[car].laps.append(LapMetrics(
            trial=len(self.records[car].laps) + 1,
            elapsed_time_in_milliseconds=round(float(self.clock[car] - self.lap_start[car]) * 1000),
            completion_percentage=round(float(min(max(completion, 0.0), 100.0)), 4),
            off_track_count=int(counters.off_track[car]),
            crash_count=int(counters.crash[car]),
            immobilized_count=int(counters.immobilized[car]),
            reversed_count=int(counters.reversed[car]),
            reset_count=int(counters.resets[car]),
            episode_status=R.STATUS_LABELS[code],
        ))
        counters.clear(np.array([car]))

    def _episode_summary(self, car: int, code: int, truncated: bool) -> dict:
        return {
            "car": int(car),
            "episode": int(self.episode_index[car]),
            "reward": float(self.episode_reward[car]),
            "progress": float(max(self.progress[car], 0.0)),
            "steps": int(self.steps[car]),
            "status": R.STATUS_NAMES[int(code)] if not truncated else "time_up",
            "lap_complete": int(code) == R.LAP_COMPLETE,
            "laps": int(self.laps_done[car]),
            "start_ndist": float(self.start_ndist[car]),
        }

    def _record(self, live, geometry, status, steering_deg, speed, actions, rewards, done) -> None:
        actions = np.asarray(actions)
        closest = self.track.closest_waypoint(geometry.point, geometry.ndist) if self.record_simtrace else None
        bots = None
        if self.record_trace and isinstance(self.objects, BotCars):  # a match's rival has a trace of its own
            poses = np.column_stack([self.objects.centres, np.degrees(self.objects.yaws)])
            bots = poses.ravel().tolist()
        for car in np.flatnonzero(live):
            code = int(status[car])
            if self.record_trace:
                trace = self.records[car].trace
                trace["t"].append(float(self.clock[car]))
                trace["x"].append(float(self.car.x[car]))
                trace["y"].append(float(self.car.y[car]))
                trace["yaw"].append(float(np.degrees(self.car.yaw[car])))
                trace["speed"].append(float(self.car.speed[car]))
                trace["status"].append(R.STATUS_NAMES[code])
                if bots is not None:
                    trace.setdefault("bots", []).append(bots)
            if self.record_simtrace:
                action = (int(actions[car]) if self.vehicle.is_discrete
                          else f"[{steering_deg[car]:.2f} {speed[car]:.2f}]")
                self.records[car].simtrace.append(SimTraceRow(
                    episode=int(self.episode_index[car] if self.mode == "training" else self.laps_done[car]),
                    steps=float(self.steps[car]),
                    X=float(geometry.point[car, 0]),
                    Y=float(geometry.point[car, 1]),
                    yaw=float(np.degrees(self.car.yaw[car])),
                    steer=float(steering_deg[car]),
                    throttle=float(speed[car]),
                    action=action,
                    reward=float(rewards[car]),
                    done=bool(done[car]),
                    all_wheels_on_track=bool(geometry.all_wheels_on_track[car]),
                    progress=float(self.progress[car]),
                    closest_waypoint=int(closest[car]),
                    track_len=float(self.track.length),
                    tstamp=float(self.clock[car]),
                    episode_status=R.STATUS_NAMES[code],
                    pause_duration=float(max(self.hold_s[car], 0.0)) if code == R.PAUSE else 0.0,
                    obstacle_crash_counter=int(self.counters.crash[car]),
                ))

    def _observe(self) -> Any:
        x, y, yaw = self.car.x, self.car.y, self.car.yaw
        if len(self.sensors) == 1:
            return self.sensors[0].observe(self.track, x, y, yaw, self.objects)
        return {s.name: s.observe(self.track, x, y, yaw, self.objects) for s in self.sensors}

    def _info(self, episodes: list[dict]) -> dict:
        return {
            "status": self.status.copy(),
            "progress": self.progress.copy(),
            "laps": self.laps_done.copy(),
            "episodes": episodes,
        }

    def wheel_points(self) -> np.ndarray:
        return body_points(self.car, self.spec.wheel_offsets())


class RaceEnv(gym.Env):
    """One car, Gymnasium API: training episodes end on any rule (SPEC §3); race mode runs the whole race."""

    metadata = {"render_modes": []}

    def __init__(self, track: Track, vehicle: Vehicle, reward_function: RewardFunction | None = None,
                 mode: str = "training", rules: R.RaceRules | None = None, max_episode_steps: int = 3000) -> None:
        self._env = VectorRaceEnv(track, 1, vehicle, reward_function, mode, rules,
                                  max_episode_steps=max_episode_steps)
        self.observation_space = self._env.single_observation_space
        self.action_space = self._env.single_action_space
        self._done = False

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        if options and "start_ndist" in options:
            self._env.start_ndist[:] = float(options["start_ndist"])
        observation, info = self._env.reset(seed=seed)
        self._done = False
        return _first(observation), self._scalar_info(info)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        env = self._env
        if env.mode == "training":
            # Step without the vector env's auto-reset: the caller resets, as Gymnasium expects.
            before = env.start_ndist.copy()
            observation, reward, terminated, truncated, info = env.step(np.asarray([action]))
            if terminated[0] or truncated[0]:
                env.start_ndist[:] = (before + R.ROUND_ROBIN_ADVANCE) % 1.0
        else:
            observation, reward, terminated, truncated, info = env.step(np.asarray([action]))
        return _first(observation), float(reward[0]), bool(terminated[0]), bool(truncated[0]), self._scalar_info(info)

    @staticmethod
    def _scalar_info(info: dict) -> dict:
        return {"status": R.STATUS_NAMES[int(info["status"][0])], "progress": float(info["progress"][0]),
                "laps": int(info["laps"][0]), "episodes": info["episodes"]}


def _first(observation: Any) -> Any:
    if isinstance(observation, dict):
        return {key: value[0] for key, value in observation.items()}
    return observation[0]
