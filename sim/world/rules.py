"""Race rules of SPEC §3: settings, statuses and their priority, progress, and the per-step rule state machine.

The state machine works on a batch of cars: ``RuleState`` holds each car's rule state as (N,) arrays (the env
owns one) and the functions below advance it one step, in the simapp's order: count the step, classify each
car (prepare, pause, or the first true of lap complete > crashed > off track > immobilized > reversed), then
end training episodes, or, in a race, close laps, spend resets and pauses, and apply the time cap. Physics,
sensors, the reward and where a reset car is put back stay with the env (``sim.race.env``).
"""

from __future__ import annotations

import enum
import functools
from dataclasses import asdict, dataclass

import numpy as np

ROUND_ROBIN_ADVANCE = 0.05  # training: each episode starts 5 % of the lap further on (20 start points)
IMMOBILIZED_STEPS = 15
RESET_BEHIND_DISTANCE_M = 1.0  # a reset that would land near an object goes this far behind it
IMMOBILIZED_DISTANCE = 0.0003  # metres moved per step at most
REVERSED_STEPS = 15
MAX_EPISODE_STEPS = 100_000
HOLD_DONE_S = 1e-9  # a hold this close to zero is over (floating-point steps of 1/15 s)
TIME_CAP_SLACK_S = 1e-9


class EpisodeStatus(enum.IntEnum):
    """A car's status at a step, in the simapp's order (the values are what the env's arrays hold)."""

    PREPARE = 0
    IN_PROGRESS = 1
    LAP_COMPLETE = 2
    CRASHED = 3
    OFF_TRACK = 4
    IMMOBILIZED = 5
    REVERSED = 6
    PAUSE = 7
    TIME_UP = 8

    # Cached: the env names a status per car and step while recording.
    @functools.cached_property
    def slug(self) -> str:
        """The spelling of simtrace rows, traces and episode summaries: ``"off_track"``."""
        return self.name.lower()

    @functools.cached_property
    def label(self) -> str:
        """The spelling of lap metrics (SPEC §7): ``"Off track"``."""
        return self.name.replace("_", " ").capitalize()


# The statuses indexed by code: a tuple index costs a tenth of ``EpisodeStatus(code)`` in per-car loops.
STATUSES: tuple[EpisodeStatus, ...] = tuple(EpisodeStatus)
# Lap metrics carry the label; stored results are validated against this tuple (evaluator.contract).
STATUS_LABELS = tuple(status.label for status in EpisodeStatus)


class CarPhase(enum.IntEnum):
    """Besides its status, a car either drives its action or is held (preparing, or serving a penalty)."""

    RUNNING = 0
    HELD = 1


# Plain-int codes for the per-step array operations: an IntEnum member lookup costs ~1 us and a step made ~20.
_PREPARE, _IN_PROGRESS, _LAP_COMPLETE, _PAUSE, _TIME_UP = (int(EpisodeStatus.PREPARE), int(EpisodeStatus.IN_PROGRESS),
                                                         int(EpisodeStatus.LAP_COMPLETE), int(EpisodeStatus.PAUSE),
                                                         int(EpisodeStatus.TIME_UP))
_PRIORITY = tuple(int(code) for code in (EpisodeStatus.LAP_COMPLETE, EpisodeStatus.CRASHED, EpisodeStatus.OFF_TRACK,
                                         EpisodeStatus.IMMOBILIZED, EpisodeStatus.REVERSED))
_RUNNING, _HELD = int(CarPhase.RUNNING), int(CarPhase.HELD)


@dataclass(frozen=True)
class RaceRules:
    """How a race (or an evaluation) treats mistakes. ``max_resets=None`` is unlimited."""

    total_laps: int = 3
    off_track_penalty_s: float = 2.0
    collision_penalty_s: float = 5.0
    max_resets: int | None = None
    time_cap_s: float = 180.0
    continuous: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.total_laps <= 100:
            raise ValueError("total_laps must be between 1 and 100")
        if self.off_track_penalty_s < 0 or self.collision_penalty_s < 0:
            raise ValueError("penalties cannot be negative")
        if self.max_resets is not None and self.max_resets < 0:
            raise ValueError("max_resets must be None (unlimited) or >= 0")
        if self.time_cap_s <= 0:
            raise ValueError("time_cap_s must be positive")

    def to_dict(self) -> dict:
        return asdict(self)

    def penalty_for(self, status: np.ndarray) -> np.ndarray:
        """Seconds of pause after a reset: collisions their own penalty, immobilized none, else off-track's."""
        return np.select(
            [status == EpisodeStatus.CRASHED, status == EpisodeStatus.IMMOBILIZED],
            [self.collision_penalty_s, 0.0], self.off_track_penalty_s,
        )


def progress(ndist: np.ndarray, start_ndist: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Percent of the lap from the episode's start (simapp ``compute_current_prog``), capped at 100."""
    p = 100.0 * (ndist - start_ndist)
    p = np.where(p <= 0.0, p + 100.0, p)
    p = np.where(previous > p + 50.0, p + 100.0, p)  # crossed the start line forward
    p = np.where(p > previous + 50.0, p - 100.0, p)  # crossed it backwards
    return np.minimum(p, 100.0)


def first_true(*conditions: np.ndarray) -> np.ndarray:
    """Status code of the first true condition per car, IN_PROGRESS where none holds.

    Conditions are given in priority order for LAP_COMPLETE, CRASHED, OFF_TRACK, IMMOBILIZED, REVERSED.
    """
    # np.where from the lowest priority up (the last write wins): np.select's result at a fifth of its cost.
    result: np.ndarray | int = _IN_PROGRESS
    for condition, code in reversed(list(zip(conditions, _PRIORITY, strict=False))):
        result = np.where(condition, code, result)
    return np.asarray(result)


# ------------------------------------------------------------------------------------- per-car rule state


@dataclass
class LapCounters:
    """Mistakes of each car's current lap (SPEC §7 lap metrics); cleared when a lap is closed."""

    off_track: np.ndarray
    crash: np.ndarray
    immobilized: np.ndarray
    reversed: np.ndarray
    resets: np.ndarray

    @classmethod
    def zeros(cls, n: int) -> LapCounters:
        return cls(*(np.zeros(n, dtype=np.int64) for _ in range(5)))

    def clear(self, cars: np.ndarray) -> None:
        for counter in self._all():
            counter[cars] = 0

    def copy(self) -> LapCounters:
        return LapCounters(*(counter.copy() for counter in self._all()))

    def of_mistake(self, status: EpisodeStatus) -> np.ndarray:
        """The counter a mistake adds to."""
        return {EpisodeStatus.CRASHED: self.crash, EpisodeStatus.OFF_TRACK: self.off_track,
                EpisodeStatus.IMMOBILIZED: self.immobilized, EpisodeStatus.REVERSED: self.reversed}[status]

    def _all(self) -> tuple[np.ndarray, ...]:
        return self.off_track, self.crash, self.immobilized, self.reversed, self.resets


@dataclass
class RuleState:
    """The race-rule state of N cars, one entry per car."""

    phase: np.ndarray  # CarPhase
    hold_s: np.ndarray  # seconds a held car still waits
    steps: np.ndarray  # steps of the episode, float as params["steps"]
    clock: np.ndarray  # seconds since the episode (race) started, pauses included
    lap_start: np.ndarray  # clock at the start of the current lap
    prev_progress: np.ndarray  # progress of the previous step (percent of the lap)
    progress: np.ndarray
    immobile: np.ndarray  # consecutive steps without moving
    falling: np.ndarray  # consecutive steps of falling progress
    resets_used: np.ndarray
    laps_done: np.ndarray
    status: np.ndarray  # EpisodeStatus of the last step
    counters: LapCounters

    @classmethod
    def zeros(cls, n: int) -> RuleState:
        return cls(
            phase=np.full(n, CarPhase.HELD), hold_s=np.zeros(n), steps=np.zeros(n), clock=np.zeros(n),
            lap_start=np.zeros(n), prev_progress=np.zeros(n), progress=np.zeros(n),
            immobile=np.zeros(n, dtype=np.int64), falling=np.zeros(n, dtype=np.int64),
            resets_used=np.zeros(n, dtype=np.int64), laps_done=np.zeros(n, dtype=np.int64),
            status=np.full(n, EpisodeStatus.PREPARE), counters=LapCounters.zeros(n),
        )


@dataclass(frozen=True)
class StepClass:
    """How the cars that took this step stand: their status, and which drove (``running``) or were ``held``."""

    status: np.ndarray
    running: np.ndarray
    held: np.ndarray


@dataclass(frozen=True)
class ClosedLap:
    """One lap (or the end of a run) closed this step: the SPEC §7 lap metrics of ``car`` but its trial number."""

    car: int
    status: EpisodeStatus
    elapsed_time_in_milliseconds: int
    completion_percentage: float
    off_track_count: int
    crash_count: int
    immobilized_count: int
    reversed_count: int
    reset_count: int


@dataclass(frozen=True)
class RaceStep:
    """What the race rules decided this step: the runs that ended, the laps closed, the cars to put back."""

    ended: np.ndarray
    closed_laps: list[ClosedLap]
    resets: list[int]


def restart(state: RuleState, cars: np.ndarray, prepare_s: float) -> None:
    """Start a new episode (a new run in a race) for ``cars``: held for the prepare step, everything zeroed."""
    state.phase[cars] = CarPhase.HELD
    state.hold_s[cars] = prepare_s
    for array in (state.steps, state.clock, state.lap_start, state.prev_progress, state.progress):
        array[cars] = 0.0
    for array in (state.immobile, state.falling, state.resets_used, state.laps_done):
        array[cars] = 0
    state.counters.clear(cars)
    state.status[cars] = EpisodeStatus.PREPARE


def count_step(state: RuleState, live: np.ndarray, dt: float) -> None:
    """The cars that take this step count it and their clock runs."""
    state.steps[live] += 1
    state.clock[live] += dt


def classify_step(state: RuleState, live: np.ndarray, progress_now: np.ndarray, moved: np.ndarray,
                  crashed: np.ndarray, off_track: np.ndarray) -> StepClass:
    """Each car's status in the state where its action was chosen; counts still and backwards steps.

    ``progress_now`` is this step's progress, ``moved`` the metres each car moved since the last step.
    """
    running = live & (state.phase == _RUNNING)
    held = live & (state.phase == _HELD)
    status = np.where(held, np.where(state.steps <= 1, _PREPARE, _PAUSE), _IN_PROGRESS)
    state.immobile = np.where(running & (moved <= IMMOBILIZED_DISTANCE), state.immobile + 1, 0)
    state.falling = np.where(running & (progress_now < state.prev_progress), state.falling + 1, 0)
    decided = first_true(
        progress_now >= 100.0, crashed, off_track,
        state.immobile >= IMMOBILIZED_STEPS, state.falling >= REVERSED_STEPS,
    )
    return StepClass(np.where(running, decided, status), running, held)


def record_progress(state: RuleState, live: np.ndarray, progress_now: np.ndarray) -> None:
    state.progress = np.where(live, progress_now, state.progress)
    state.prev_progress = np.where(live, progress_now, state.prev_progress)


def training_ends(state: RuleState, step: StepClass, live: np.ndarray,
                  max_episode_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(terminated, truncated): any status but in progress ends a training episode; so does the step limit."""
    terminated = step.running & (step.status != EpisodeStatus.IN_PROGRESS)
    truncated = live & ~terminated & (state.steps >= max_episode_steps)
    return terminated, truncated


def apply_race_rules(state: RuleState, rules: RaceRules, step: StepClass) -> RaceStep:
    """Laps, mistakes and resets of a race step (the time cap is ``apply_time_cap``, after the resets).

    A completed lap is closed and, in a continuous race, the next one starts at once; the run ends after
    ``rules.total_laps``. A mistake is counted and costs a reset and its penalty (the car is held that long);
    with the reset budget spent it ends the run instead. The env puts the cars in ``resets`` back on the track.
    """
    ended = np.zeros(len(state.steps), dtype=bool)
    closed: list[ClosedLap] = []
    resets: list[int] = []
    for car in np.flatnonzero(step.running & (step.status != _IN_PROGRESS)):
        status = EpisodeStatus(int(step.status[car]))
        if status == EpisodeStatus.LAP_COMPLETE:
            closed.append(close_lap(state, car, status, 100.0))
            state.laps_done[car] += 1
            state.prev_progress[car] = 0.0
            state.lap_start[car] = state.clock[car]
            if state.laps_done[car] >= rules.total_laps or not rules.continuous:
                ended[car] = True
            continue
        state.counters.of_mistake(status)[car] += 1
        if rules.max_resets is not None and state.resets_used[car] >= rules.max_resets:
            closed.append(close_lap(state, car, status, float(state.progress[car])))
            ended[car] = True
            continue
        state.resets_used[car] += 1
        state.counters.resets[car] += 1
        resets.append(int(car))
        state.phase[car] = CarPhase.HELD
        state.hold_s[car] = float(rules.penalty_for(np.array([status]))[0])
        if state.hold_s[car] <= 0:
            state.phase[car] = CarPhase.RUNNING
        state.immobile[car] = state.falling[car] = 0
    return RaceStep(ended, closed, resets)


def apply_time_cap(state: RuleState, rules: RaceRules, candidates: np.ndarray,
                   status: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[ClosedLap]]:
    """(ended, status, closed laps): the runs among ``candidates`` whose clock reached the time cap end."""
    over_time = candidates & (state.clock >= rules.time_cap_s - TIME_CAP_SLACK_S)
    closed = []
    for car in np.flatnonzero(over_time):
        closed.append(close_lap(state, car, EpisodeStatus.TIME_UP, float(max(state.progress[car], 0.0))))
    return over_time, np.where(over_time, _TIME_UP, status), closed


def count_down_holds(state: RuleState, held: np.ndarray, dt: float) -> None:
    """Cars held at the start of this step wait one step less; those done waiting drive from the next step."""
    state.hold_s = np.where(held, state.hold_s - dt, state.hold_s)
    state.phase = np.where(held & (state.hold_s <= HOLD_DONE_S), _RUNNING, state.phase)


def drives_on(status: np.ndarray) -> np.ndarray:
    """Cars whose action moves them this step: in progress, or over the line in a continuous race."""
    return (status == _IN_PROGRESS) | (status == _LAP_COMPLETE)


def close_lap(state: RuleState, car: int, status: EpisodeStatus, completion: float) -> ClosedLap:
    """The metrics of ``car``'s current lap, ending with ``status`` at ``completion`` percent; clears its counters."""
    counters = state.counters
    lap = ClosedLap(
        car=int(car),
        status=status,
        elapsed_time_in_milliseconds=round(float(state.clock[car] - state.lap_start[car]) * 1000),
        completion_percentage=round(float(min(max(completion, 0.0), 100.0)), 4),
        off_track_count=int(counters.off_track[car]),
        crash_count=int(counters.crash[car]),
        immobilized_count=int(counters.immobilized[car]),
        reversed_count=int(counters.reversed[car]),
        reset_count=int(counters.resets[car]),
    )
    counters.clear(np.array([car]))
    return lap
