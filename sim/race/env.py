"""Racing environments: ``VectorRaceEnv`` steps N cars in one numpy call; ``RaceEnv`` is a Gymnasium Env.

One step is 1/15 s of simulated time (one camera frame). Semantics follow the simapp (SPEC §3):
- the first step of an episode is a *prepare* step: the car is held, the reward is 0 and the reward function
  is not called, so the first call sees ``steps == 2.0``;
- params, reward and the end-of-episode decision of a step describe the state in which the action was
  chosen, before its physics; the returned observation is the frame after the physics;
- ``mode="training"``: any of lap complete / crashed / off track / immobilized / reversed ends the episode,
  the car restarts at once and the start advances 5 % of the lap (Gymnasium's same-step autoreset: the returned
  observation is the new episode's first frame, ``info["final_obs"]``/``info["final_info"]`` describe the
  finished one, and ``info["episodes"]`` summarises it); with ``autoreset=False`` (``RaceEnv``) the finished car
  waits where its episode ended until ``reset``;
- ``mode="race"``: a mistake resets the car onto the lane nearer its last pose at its last progress and holds
  it for the penalty while the clock runs; laps are counted continuously until ``rules.total_laps``, the
  reset budget or the time cap ends the run. Finished cars are parked (autoreset disabled): they stay put and
  take no more steps until ``reset``.

The race-rule state machine (statuses, pauses, resets, laps, time cap) is ``sim.world.rules``; the env owns
each car's ``RuleState`` and adds physics, sensors, the reward function, reset placement and the records.
Callers use only the public operations: ``reset`` (with options: which cars, where they start), ``step``,
``park``, the read-only per-car views (``running``, ``steps``, ``progress``, ``laps``, ``held``,
``lap_counters``) and each car's ``record``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from sim.io.simtrace import SimTraceRow
from sim.race.scoring import LapMetrics
from sim.sensors import make_sensor
from sim.world import rules as race_rules
from sim.world.car import DEFAULT_CAR, CarSpec, CarState, advance, body_points, clip_commands
from sim.world.objects import BotCars
from sim.world.params import params_dicts, step_geometry
from sim.world.reward_function import RewardFunction
from sim.world.rules import STATUSES, CarPhase, EpisodeStatus, LapCounters, RaceRules, RuleState
from sim.world.track import Track
from sim.world.vehicle import Vehicle

RESET_OPTIONS = ("start_ndist", "reset_mask")


@dataclass
class RaceRecord:
    """What a car produced since its last reset: closed laps, and the trace and simtrace rows if recorded."""

    laps: list[LapMetrics] = field(default_factory=list)
    # t, x, y, yaw (degrees), speed, status per step; with bot cars on the track also "bots": per step the flat
    # [x, y, yaw (degrees)] of every bot, so a replay can show them where they were.
    trace: dict[str, list] = field(default_factory=lambda: {k: [] for k in ("t", "x", "y", "yaw", "speed", "status")})
    simtrace: list[SimTraceRow] = field(default_factory=list)


class VectorRaceEnv(VectorEnv):
    """N cars on one track, stepped together: a ``gymnasium.vector.VectorEnv`` with batched spaces.

    Autoreset: ``AutoresetMode.SAME_STEP`` in training mode (unless ``autoreset=False``), ``AutoresetMode.DISABLED``
    in race mode (see the module docstring); ``metadata["autoreset_mode"]`` says which.
    """

    def __init__(
        self,
        track: Track,
        num_envs: int,
        vehicle: Vehicle,
        reward_function: RewardFunction | None = None,
        mode: str = "training",
        rules: RaceRules | None = None,
        seed: int | None = None,
        start_ndist: np.ndarray | float | None = None,
        record_simtrace: bool = False,
        record_trace: bool = False,
        objects: Any = None,
        spec: CarSpec = DEFAULT_CAR,
        max_episode_steps: int = 3000,
        start_lane: str | None = None,
        autoreset: bool = True,
    ) -> None:
        if mode not in ("training", "race"):
            raise ValueError("mode must be 'training' or 'race'")
        if start_lane not in (None, "inner", "outer"):
            raise ValueError("start_lane must be None (the centre line), 'inner' or 'outer'")
        self.metadata = {
            "render_modes": [],
            "autoreset_mode": AutoresetMode.SAME_STEP if mode == "training" and autoreset else AutoresetMode.DISABLED,
        }
        self.autoreset = autoreset
        # Head-to-head races start two cars side by side, one per lane; everything else starts on the centre line.
        self.start_lane = start_lane
        self.track, self.num_envs, self.vehicle, self.mode = track, num_envs, vehicle, mode
        self.reward_function = reward_function
        self.rules = rules or RaceRules()
        # ``spec`` is Gymnasium's (the registered EnvSpec, None here); the car's dimensions are ``car_spec``.
        self.car_spec, self.objects = spec, objects
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
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        if seed is not None:  # the simulation draws no random numbers; np_random is Gymnasium's, for callers
            super().reset(seed=seed)
        self._waypoints = [(float(x), float(y)) for x, y in track.center]
        n = num_envs
        self.car = CarState.zeros(n)  # the physical state: drivers and matches read it
        if start_ndist is None:
            start_ndist = np.arange(n) * race_rules.ROUND_ROBIN_ADVANCE % 1.0
        self._start_ndist = np.broadcast_to(np.asarray(start_ndist, dtype=np.float64), (n,)).copy()
        self._rule_state = RuleState.zeros(n)
        self._running = np.zeros(n, dtype=bool)  # no car drives before its first reset
        self._last_x, self._last_y = self.car.x.copy(), self.car.y.copy()
        self._episode_reward = np.zeros(n)
        self._episode_index = np.zeros(n, dtype=np.int64)  # set by each car's first reset: episodes count from 0
        self._next_episode = 0
        self._records = [RaceRecord() for _ in range(n)]

    # ----------------------------------------------------------------------------------------- API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        """Start a new episode (a new run in race mode) for every car, or for the cars of ``reset_mask``.

        Options: ``reset_mask`` (N,) bool, the cars to restart (default all; the others keep their state, e.g.
        stay parked); ``start_ndist``, a fraction of the lap, or one per restarted car: where they start
        (default: where each car's episodes start now). A restarted car drives again and its record restarts.
        Returns the observation of every car and the step info.
        """
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = sorted(set(options) - set(RESET_OPTIONS))
        if unknown:
            raise ValueError(f"unknown reset options {unknown} (known: {', '.join(RESET_OPTIONS)})")
        mask = np.ones(self.num_envs, dtype=bool)
        if options.get("reset_mask") is not None:
            mask = np.asarray(options["reset_mask"], dtype=bool)
            if mask.shape != (self.num_envs,):
                raise ValueError(f"reset_mask must have shape ({self.num_envs},), got {mask.shape}")
        cars = np.flatnonzero(mask)
        if options.get("start_ndist") is not None:
            self._start_ndist[cars] = np.broadcast_to(np.asarray(options["start_ndist"], dtype=np.float64),
                                                      (len(cars),))
        self._start_episodes(cars)
        for car in cars:
            self._records[car] = RaceRecord()
        return self._observe(), self._info([])

    def step(self, actions: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Advance every running car one step; parked cars' actions are ignored (pass anything valid)."""
        n, dt = self.num_envs, self.car_spec.dt
        state = self._rule_state
        steering_deg, speed = self.vehicle.action_to_command(np.asarray(actions))
        live = self._running.copy()
        race_rules.count_step(state, live, dt)
        geometry = step_geometry(self.track, self.car, self.car_spec, self.objects)
        progress = race_rules.progress(geometry.ndist, self._start_ndist, state.prev_progress)
        moved = np.hypot(self.car.x - self._last_x, self.car.y - self._last_y)
        classified = race_rules.classify_step(state, live, progress, moved, geometry.crashed, geometry.off_track)
        running = classified.running

        rewards = np.zeros(n)
        if self.reward_function is not None and running.any():
            cars = np.flatnonzero(running)
            for car, params in zip(cars, params_dicts(self.track, self.car, geometry, steering_deg, speed,
                                                      state.steps, progress, cars, self._waypoints, self.objects),
                                   strict=True):
                rewards[car] = self.reward_function(params)
        self._episode_reward += rewards
        race_rules.record_progress(state, live, progress)
        self._last_x, self._last_y = self.car.x.copy(), self.car.y.copy()

        if self.mode == "training":
            status = classified.status
            ended, truncated = race_rules.training_ends(state, classified, live, self.max_episode_steps)
        else:
            ended, status = self._apply_race_rules(classified)
            truncated = np.zeros(n, dtype=bool)
        state.status = status

        # Held cars count down; the rest that go on drive their action.
        race_rules.count_down_holds(state, classified.held, dt)
        steering_cmd, speed_cmd = clip_commands(steering_deg, speed, self.car_spec)
        advance(self.car, steering_cmd, speed_cmd, running & ~ended & race_rules.drives_on(status), self.car_spec)
        if self.objects is not None:
            self.objects.step(dt)  # bot cars drive on; boxes stay

        if self.record_simtrace or self.record_trace:
            self._record(live, geometry, status, steering_deg, speed, actions, rewards, ended | truncated)

        done = ended | truncated
        finished_episodes: list[dict] = []
        final: dict[str, Any] = {}
        if done.any():
            cars = np.flatnonzero(done)
            finished_episodes = [self._episode_summary(car, status[car], bool(truncated[car])) for car in cars]
            if self.mode == "training":
                self._advance_start(cars)
                if self.autoreset:
                    final = self._final_info(done)
                    self._start_episodes(cars)
                else:  # the caller resets them (RaceEnv): they wait where the episode ended
                    self._running[cars] = False
            else:
                self._running[cars] = False
        return self._observe(), rewards, ended, truncated, {**self._info(finished_episodes), **final}

    def truncate(self, cars: np.ndarray) -> list[dict]:
        """End the running ``cars``' episodes now, as ``max_episode_steps`` would (status ``time_up``), and park
        them: their episode summaries. For a caller whose own budget runs out mid-episode (a training iteration
        bounded by env steps); each car's record keeps what it drove."""
        chosen = np.zeros(self.num_envs, dtype=bool)
        chosen[np.asarray(cars)] = True  # indices or an (N,) bool mask, as ``park`` takes
        cars = np.flatnonzero(chosen & self._running)
        summaries = [self._episode_summary(car, EpisodeStatus.TIME_UP, True) for car in cars]
        if self.mode == "training":
            self._advance_start(cars)
        self._running[cars] = False
        return summaries

    def park(self, cars: np.ndarray) -> None:
        """Stop ``cars`` (indices or an (N,) bool mask): they take no more steps until they are reset."""
        self._running[np.asarray(cars)] = False

    def record(self, car: int) -> RaceRecord:
        """What ``car`` produced since its last reset (the env goes on appending to it while the car drives)."""
        return self._records[car]

    def take_record(self, car: int) -> RaceRecord:
        """Hand over ``car``'s record; the car goes on with an empty one."""
        record, self._records[car] = self._records[car], RaceRecord()
        return record

    @property
    def running(self) -> np.ndarray:
        """(N,) bool copy: the cars that take steps (not parked, run not over)."""
        return self._running.copy()

    @property
    def steps(self) -> np.ndarray:
        """(N,) copy: steps of each car's current episode (its run, in a race), the prepare step included."""
        return self._rule_state.steps.copy()

    @property
    def progress(self) -> np.ndarray:
        """(N,) copy: each car's progress (percent of the lap) at its last step."""
        return self._rule_state.progress.copy()

    @property
    def laps(self) -> np.ndarray:
        """(N,) copy: laps each car completed in its current run."""
        return self._rule_state.laps_done.copy()

    @property
    def held(self) -> np.ndarray:
        """(N,) bool copy: cars held still (the prepare step, or a penalty after a reset)."""
        return self._rule_state.phase == CarPhase.HELD

    @property
    def lap_counters(self) -> LapCounters:
        """A copy of each car's mistake counters for its current lap."""
        return self._rule_state.counters.copy()

    def wheel_points(self) -> np.ndarray:
        return body_points(self.car, self.car_spec.wheel_offsets())

    # ------------------------------------------------------------------------------------ internals
    def _start_episodes(self, cars: np.ndarray) -> None:
        if self.start_lane is None:
            xy, yaw = self.track.pose_at(self._start_ndist[cars])
        else:
            xy, yaw = self.track.lane_pose(self._start_ndist[cars], self.start_lane)
        self.car.place(cars, xy[:, 0], xy[:, 1], yaw)
        race_rules.restart(self._rule_state, cars, prepare_s=self.car_spec.dt)
        self._episode_reward[cars] = 0.0
        self._running[cars] = True
        self._last_x[cars], self._last_y[cars] = self.car.x[cars], self.car.y[cars]
        self._episode_index[cars] = self._next_episode + np.arange(len(cars)) if self.mode == "training" else 0
        if self.mode == "training":
            self._next_episode += len(cars)

    def _advance_start(self, cars: np.ndarray) -> None:
        self._start_ndist[cars] = (self._start_ndist[cars] + race_rules.ROUND_ROBIN_ADVANCE * self.num_envs) % 1.0

    def _apply_race_rules(self, classified: race_rules.StepClass) -> tuple[np.ndarray, np.ndarray]:
        """The race rules of this step, with resets put back on the track: (ended, status)."""
        decided = race_rules.apply_race_rules(self._rule_state, self.rules, classified)
        for car in decided.resets:
            self._reset_onto_lane(car)
        still_running = self._running & ~decided.ended
        over_time, status, timed_out = race_rules.apply_time_cap(self._rule_state, self.rules, still_running,
                                                                 classified.status)
        for lap in decided.closed_laps + timed_out:
            laps = self._records[lap.car].laps
            laps.append(LapMetrics(
                trial=len(laps) + 1,
                elapsed_time_in_milliseconds=lap.elapsed_time_in_milliseconds,
                completion_percentage=lap.completion_percentage,
                off_track_count=lap.off_track_count,
                crash_count=lap.crash_count,
                immobilized_count=lap.immobilized_count,
                reversed_count=lap.reversed_count,
                reset_count=lap.reset_count,
                episode_status=lap.status.label,
            ))
        return decided.ended | over_time, status

    def _reset_onto_lane(self, car: int) -> None:
        state = self._rule_state
        progress = max(state.prev_progress[car], 0.0)
        progress -= self._setback_from_objects(car, (self._start_ndist[car] + progress / 100.0) % 1.0) * 100.0
        state.prev_progress[car] = state.progress[car] = progress  # the progress of the reset pose
        ndist = np.array([(self._start_ndist[car] + progress / 100.0) % 1.0])
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
        behind = race_rules.RESET_BEHIND_DISTANCE_M / length
        past = (np.asarray(self.objects.lengths) / 2 + self.car_spec.footprint_length / 2) / length  # overlapping it
        setback = 0.0
        for _ in range(len(object_ndist)):  # each pass clears one more object (boxes may stand in a row)
            ahead = (object_ndist - (ndist - setback) + 0.5) % 1.0 - 0.5  # signed, in (-0.5, 0.5]
            near = (ahead > -past) & (ahead < behind)
            if not near.any():
                break
            setback += float(np.max(behind - ahead[near]))
        return min(setback, 0.5)

    def _episode_summary(self, car: int, code: int, truncated: bool) -> dict:
        state = self._rule_state
        return {
            "car": int(car),
            "episode": int(self._episode_index[car]),
            "reward": float(self._episode_reward[car]),
            "progress": float(max(state.progress[car], 0.0)),
            "steps": int(state.steps[car]),
            "status": STATUSES[code].slug if not truncated else EpisodeStatus.TIME_UP.slug,
            "lap_complete": int(code) == EpisodeStatus.LAP_COMPLETE,
            "laps": int(state.laps_done[car]),
            "start_ndist": float(self._start_ndist[car]),
        }

    def _final_info(self, done: np.ndarray) -> dict[str, Any]:
        """Gymnasium's same-step autoreset keys for the cars whose episode ended: the finished episodes' last
        observation (``final_obs``, an object array) and step info (``final_info``), each with its ``_`` mask."""
        cars = np.flatnonzero(done)
        observations = self._observe(cars)
        final_obs = np.full(self.num_envs, None, dtype=object)
        for i, car in enumerate(cars):
            final_obs[car] = _select(observations, i)
        final_info: dict[str, Any] = {}
        for key, values in self._step_values().items():
            final_info[key] = np.where(done, values, np.zeros_like(values))
            final_info[f"_{key}"] = done.copy()
        return {"final_obs": final_obs, "_final_obs": done.copy(), "final_info": final_info,
                "_final_info": done.copy()}

    def _record(self, live, geometry, status, steering_deg, speed, actions, rewards, done) -> None:
        state = self._rule_state
        actions = np.asarray(actions)
        closest = self.track.closest_waypoint(geometry.point, geometry.ndist) if self.record_simtrace else None
        bots = None
        if self.record_trace and isinstance(self.objects, BotCars):  # a match's rival has a trace of its own
            poses = np.column_stack([self.objects.centres, np.degrees(self.objects.yaws)])
            bots = poses.ravel().tolist()
        for car in np.flatnonzero(live):
            code = STATUSES[status[car]]
            if self.record_trace:
                trace = self._records[car].trace
                trace["t"].append(float(state.clock[car]))
                trace["x"].append(float(self.car.x[car]))
                trace["y"].append(float(self.car.y[car]))
                trace["yaw"].append(float(np.degrees(self.car.yaw[car])))
                trace["speed"].append(float(self.car.speed[car]))
                trace["status"].append(code.slug)
                if bots is not None:
                    trace.setdefault("bots", []).append(bots)
            if self.record_simtrace:
                action = (int(actions[car]) if self.vehicle.is_discrete
                          else f"[{steering_deg[car]:.2f} {speed[car]:.2f}]")
                self._records[car].simtrace.append(SimTraceRow(
                    episode=self._simtrace_episode(car, code),
                    steps=float(state.steps[car]),
                    X=float(geometry.point[car, 0]),
                    Y=float(geometry.point[car, 1]),
                    yaw=float(np.degrees(self.car.yaw[car])),
                    steer=float(steering_deg[car]),
                    throttle=float(speed[car]),
                    action=action,
                    reward=float(rewards[car]),
                    done=bool(done[car]),
                    all_wheels_on_track=bool(geometry.all_wheels_on_track[car]),
                    progress=float(state.progress[car]),
                    closest_waypoint=int(closest[car]),
                    track_len=float(self.track.length),
                    tstamp=float(state.clock[car]),
                    episode_status=code.slug,
                    pause_duration=float(max(state.hold_s[car], 0.0)) if code == EpisodeStatus.PAUSE else 0.0,
                    obstacle_crash_counter=int(state.counters.crash[car]),
                ))

    def _simtrace_episode(self, car: int, code: EpisodeStatus) -> int:
        """The simtrace ``episode`` of ``car``'s step: its training episode, or in a race the lap in force when the
        step was taken (0-based). The race rules have already counted a lap this step completes, but the simapp
        writes the ``lap_complete`` row before it increments: the row belongs to the lap it completes."""
        if self.mode == "training":
            return int(self._episode_index[car])
        return int(self._rule_state.laps_done[car]) - (code == EpisodeStatus.LAP_COMPLETE)

    def _observe(self, cars: np.ndarray | None = None) -> Any:
        """The sensors' frames of every car, or of ``cars``."""
        x, y, yaw = self.car.x, self.car.y, self.car.yaw
        if cars is not None:
            x, y, yaw = x[cars], y[cars], yaw[cars]
        if len(self.sensors) == 1:
            return self.sensors[0].observe(self.track, x, y, yaw, self.objects)
        return {s.name: s.observe(self.track, x, y, yaw, self.objects) for s in self.sensors}

    def _step_values(self) -> dict[str, np.ndarray]:
        """The per-car values of the step info; after a same-step autoreset they describe the new episode
        (``final_info`` holds those of the finished one)."""
        state = self._rule_state
        return {"status": state.status.copy(), "progress": state.progress.copy(), "laps": state.laps_done.copy()}

    def _info(self, episodes: list[dict]) -> dict:
        return {**self._step_values(), "episodes": episodes}


class RaceEnv(gym.Env):
    """One car, Gymnasium API: training episodes end on any rule (SPEC §3); race mode runs the whole race.

    As any Gymnasium env, ``step`` returns the finished episode's last observation and info, and the caller calls
    ``reset``; in training mode that starts 5 % of the lap further on (``options={"start_ndist": ...}`` chooses
    the start instead).
    """

    metadata = {"render_modes": []}

    def __init__(self, track: Track, vehicle: Vehicle, reward_function: RewardFunction | None = None,
                 mode: str = "training", rules: RaceRules | None = None, max_episode_steps: int = 3000) -> None:
        self._env = VectorRaceEnv(track, 1, vehicle, reward_function, mode, rules,
                                  max_episode_steps=max_episode_steps, autoreset=False)
        self.observation_space = self._env.single_observation_space
        self.action_space = self._env.single_action_space

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        start = {"start_ndist": float(options["start_ndist"])} if options and "start_ndist" in options else None
        observation, info = self._env.reset(seed=seed, options=start)
        return _first(observation), self._scalar_info(info)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        observation, reward, terminated, truncated, info = self._env.step(np.asarray([action]))
        return _first(observation), float(reward[0]), bool(terminated[0]), bool(truncated[0]), self._scalar_info(info)

    @staticmethod
    def _scalar_info(info: dict) -> dict:
        return {"status": STATUSES[info["status"][0]].slug, "progress": float(info["progress"][0]),
                "laps": int(info["laps"][0]), "episodes": info["episodes"]}


def _first(observation: Any) -> Any:
    return _select(observation, 0)


def _select(observation: Any, index: int) -> Any:
    if isinstance(observation, dict):
        return {key: value[index] for key, value in observation.items()}
    return observation[index]
